"""The GPU campaign's slices (scripts/gpu_campaign.py), without training anything: what a carried archive does to a
folder that survived, and the exit status of a slice that made no progress. (The campaign itself runs in CI's smoke test.)"""
import io
import os
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO)]
import gpu_campaign as campaign  # noqa: E402


def pack_of(folder: Path, files: dict) -> Path:
    "A one-part archive in `folder` holding `files` ({name in the archive: bytes}), as `pack` writes it."
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name); info.size = len(data); tar.addfile(info, io.BytesIO(data))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "slice.tar.part0").write_bytes(buf.getvalue())
    return folder


def check_carry(tmp: Path) -> list:
    "A carried archive keeps every record of the folder, adds the ones it lacks once each, and leaves other files alone."
    out = tmp / "out"; (out / "mnist").mkdir(parents=True)
    a, b, c = b'{"seed": 0, "arm": "hard"}', b'{"seed": 0, "arm": "l2", "note": "\xff"}', b'{"seed": 0, "arm": "kd"}'
    (out / "mnist" / "results.jsonl").write_bytes(a + b"\n" + b + b"\n" + c[:9])          # a torn last line
    (out / "mnist" / "teacher.pt").write_bytes(b"newer")
    carry = pack_of(tmp / "carry", {"mnist/results.jsonl": a + b"\n" + c + b"\n" + c + b"\n", "mnist/teacher.pt": b"older",
                                    "mnist/summary.md": b"# from the archive\n"})
    campaign.unpack(carry, out)
    got, want = (out / "mnist" / "results.jsonl").read_bytes(), a + b"\n" + b + b"\n" + c + b"\n"
    errs = [] if got == want else [f"records after the carry: {got!r}, want {want!r}"]
    if (out / "mnist" / "teacher.pt").read_bytes() != b"newer": errs.append("the carry replaced a file OUT held")
    if not (out / "mnist" / "summary.md").is_file(): errs.append("the carry left out a file OUT lacked")
    return errs


def check_torn_unpack(tmp: Path) -> list:
    "An unpack killed in the middle of a file leaves none of it in OUT (which the next carry would keep), only whole files."
    import noisy_teachers.data as data
    out, weights = tmp / "torn", os.urandom(4096)
    carry = pack_of(tmp / "torn-carry", {"mnist/summary.md": b"# whole\n", "mnist/teacher.pt": weights})
    real = data.save_atomic
    def killed(obj, path, save=None):                 # the writer killed half-way through the teacher's bytes
        if Path(path).name != "teacher.pt": return real(obj, path, save=save)
        def half(d, f): Path(f).write_bytes(d[: len(d) // 2]); raise KeyboardInterrupt
        return real(obj, path, save=half)
    data.save_atomic = killed
    try: campaign.unpack(carry, out)
    except KeyboardInterrupt: pass
    finally: data.save_atomic = real
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
    errs = [] if left == ["mnist/summary.md"] else [f"a killed unpack left {left}, want only mnist/summary.md"]
    campaign.unpack(carry, out)
    if (out / "mnist" / "teacher.pt").read_bytes() != weights: errs.append("the next carry did not unpack the teacher whole")
    return errs


def check_stopped_unpack(tmp: Path) -> list:
    "A slice stopped while it unpacks its carry packs nothing: OUT lacks part of the carry, which still holds it all."
    import noisy_teachers.data as data
    out, pack = tmp / "stop", tmp / "stop-pack"
    carry = pack_of(tmp / "stop-carry", {"mnist/results.jsonl": b'{"seed": 0, "arm": "hard"}\n', "mnist/teacher.pt": b"w" * 64})
    real = data.save_atomic
    def stopped(obj, path, save=None):                # Ctrl-C as the teacher is written
        if Path(path).name == "teacher.pt": raise KeyboardInterrupt
        return real(obj, path, save=save)
    data.save_atomic = stopped
    try: code = campaign.main([str(out), "--carry", str(carry), "--pack", str(pack), "--device", "cpu"])
    finally: data.save_atomic = real
    errs = [] if code == 130 else [f"a slice stopped in its unpack exited {code}, want 130"]
    if campaign.parts_in(pack): errs.append(f"a slice stopped in its unpack packed {[q.name for q in campaign.parts_in(pack)]}")
    return errs


def slice_status(tmp: Path, name: str, keeps: bool) -> int:
    "The exit status of a carried, packed slice that stops at its budget with a training checkpoint too large to pack."
    out, pack = tmp / name, tmp / f"{name}-pack"
    (out / "mnist").mkdir(parents=True)
    carry = pack_of(tmp / f"{name}-carry", {"mnist/results.jsonl": b'{"seed": 0, "arm": "hard"}\n'})
    def stop_at_budget(args):                         # what a slice's steps leave behind, without training anything
        ck = args.out / "cifar10-lr" / "cifar10-checkpoints"; ck.mkdir(parents=True, exist_ok=True)
        with open(ck / "hard-lr0.1.train.pt", "wb") as f: f.truncate(66 * 2 ** 20)   # a CIFAR-10 student's, 66 MiB
        if keeps: (ck / "teacher.pt").write_bytes(os.urandom(1024))                  # the search's teacher: progress
        args.skipped = []
        return "campaign stopped at the budget: rerun (with --carry) to continue"
    run_steps, campaign.run_steps = campaign.run_steps, stop_at_budget
    try: return campaign.main([str(out), "--carry", str(carry), "--pack", str(pack), "--device", "cpu"])
    finally: campaign.run_steps = run_steps


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="nt-slices-") as d:
        tmp = Path(d)
        errs = check_carry(tmp) + check_torn_unpack(tmp) + check_stopped_unpack(tmp)
        if (s := slice_status(tmp, "stuck", keeps=False)) != 3: errs.append(f"a slice that kept nothing new exited {s}, want 3")
        if (s := slice_status(tmp, "moving", keeps=True)) != 0: errs.append(f"a slice that kept a teacher exited {s}, want 0")
    print("CAMPAIGN SLICES TEST " + ("PASSED" if not errs else "FAILED:\n  " + "\n  ".join(errs)), flush=True)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""The whole GPU programme of the book, one command, in priority order, in resumable slices.

    bash scripts/gpu_campaign.sh OUT [--budget-minutes M] [--data-root DIR] [--carry DIR] [--pack DIR] [--smoke]

Steps, each resumable (finished arms are skipped, an interrupted arm continues from its checkpoint):
  1. cifar10-check  the CIFAR-10 teacher check: the paper's NiN and the augmented LeNet student alone, both for a
                    few epochs; prints whether the teacher is on track to beat the student (see chapter 12).
  2. cifar10-lr     the learning rate of each student family (hard, KD, L2) chosen on CIFAR-10's validation split,
                    no clip, at the full schedule (scripts/lr_search.py; records in OUT/cifar10-lr/cifar10.jsonl,
                    .md and .png).
  3. cifar10        the CIFAR-10 protocol, 3 seeds (the JPEG copy of CIFAR-10, or the original if present), at the
                    rates step 2 chose and without a clip (`experiments.with_learning_rates`: a configuration of its
                    own, whose records carry the rates; the dropout students, which the search leaves out, keep the
                    first recipe); a search not finished, of another recipe, or with a family whose every rate
                    diverged stops the step; without a search in OUT/cifar10-lr, the first recipe's hand-set, clipped
                    rates, as it says.
  4. mnist          MNIST at the protocol's schedule, every arm, 5 seeds (validation split, per-family learning rates);
                    it starts from the book's records (results/mnist-converged), so only the missing seeds and arms run
                    (today none: a missing arm of a recorded seed would need its teacher, whose weights the book does
                    not carry, trained again here, and the step stops if that is not the recorded teacher bit for bit).
  5. fashion-mnist  Fashion-MNIST, the same (from results/fashion-mnist-converged).
  6. svhn-lr        SVHN's search, as step 2, when its files are in the data root (skipped with a note otherwise).
  7. svhn           SVHN, 3 seeds, at the rates step 6 chose, as step 3 (skipped with a note without its files).
Records go to OUT/<step>/results.jsonl, in the layout of `results/`. A step whose data set is not in the data root is
skipped with a note and the campaign goes on with the next; at the end, any such step but svhn's is an error naming
--data-root (exit status 2).

Slices. `--budget-minutes M` stops cleanly at the end of the epoch that crosses M minutes (checkpoints and records
written) and exits 0; rerunning the same command continues. On a machine whose disk does not persist between runs,
`--pack DIR` writes OUT's records, teacher weights and training checkpoints into at most 4 archive parts of at most 15
MiB each in DIR, small enough for services that limit what a job may return (priority: records, teachers, then the
checkpoints that fit, and last a finished search's teacher and logits, needed only to search again), and `--carry DIR`
unpacks such parts into OUT before starting (a folder without parts, as on the first slice, starts afresh; a file OUT
already holds is kept, and a records file gets only the carried records it lacks). A carried slice that stops (at the
budget, or by a signal) having kept nothing new — no record, teacher or report — while its training checkpoints are
too large for the parts exits with status 3: the next slice would only start them over. See results/README.md.

`--smoke` runs the same steps with the `tiny` configurations on the CPU (about two minutes on two cores): CI runs it.
"""
import argparse
import io
import signal
import sys
import tarfile
import time
from pathlib import Path

STEPS = (("cifar10-check", "cifar10", 1), ("cifar10-lr", "cifar10", 1), ("cifar10", "cifar10", 3), ("mnist", "mnist", 5),
         ("fashion-mnist", "fashion-mnist", 5), ("svhn-lr", "svhn", 1), ("svhn", "svhn", 3))
PART = 15 * 2 ** 20          # bytes per archive part (to fit a limit on the size of the files a job may return)
MAX_PARTS = 4                # and at most 64 MiB in all: leave room for the log


def config_of(step, name, smoke, out):
    from noisy_teachers.experiments import get_config
    if smoke: config = get_config(name, tiny=True)
    elif step == "cifar10-check": config = get_config(name, epochs=10)      # both networks, 10 epochs each
    else: config = get_config(name)
    return searched(config, step, out / SEARCHED_BY[step] / f"{name}.jsonl") if step in SEARCHED_BY else config


def lr_search_module():
    "scripts/lr_search.py, imported from beside this script."
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import lr_search
    return lr_search


def searched(config, step, path):
    """`config` at the rates its search in `path` chose, without a clip (`with_learning_rates`), once that search has
    trained every (family, rate) of its grid with this configuration's recipe; as it is (said) if no search was begun."""
    from noisy_teachers.experiments import arm_specs, chosen_learning_rates, with_learning_rates
    lr_search = lr_search_module()
    if not path.exists() and not (path.parent / f"{config.name}-checkpoints").exists():
        print(f"[{step}] no learning-rate search in {path.parent}: the first recipe's hand-set, clipped rates", flush=True)
        return config
    families = lr_search.families_of(config)
    recs = [r for r in lr_search.read_search(path) if r.get("variant", "full") == config.variant   # tiny: --smoke's
            and r["family"] in families]
    if todo := lr_search.unfinished(recs, families):
        raise ValueError(f"the learning-rate search in {path.parent} is not finished for the {config.variant} {config.name} "
                         f"configuration ({len(todo)} run{'s' * (len(todo) > 1)} to go): run step {SEARCHED_BY[step]} first")
    rates = chosen_learning_rates(recs)
    if lost := [f for f in families if f not in rates]:
        raise ValueError(f"every rate of {', '.join(lost)} diverged in the search in {path.parent}: widen its grid "
                         "(GRIDS in scripts/lr_search.py) and search again")
    chosen = with_learning_rates(config, rates)
    trains = {s.name: s.train for s in arm_specs(chosen)}                                # what the protocol will train
    for r in recs:
        if other := [k for k in ("epochs", "batch_size", "schedule", "momentum", "weight_decay")
                     if k in r and r[k] != getattr(trains[r["family"]], k)]:
            raise ValueError(f"the search in {path.parent} trained {r['family']} with another {', '.join(other)} than "
                             f"this configuration: search again in an empty folder")
    print(f"[{step}] at the rates chosen on validation in {path.parent}, no clip: {rates}", flush=True)
    return chosen


BOOK = {"mnist": "mnist-converged", "fashion-mnist": "fashion-mnist-converged"}   # steps that start from the book's committed records: only what is missing runs
OPTIONAL = ("svhn-lr", "svhn")   # steps whose data set may be absent: skipped without an error
SEARCHED_BY = {"cifar10": "cifar10-lr", "svhn": "svhn-lr"}    # a protocol's step and the search that chooses its rates


def guarded(step, work, args):
    """`work()` as (finished, its value): (False, None) if it stopped at the budget, (True, None) if its data are
    missing (the step is then added to `args.skipped`)."""
    from noisy_teachers.data import DataNotFoundError, data_root
    from noisy_teachers.training import BudgetReached
    try: return True, work()
    except BudgetReached:
        print(f"[{step}] stopped at the budget; rerun to continue", flush=True)
        return False, None
    except DataNotFoundError as e:
        print(f"[{step}] skipped: {e.name} not found in {data_root(args.data_root)} (the data root: --data-root, else "
              "$NOISY_TEACHERS_DATA)", flush=True)
        args.skipped.append(step)
        return True, None


def lr_step(name, out, args, deadline):
    "The learning-rate search on `name`'s validation split (scripts/lr_search.py); True if it finished."
    lr_search = lr_search_module()
    finished, log = guarded(f"{name}-lr", lambda: lr_search.search(name, out, args.data_root, args.device or "auto",
                                                                  tiny=args.smoke, deadline=deadline), args)
    if log is not None: lr_search.report(log)
    return finished


def run_step(step, name, seeds, out, args, deadline):
    "Run one step; True if it finished, False if it stopped at the budget."
    from noisy_teachers.experiments import run_benchmark, summarize, format_table
    left = (deadline - time.time()) / 60
    if left <= 0: return False
    if step.endswith("-lr"): return lr_step(name, out / step, args, deadline)
    config = config_of(step, name, args.smoke, out)
    arms = ["hard"] if step == "cifar10-check" else None
    if step in BOOK and not args.smoke and not (out / step / "results.jsonl").exists():
        from noisy_teachers.data import start_from_results
        start_from_results(BOOK[step], root=Path(__file__).resolve().parent.parent, run=out / step)
        print(f"[{step}] starting from the book's records in results/{BOOK[step]}: only what is missing runs", flush=True)
    finished, records = guarded(step, lambda: run_benchmark(config, seeds, data_root=args.data_root, out_dir=out / step,
                                                            device=args.device, progress="lines", arms=arms,
                                                            budget_minutes=left), args)
    if records is None: return finished
    print(f"[{step}] done: {len(records)} records\n{format_table(summarize(records), markdown=False)}", flush=True)
    if step == "cifar10-check":                     # a choice (go on or not): made on validation, never on test
        t, s = (next(r for r in records if r["arm"] == a)["metrics"]["val_error"] for a in ("teacher", "hard"))
        verdict = "on track" if t + config.min_teacher_gap <= s else "NOT on track: see chapter 12 before the full protocol"
        te, se = config.teacher_train.epochs, config.student_train.epochs
        print(f"[{step}] validation error: teacher {100 * t:.2f} % vs student alone {100 * s:.2f} % after "
              + (f"{te} epochs each" if te == se else f"{te} and {se} epochs") + f": {verdict}", flush=True)
    return True


def spent_search(p: Path, out: Path) -> bool:
    "Whether `p` is a teacher or logits file of a finished learning-rate search (its report beside it): not needed again."
    step, folder, *rest = p.relative_to(out).parts + ("", "")
    return (step.endswith("-lr") and folder.endswith("-checkpoints") and p.suffix == ".pt"
            and (out / step / (folder.removesuffix("-checkpoints") + ".md")).is_file())


def pack(out: Path, dest: Path):
    """Records first, then teacher weights, then training checkpoints, then a finished search's teacher and logits, while
    they fit in MAX_PARTS parts of PART bytes."""
    files = packable(out)
    rank = lambda p: (3 if spent_search(p, out) else 0 if p.suffix in (".jsonl", ".md", ".png") else
                      1 if not p.name.endswith(".train.pt") else 2, str(p))
    budget, chosen, left_out = PART * MAX_PARTS - 2 ** 20, [], []
    for p in sorted(files, key=rank):
        if p.stat().st_size + 4096 <= budget: chosen.append(p); budget -= p.stat().st_size + 4096
        else: left_out.append(p)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in chosen: tar.add(p, arcname=str(p.relative_to(out)))
    data = buf.getvalue()
    dest.mkdir(parents=True, exist_ok=True)
    new = [dest / f"slice.tar.part{k // PART}.new" for k in range(0, len(data), PART)]
    try:                                         # all the new parts written, or none: the last slice's parts stay whole
        for k, q in zip(range(0, len(data), PART), new): q.write_bytes(data[k:k + PART])
    except BaseException as e:
        for q in new: q.unlink(missing_ok=True)
        if not isinstance(e, OSError): raise
        from noisy_teachers.data import _room, _write_error
        raise _write_error(e, f"could not pack into {dest} ({_room(dest)})") from e
    for old in parts_in(dest): old.unlink()
    for q in new: q.rename(q.with_suffix(""))
    print(f"packed {len(chosen)} files ({len(data) / 2 ** 20:.1f} MiB) into {dest}/slice.tar.part*"
          + (f"; left out (restart next slice): {', '.join(str(p.relative_to(out)) for p in left_out)}" if left_out else ""))
    return [p for p in left_out if p.name.endswith(".train.pt")]


def kept_files(out: Path) -> dict:
    """What a slice leaves that the next one can use, beside its training checkpoints: {path: sha256} of OUT's records,
    reports, teachers and logits (their bytes: a report written again unchanged is no progress). A slice that changes
    none of them and carries no checkpoint made no progress."""
    import hashlib
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in packable(out) if not p.name.endswith(".train.pt")}


def packable(out: Path) -> list:
    "The files of OUT a pack may take: not its caches, temporaries, lock, or checkpoints set aside as untrusted."
    return sorted(p for p in out.rglob("*") if p.is_file() and "cache" not in p.relative_to(out).parts
                  and not p.name.startswith(".") and ".untrusted" not in p.name)


def parts_in(folder: Path) -> list:
    "The archive parts `pack` wrote in `folder`, in order (not the `.new` ones of a pack that did not finish)."
    parts = [p for p in folder.glob("slice.tar.part*") if p.name.removeprefix("slice.tar.part").isdigit()]
    return sorted(parts, key=lambda p: int(p.name.removeprefix("slice.tar.part")))


def unpack(src: Path, out: Path):
    """Extract the archive parts `pack` wrote in `src` into `out`; a ValueError if they are not one whole archive. A file
    `out` already holds is kept (an OUT that survived its slice is as new as the archive, or newer), except a records file
    (`.jsonl`), which gets the archive's lines it lacks: a carried archive never takes a finished record away."""
    from noisy_teachers.data import write_atomic
    parts = parts_in(src)
    if not parts and list(src.glob("slice.tar.part*.new")):   # killed between its last write and its renames
        raise ValueError(f"{src} holds only the .new parts of a pack that did not finish: not unpacked")
    if not parts: print(f"nothing to unpack in {src}"); return
    if (names := [p.name for p in parts]) != [f"slice.tar.part{k}" for k in range(len(parts))]:
        raise ValueError(f"{src} holds the archive parts {', '.join(names)}: a part is missing, not unpacked")
    try:
        with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts)), mode="r:") as tar:
            members = [tarfile.data_filter(m, str(out)) for m in tar.getmembers()]   # the whole archive read, and safe
            held = [m for m in members if m.isfile() and (out / m.name).exists()]
            for m in (m for m in members if m not in held):   # each file whole or not at all: an OUT whose unpack was
                if not m.isfile(): tar.extract(m, out, filter="data"); continue          # killed holds no torn file,
                (out / m.name).parent.mkdir(parents=True, exist_ok=True)                  # which the next carry would keep
                write_atomic(tar.extractfile(m).read(), out / m.name)
            merged = [m for m in held if m.name.endswith(".jsonl") and merge_lines(out / m.name, tar.extractfile(m).read())]
    except tarfile.TarError as e:                    # a part cut short or damaged on its way
        raise ValueError(f"the archive parts in {src} cannot be unpacked ({e}): carry whole parts, or none") from None
    print(f"unpacked {len(parts)} archive part(s) from {src} into {out}" + (
        f" (OUT already held {len(held)} of its files: kept; {len(merged)} records file(s) given the archive's records "
        "they lacked)" if held else ""))


def merge_lines(path: Path, carried: bytes) -> bool:
    """Append to the records file `path` the lines of `carried` it lacks, each once, byte for byte (atomically); whether
    it gained any. A last line that a killed writer left without its newline is dropped when it is not JSON."""
    from noisy_teachers.data import write_atomic
    data = path.read_bytes()
    have = data.splitlines()
    if have and not data.endswith(b"\n") and not parses(have[-1]): have.pop()
    new = [l for l in dict.fromkeys(carried.splitlines()) if l.strip() and l not in set(have)]
    if new: write_atomic(b"\n".join(have + new) + b"\n", path)
    return bool(new)


def parses(line: bytes) -> bool:
    import json
    try: json.loads(line); return True
    except ValueError: return False


def main(argv=None):
    from noisy_teachers.cli import _OneLineParser, _device_here, _device, _folder, _positive_number
    names = [s for s, _, _ in STEPS]
    p = _OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=_folder, metavar="OUT", help="output folder: OUT/<step>/ for each step (created if missing)")
    p.add_argument("--budget-minutes", type=_positive_number, default=None, metavar="M",
                   help="stop cleanly at the end of the epoch that crosses M minutes (M > 0; default: no limit); "
                        "rerun the same command to continue")
    p.add_argument("--data-root", type=_folder, default=None, metavar="DIR",
                   help="folder holding the data sets (default: $NOISY_TEACHERS_DATA, else the per-user cache)")
    p.add_argument("--device", type=_device, default=None, metavar="D",
                   help="cpu, cuda, cuda:<i> or mps (default: CUDA if available, then MPS, then the CPU; --smoke: cpu)")
    p.add_argument("--carry", type=_folder, default=None, metavar="DIR",
                   help="an existing folder: unpack a previous slice's archive parts from it first (none there: start afresh)")
    p.add_argument("--pack", type=_folder, default=None, metavar="DIR",
                   help="write this slice's archive parts here at the end")
    p.add_argument("--smoke", action="store_true", help="the tiny configurations on the CPU: about two minutes")
    p.add_argument("--steps", nargs="+", default=names, choices=names, metavar="STEP",
                   help=f"only these steps, run in the fixed order above whatever order they are given in "
                        f"({', '.join(names)}; default: all)")
    args = p.parse_args(argv)
    if args.carry is not None and not args.carry.is_dir(): p.error(f"argument --carry: no such folder: {args.carry}")
    if args.smoke:
        import torch
        torch.set_num_threads(1)
        args.device = args.device or "cpu"
    _device_here(p, args.device)                     # cuda without a GPU, a GPU index past the last one, ...
    from noisy_teachers.experiments import _out_folder
    for folder, name in ((args.pack, "--pack"), (args.out, "OUT")):   # both made now: a pack folder that cannot be
        if folder is not None:                                       # written is said before the slice, not after it
            try: _out_folder(folder, name)
            except ValueError as e: p.error(f"argument {name}: {str(e).removeprefix(name + ' ')}")
    from noisy_teachers.cli import _stopped, _terminate
    from noisy_teachers.experiments import folder_lock
    signal.signal(signal.SIGTERM, _terminate)        # `timeout`, or the machine's time running out: a clean stop and the pack
    code, said, before, unpacked = 0, "", None, False
    try:
        with folder_lock(args.out):                  # one campaign per folder, from the unpack to the pack
            try:
                if args.carry: unpack(args.carry, args.out)
                unpacked, before = True, kept_files(args.out)
                print(said := run_steps(args), flush=True)
                if missing := [s for s in args.skipped if s not in OPTIONAL]:
                    code = 2
                    print(f"{p.prog}: error: no data for {', '.join(missing)}: point --data-root (or "
                          "$NOISY_TEACHERS_DATA) at the folder that holds them", file=sys.stderr, flush=True)
            except KeyboardInterrupt as e:
                how, code = _stopped(e)
                print(f"{p.prog}: {how}; rerun (with --carry) to continue", file=sys.stderr, flush=True)
            except (OSError, ValueError) as e:       # a full disk, a step's folder in use, a search of other settings
                code = 2
                print(error_line(p.prog, e), file=sys.stderr, flush=True)
            finally:
                lost = pack(args.out, args.pack) if args.pack and unpacked else []   # what was done travels, whatever stopped
                if args.pack and not unpacked:       # the slice; but a half-unpacked OUT would lose what its carry holds
                    print(f"{p.prog}: the unpack did not finish, so nothing was packed: carry the same parts again",
                          file=sys.stderr, flush=True)
            if args.carry and lost and not said.startswith("campaign complete") and kept_files(args.out) == before:
                code = code or 3                     # stopped (budget or signal): the next slice would start them over
                print(f"{p.prog}: error: this slice kept nothing new (no record, teacher or report), and its training "
                      f"checkpoints ({', '.join(f'{q.name}, {q.stat().st_size / 2 ** 20:.0f} MiB' for q in lost)}) do not "
                      f"fit the {MAX_PARTS} parts of {PART // 2 ** 20} MiB: a slice carried from this pack would start them "
                      "over. Give a slice more --budget-minutes, or, where OUT persists, continue without --carry",
                      file=sys.stderr, flush=True)
    except (OSError, ValueError) as e:               # another campaign holds OUT, or the pack itself failed
        print(error_line(p.prog, e), file=sys.stderr)
        return 2
    return code


def error_line(prog: str, e: BaseException) -> str:
    "What stopped the campaign, in its own words: the library's `out_dir` is OUT (or a step's folder in it)."
    text = str(e)
    return f"{prog}: error: " + (f"argument OUT: {text[8:]}" if text.startswith("out_dir ") else text)


def run_steps(args) -> str:
    "The chosen steps, in their fixed order, until one stops at the budget; what to say at the end."
    deadline = time.time() + 60 * (args.budget_minutes if args.budget_minutes is not None else 1e9)
    args.skipped = []                                # the steps whose data are missing (`guarded`)
    for step, name, seeds in ((s, n, k) for s, n, k in STEPS if s in args.steps):
        print(f"[{step}] starting", flush=True)     # an error's line that follows is this step's
        if not run_step(step, name, 1 if args.smoke else seeds, args.out, args, deadline):
            return "campaign stopped at the budget: rerun (with --carry) to continue"
    return "campaign complete" + (f", but for {', '.join(args.skipped)} (no data)" if args.skipped else "")


if __name__ == "__main__":
    sys.exit(main())

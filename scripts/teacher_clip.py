#!/usr/bin/env python
"""Does the teacher need its gradient clip? One epoch of a benchmark's teacher, with and without the clip.

    python scripts/teacher_clip.py mnist --data-root DIR --out results/teacher-clip/mnist.md   # ~15 min, 1 CPU thread

The teacher of the benchmark (its architecture, batch size, weight decay and momentum) is trained for `--epochs` at a
constant learning rate (the first epochs of the cosine schedule run at nearly the full rate) for each learning rate,
clip (`none` or a gradient norm) and seed, on the training split less the benchmark's validation hold-out, and scored
on that hold-out; the test set is not touched. A chance-level validation error (about 90 % with 10 classes) means the
run never left its start. Each finished run is a row of the markdown table at `--out`, rewritten whole (atomically)
after every run; a rerun skips the rows already there, and the command the table names covers all its rows. One check
at a time per folder: a second one on the same folder is refused while the first runs.
"""
import argparse
import re
import reprlib
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from noisy_teachers.cli import (_OneLineParser, _data_root, _non_negative_int, _number_from, _positive_int, _positive_number,
                                _stopped, _terminate, _thread_count, _user_error, THREADS_MAX)
from noisy_teachers.data import DATASETS, DataNotFoundError, write_atomic
from noisy_teachers.experiments import Run, _missing_folder, folder_lock, get_config
from noisy_teachers.training import train_teacher

HEADER = ["| lr | clip | seed | train loss | validation error | steps clipped | seconds |", "|---|---|---|---|---|---|---|"]


_clip_number = _number_from(float, lambda v: v > 0, "'none' or a number > 0")


def clip(text: str) -> float | None:
    "An argparse type: 'none' (no clip) or a gradient norm > 0."
    return None if text == "none" else _clip_number(text)


def table_file(text: str) -> Path:
    "An argparse type: the table's path, not empty and not a folder."
    if not text.strip(): raise argparse.ArgumentTypeError(f"expected a file path, got {text!r}")
    if Path(text).is_dir(): raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    return Path(text)


def main(argv=None):
    p = _OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("benchmark", choices=DATASETS)
    p.add_argument("--data-root", type=_data_root, metavar="DIR",
                   help="the data folder (default: $NOISY_TEACHERS_DATA, else the per-user cache)")
    p.add_argument("--out", required=True, type=table_file, metavar="FILE",
                   help="the markdown table to write (resumed if it exists)")
    p.add_argument("--lrs", type=_positive_number, nargs="+", default=[0.05, 0.02], metavar="LR",
                   help="learning rates, each > 0 (default: 0.05 0.02)")
    p.add_argument("--clips", type=clip, nargs="+", default=[None, 2.0], metavar="CLIP",
                   help="gradient-norm clips, each 'none' or > 0 (default: none 2)")
    p.add_argument("--seeds", type=_non_negative_int, nargs="+", default=[0, 1, 2], metavar="K",
                   help="seeds (initial weights, shuffling), each >= 0 (default: 0 1 2)")
    p.add_argument("--epochs", type=_positive_int, default=1, metavar="N", help="epochs per run, N >= 1 (default: 1)")
    p.add_argument("--threads", type=_thread_count, default=1, metavar="N", help=f"torch threads, 1 to {THREADS_MAX} (default: 1)")
    a = p.parse_args(argv)
    a.command_parser = p                             # for `_user_error`: its lines start with this script's name
    torch.set_num_threads(a.threads)
    signal.signal(signal.SIGTERM, _terminate)        # `kill`, `timeout`: the same clean stop as Ctrl-C
    new = _missing_folder(a.out.parent)
    try:
        with folder_lock(a.out.parent, new=new): return check(a, p)   # two writers of one table would lose rows
    except KeyboardInterrupt as e:
        how, code = _stopped(e)
        done = f"the finished rows are in {a.out}" if a.out.exists() else "no row was finished"
        print(f"\n{p.prog}: {how}; {done}: rerun the same command to resume", file=sys.stderr)
        return code
    except (DataNotFoundError, OSError, ValueError) as e:    # no data, a full disk, an unusable --out
        return _user_error(e, a)                     # one line, as the noisy-teachers command says it; exit status 2


def check(a, p) -> int:
    "The runs `a` asks for that the table at `a.out` lacks, each added to it as it finishes."
    c = get_config(a.benchmark)
    run = Run(c, data_root=a.data_root, out_dir=a.out.parent, device="cpu", progress=False, write=False)
    train, val = run.data[0], run.val                # the benchmark's own split: its training set less its hold-out
    title = (f"# {a.benchmark}: the teacher ({c.teacher}), {a.epochs} epoch(s) at a constant learning rate, scored on "
             f"{len(val):,} validation images")
    try: lines = a.out.read_text().splitlines() if a.out.exists() else []
    except UnicodeDecodeError: p.error(f"argument --out: {a.out} is not a text file; use another file")
    lines = lines or [title]                         # a new (or empty) file
    if lines[0] != title: p.error(f"argument --out: {a.out} holds another check ({reprlib.repr(lines[0].removeprefix('# '))}); use another file")
    rows = [l for l in lines if l.startswith("| ") and l not in HEADER]
    key_of = lambda r: tuple(re.split(r"\s*\|\s*", r)[1:4])          # (lr, clip, seed) of a row
    done = {key_of(r) for r in rows}
    def command():                                   # the one command that makes every row of the table
        lrs, clips, seeds = (" ".join(dict.fromkeys(key_of(r)[i] for r in rows)) for i in range(3))
        return (f"python scripts/teacher_clip.py {a.benchmark} --lrs {lrs} --clips {clips} --seeds {seeds} "
                f"--epochs {a.epochs} --threads {a.threads} --data-root DIR --out {a.out}")
    for lr in a.lrs:
        for cl in a.clips:
            for seed in a.seeds:
                key = (f"{lr:g}", "none" if cl is None else f"{cl:g}", str(seed))
                if key in done: continue
                cfg = replace(c.teacher_train, epochs=a.epochs, schedule="constant", lr=lr, clip_grad_norm=cl, seed=seed)
                model = run.build(c.teacher, seed)
                t0 = time.time()
                h = train_teacher(model, train, val, cfg, progress=False)
                rows.append(f"| {' | '.join(key)} | {h.train_loss[-1]:.3f} | {100 * h.test_error[-1]:.2f} % | "
                            f"{100 * h.clip_fraction[-1]:.0f} % | {time.time() - t0:.0f} |")
                print(rows[-1], flush=True)
                write_atomic("\n".join([title, "", f"    {command()}", "", *HEADER, *rows]) + "\n", a.out)
                done.add(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Learning-rate search per arm family, on a validation split, at the full schedule (run by hand; resumable).

The three families train differently: cross-entropy on the labels ("hard"), Hinton's KD ("kd": T = 4, weight 0.9),
and L2 regression on raw logits ("l2", the family of the noisy teacher). Each is trained at every learning rate of
its grid with NO gradient clip (so no clip can bind), on the benchmark's own transfer set (the training split minus
its stratified validation hold-out of `val_size` images, fixed seed: the same split every run of the benchmark uses),
and scored on that hold-out after every epoch. The test set is not touched. The teacher is trained once on the same
reduced training split.

    python scripts/lr_search.py mnist --data-root DIR --out results/lr-search        # ~1.5 h on one CPU thread
    python scripts/lr_search.py cifar10 --data-root DIR --out runs/lr-search --device cuda --budget-minutes 60

Every benchmark of the book: digits, mnist, fashion-mnist (searched, in results/lr-search/), svhn and cifar10 (a GPU
job at their full schedules; `--budget-minutes` stops cleanly and the same command continues). `--tiny` runs the
benchmark's tiny configuration in under a minute (CI's smoke test).

Records (one JSON line per (family, lr)) go to OUT/<benchmark>.jsonl; a rerun skips finished ones and resumes an
interrupted one from its checkpoint in OUT/<benchmark>-checkpoints/ (removed once its record is written). A folder
holds one search (one seed, the tiny or the full configuration; another is refused) and one process at a time. A run
whose loss becomes non-finite is recorded as diverged, with validation error 1.0 at every epoch (its earlier epochs are
not kept). A finished search writes its report, OUT/<benchmark>.md (the table, the chosen rates) and .png (`--report`
writes them again from the records). The MNIST search (18 students, one thread each on a 2-core x86_64 CPU) took about 1.5 h: 75 min of students
by their records, plus the teacher.
"""
import json
import math
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from noisy_teachers import models
from noisy_teachers.data import DATASETS, DataNotFoundError, plain_log_axis, safe_load, save_atomic, write_atomic
from noisy_teachers.experiments import Run, _missing_folder, append_record, chosen_learning_rates, folder_lock, get_config
from noisy_teachers.training import Arm, BudgetReached, distil, teacher_logits, train_teacher

# Each grid spans at least 10x. L2 on raw logits gets a lower grid: the paper's eq. (1) sums over the classes and its
# gradient (g - z)/T grows with the gap between the student's and the teacher's logits, while cross-entropy's
# (q - p)/T has entries below 1 (chapter 00_logit_regression: at large temperature KD's gradient is 1/n of eq. (1)'s).
GRIDS = {
    "hard": (0.01, 0.03, 0.1, 0.3),
    "kd": (0.01, 0.03, 0.1, 0.3),
    "l2": (0.0003, 0.001, 0.003, 0.01),
    "hard_dropout": (0.003, 0.01, 0.03),    # the student with dropout (study 4.2.1) learns at its own rate: at the
    "l2_dropout": (0.0003, 0.001, 0.003),   # hard family's 0.1 it collapsed to chance on MNIST
}


def read_search(path: Path) -> list:
    "The search's records in `path` ([] if none); a line torn by a killed run is skipped."
    if not path.exists(): return []
    recs = []
    for line in path.read_text().splitlines():
        try: recs.append(json.loads(line))
        except json.JSONDecodeError: pass
    return [r for r in recs if isinstance(r, dict) and "family" in r]


def unfinished(recs: list, families) -> list:
    "The (family, lr) of the grids of `families`, and of any other family searched, that `recs` do not record yet."
    done = {(r["family"], r["lr"]) for r in recs}
    return [(f, lr) for f in dict.fromkeys([*families, *(r["family"] for r in recs)]) for lr in GRIDS[f] if (f, lr) not in done]


def report(path: Path, families=None):
    """The search as a Markdown table and a figure (validation error per epoch, one panel per family), beside `path`;
    of a search not finished (`unfinished`, over `families`, default: every family its configuration trains), only the
    table, printed, with no rate chosen: the files beside `path` mean a finished one."""
    import matplotlib
    matplotlib.use("Agg")
    recs = read_search(path)
    if not recs: raise ValueError(f"no search records in {path}: run the search first")
    todo = unfinished(recs, families or families_of(get_config(recs[0]["benchmark"], tiny=recs[0].get("variant") == "tiny")))
    best = {} if todo else chosen_learning_rates(recs)
    n_val = recs[0]["n_val"]
    lines = [f"# Learning-rate search: {recs[0]['benchmark']}", "",
             f"Seed {recs[0]['seed']}, {recs[0]['epochs']} epochs (cosine), batch {recs[0]['batch_size']}, momentum "
             f"{recs[0]['momentum']}, no gradient clip; validation set of {n_val:,} images held out of the training split "
             f"(1 image = {100 / n_val:.3g} pp). Chosen: the lowest final validation error, ties to the lower final validation "
             "loss; never a rate that diverged.", "",
             "| family | lr | final val error % | best epoch val error % | diverged |", "|---|---|---|---|---|"]
    for r in recs:
        mark = " **(chosen)**" if best.get(r["family"]) == r["lr"] else ""
        lines.append(f"| {r['family']} | {r['lr']:g}{mark} | {100 * r['final_val_error']:.2f} | "
                     f"{100 * r['best_val_error']:.2f} | {'yes' if r['diverged'] else ''} |")
    if todo:
        print("\n".join(lines[:1] + [f"\n**Not finished: {len(todo)} run{'s' * (len(todo) > 1)} to go** ("
              + ", ".join(f"{f} {lr:g}" for f, lr in todo) + "): no rate chosen yet, and nothing written; rerun the "
              "search to finish it."] + lines[1:]))
        return
    write_atomic("\n".join(lines) + "\n", path.with_suffix(".md"))
    fams = list(dict.fromkeys(r["family"] for r in recs))
    fig = _search_figure(recs, fams, best)
    save_atomic(fig, path.with_suffix(".png"), save=lambda fig, f: fig.savefig(f, format="png", bbox_inches="tight"))
    print("\n".join(lines))


def _search_figure(recs: list, fams: list, best: dict):
    """The search's figure: one panel per family, at most 3 to a row (readable at a page's ~900 px), validation error
    per epoch of each rate on one shared log axis labelled in plain numbers (9, 10, 12), the chosen rate thick; each
    panel's legend under its x label (never over the curves), naming the chosen rate and the rates that diverged."""
    import matplotlib.pyplot as plt
    ncols = min(3, len(fams)); nrows = math.ceil(len(fams) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 3.5 * nrows), dpi=100, sharey=True, squeeze=False,
                             layout="constrained")
    for ax in axes.flat[len(fams):]: ax.remove()       # a row that is not full: no empty frame
    for ax, fam in zip(axes.flat, fams):
        gone = []
        for r in (r for r in recs if r["family"] == fam):
            if r["diverged"]: gone.append(f"{r['lr']:g}"); continue
            chosen = best.get(fam) == r["lr"]
            ax.plot(range(1, len(r["val_error"]) + 1), [100 * e for e in r["val_error"]], lw=2.4 if chosen else 1.2,
                    label=f"lr {r['lr']:g}" + (" (chosen)" if chosen else ""))
        if gone: ax.plot([], [], " ", label=f"diverged: lr {', '.join(gone)}")
        ax.set(title=fam, xlabel="epoch", yscale="log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False,
                  handlelength=1.5, columnspacing=1.0)
    plain_log_axis(axes[0][0].yaxis)                   # shared: one panel's ticks and labels are all panels'
    for row in axes: row[0].set_ylabel("validation error (%)")
    fig.suptitle(f"{recs[0]['benchmark']}: validation error per epoch at each learning rate (no gradient clip)")
    return fig


def families_of(c) -> list:
    "The families a configuration trains: hard, KD, L2, and the dropout students where it has their own rates."
    return ["hard", "kd", "l2"] + [f for f, k in (("hard_dropout", "student_dropout_train"), ("l2_dropout", "l2_dropout_train"))
                                   if getattr(c, k) is not None]


def search(benchmark, out: Path, data_root=None, device="cpu", seed=0, families=None, tiny=False, deadline=None):
    """Train every (family, lr) of `families` (default `families_of`) on the benchmark's own splits (its `Run`: the
    same validation hold-out and transfer set as its students). Resumable; one search per folder (a `ValueError` names the
    other search a folder holds), one process at a time (`FolderBusyError`); raises `BudgetReached` past `deadline`."""
    c, new = get_config(benchmark, tiny=tiny), _missing_folder(out)
    run = Run(c, data_root=data_root, out_dir=out, device=device, progress=False, write=False)
    with folder_lock(out, new=new):                  # a folder made here and left empty (no data, say) is removed
        return _search(benchmark, c, run, run.data[0], run.val, out, seed, families, tiny, deadline)


def _search(benchmark, c, run, fit, val, out, seed, families, tiny, deadline):
    "`search`'s work, in its locked folder."
    log, ck = out / f"{benchmark}.jsonl", out / f"{benchmark}-checkpoints"
    this, found = dict(seed=seed, variant=c.variant if tiny else None, n_fit=len(fit), n_val=len(val)), read_search(log)
    mark = ck / "search.json"                    # whose checkpoints these are: a teacher may be there before any record
    seen = [{k: r.get(k) for k in this} for r in found]
    if mark.is_file():
        try: saved = json.loads(mark.read_text()); seen.append({k: saved[k] for k in this})
        except (ValueError, TypeError, KeyError) as e:
            why = f"{type(e).__name__}: {e}"
            raise ValueError(f"{mark} cannot be used ({why}); remove it if the folder is this search's") from None
    say = lambda s: f"seed {s['seed']}, {s['variant'] or 'full'} configuration, n_fit {s['n_fit']}, n_val {s['n_val']}"
    if that := next((s for s in seen if s != this), None):
        raise ValueError(f"{out} holds another search ({say(that)}), not this one ({say(this)}): use another --out")
    write_atomic(json.dumps(this) + "\n", mark)
    done = {(r["family"], r["lr"]) for r in found}
    teacher = run.build(c.teacher, seed)
    tpath = ck / "teacher.pt"
    if tpath.exists(): teacher.load_state_dict(safe_load(tpath))
    else:
        h = train_teacher(teacher, fit, val, replace(c.teacher_train, seed=seed, device=run.device),
                          checkpoint=ck / "teacher.train.pt", progress=False, deadline=deadline)
        print(f"teacher: validation error {100 * h.test_error[-1]:.2f} %", flush=True)
        save_atomic(teacher.state_dict(), tpath)
        (ck / "teacher.train.pt").unlink(missing_ok=True)          # finished: its weights are kept, not its training state
    teacher.eval()
    transfer = run.transfer(seed)                                    # as the benchmark's students (subset, augmented copies)
    z = teacher_logits(teacher, transfer, cache_dir=ck)
    arms = {"hard": Arm("hard"), "kd": Arm("kd", temperature=c.temperature, kd_weight=c.kd_weight), "l2": Arm("l2"),
            "hard_dropout": Arm("hard"), "l2_dropout": Arm("l2")}
    for fam in families or families_of(c):
        base = c.l2_train if fam.startswith("l2") else c.student_train
        arch = models.with_dropout(c.student, p=c.dropout) if fam.endswith("_dropout") else c.student
        for lr in GRIDS[fam]:
            if (fam, lr) in done: continue
            cfg = replace(base, lr=lr, clip_grad_norm=None, seed=seed, device=run.device)
            student = run.build(arch, seed)
            t0, diverged = time.perf_counter(), None
            state = ck / f"{fam}-lr{lr:g}.train.pt"                     # resumes an unfinished candidate; removed once recorded
            try:
                h = distil(student, transfer, val, cfg, arms[fam], targets=z, checkpoint=state, progress=False,
                           deadline=deadline).to_dict()
            except FloatingPointError as e:
                diverged, h = str(e), dict(test_error=[1.0] * cfg.epochs, test_loss=[math.nan] * cfg.epochs)
            rec = dict(benchmark=benchmark, family=fam, lr=lr, seed=seed, epochs=cfg.epochs, batch_size=cfg.batch_size,
                       schedule=cfg.schedule, momentum=cfg.momentum, weight_decay=cfg.weight_decay, clip_grad_norm=None,
                       clip_fraction=0.0,
                       n_fit=len(fit), n_transfer=len(transfer), n_val=len(val), val_error=h["test_error"], val_loss=h["test_loss"],
                       final_val_error=h["test_error"][-1], best_val_error=min(h["test_error"]), diverged=diverged,
                       wall_s=round(time.perf_counter() - t0, 1), torch=torch.__version__, device=str(run.device),
                       **({"variant": c.variant} if tiny else {}))
            append_record(log, rec)
            state.unlink(missing_ok=True)
            print(f"{fam} lr={lr:g}: final validation error {100 * rec['final_val_error']:.2f} %"
                  + (" (diverged)" if diverged else ""), flush=True)
    return log


def _device_or_auto(text: str) -> str:
    "An argparse type: 'auto' or what `noisy_teachers.cli._device` accepts."
    import argparse
    from noisy_teachers.cli import _device
    try: return text if text == "auto" else _device(text)
    except argparse.ArgumentTypeError: raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:<i>, mps or auto, got {text!r}") from None


def main(argv=None):
    from noisy_teachers.cli import (_OneLineParser, _data_root, _device_here, _folder, _non_negative_int, _positive_int,
                                    _positive_number, _stopped, _terminate, _thread_count, _user_error)
    p = _OneLineParser(description=__doc__.split("\n")[0])
    p.add_argument("benchmark", choices=DATASETS)
    p.add_argument("--data-root", type=_data_root, default=None, metavar="DIR",
                   help="folder holding the data set (default: $NOISY_TEACHERS_DATA, else the per-user cache)")
    p.add_argument("--out", type=_folder, required=True, metavar="OUT",
                   help="output folder: OUT/<benchmark>.jsonl (records), the checkpoints, and once the search is finished "
                        "its report, OUT/<benchmark>.md and .png")
    p.add_argument("--seed", type=_non_negative_int, default=0, metavar="K",
                   help="seed of the teacher and of every student (default: 0; the validation hold-out is the same for every K)")
    p.add_argument("--families", nargs="+", default=None, choices=list(GRIDS),
                   help="default: hard, kd, l2 and the dropout students where the benchmark has their own rates")
    p.add_argument("--device", type=_device_or_auto, default="cpu", metavar="D",
                   help="cpu, cuda, cuda:<i>, mps or auto (CUDA if available, then MPS, then the CPU; default: cpu)")
    p.add_argument("--threads", type=_thread_count, default=1, metavar="N", help="CPU threads for torch (default: 1)")
    p.add_argument("--budget-minutes", type=_positive_number, default=None, metavar="M",
                   help="stop cleanly at the end of the epoch that crosses M minutes (M > 0; rerun to continue)")
    p.add_argument("--tiny", action="store_true", help="the benchmark's tiny configuration (seconds; a smoke test)")
    p.add_argument("--report", action="store_true", help="train nothing: write OUT/<benchmark>.md and .png from the "
                   "records of a finished search (of one not finished: print its table, write nothing)")
    a = p.parse_args(argv)
    a.command_parser = p                             # for `_user_error`: its lines start with this script's name
    _device_here(p, a.device)                        # cuda without a GPU, a GPU index past the last one, ...
    torch.set_num_threads(a.threads)
    deadline = None if a.budget_minutes is None else time.time() + 60 * a.budget_minutes
    signal.signal(signal.SIGTERM, _terminate)        # `kill`, `timeout`, the machine's time running out: as Ctrl-C
    try:
        if a.report: report(a.out / f"{a.benchmark}.jsonl", a.families)
        else: report(search(a.benchmark, a.out, a.data_root, a.device, a.seed, a.families, a.tiny, deadline), a.families)
    except BudgetReached as e:
        print(f"{e}; rerun the same command to continue", flush=True)
    except KeyboardInterrupt as e:
        how, code = _stopped(e)
        print(f"\n{p.prog}: {how}; rerun the same command to resume", file=sys.stderr)
        return code
    except (DataNotFoundError, OSError, ValueError) as e:    # no data, a full disk, a folder in use or holding another search
        return _user_error(e, a)                     # one line, as the noisy-teachers command says it; exit status 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

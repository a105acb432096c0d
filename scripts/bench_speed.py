#!/usr/bin/env python
"""Speed benchmark of the noisy_teachers training engine (run by hand; not a test).

(a) CPU, on real MNIST (the `mnist_student` MLP FC800-FC800-FC10, batch 128):
    - a noisy-teacher student epoch from cached logits vs a hard-label epoch of the same student
      (target: ratio <= 1.1);
    - the engine's hard-label epoch vs the plain `DataLoader(TensorDataset)` loop a user would write
      (target: the engine at least as fast).
    Falls back to scikit-learn's 8x8 digits, with a note, when MNIST is not found (but not from an explicit
    --data-root: that is an error).
(b) CUDA (skipped with a message elsewhere): images per second for the MNIST teacher (LeNet) and student (MLP),
    the CIFAR-10 Network-in-Network teacher and its student, against a plain GPU-resident PyTorch loop (float32,
    data already on the GPU, randperm batches of 128) in the same run. Synthetic images of the right shape
    stand in for a data set that is not found (the speed does not depend on the pixel values).

(c) CPU, students batched with `training.distil_many` (K students of one architecture in one vmapped model) against
    the same K students trained one after another with `distil` (same epochs, batch, data, arms and learning rates):
    K = 8 `digits_student`s on the 8x8 digits (target: batched >= 1.7x as fast), and K = 8 MNIST MLPs
    (`mnist_student`, FC800-FC800-FC10) for a few hundred steps on a subset of real MNIST (8x8 digits upsampled are
    not used: without MNIST the MNIST row is skipped with a note). Part (b) also reports student-images/s of
    `distil_many` at K = 1, 8 and 32 (K students x images per second).

Every variant is timed `--repeats` times, interleaved, and the median is reported (ratios: the median over repeats
of the ratio within a repeat, robust to a machine whose load changes between repeats). Engine timings are the training
part of one epoch (`History.seconds`, evaluation excluded); the plain loops are timed the same way.
The teacher logits are stand-ins of realistic scale, and every run uses SGD (momentum 0.9, constant schedule, no
clipping) at lr 0.001 -- in (c), half the students at 0.002, to batch two learning rates -- so that no L2 student
diverges: the cost of a step depends on neither.

    python scripts/bench_speed.py                         # (a), (c), and (b) if CUDA is there
    python scripts/bench_speed.py --device cuda --repeats 5 --out results/bench_speed.json
    python scripts/bench_speed.py --part c --threads 1 --repeats 5 --out results/speed/cpu-batched.log
    python scripts/bench_speed.py --smoke                 # a few minutes: every code path on tiny data

MNIST is read from --data-root, else from $NOISY_TEACHERS_DATA (see `data.load_dataset`); CIFAR-10 from --cifar-root,
else from the same place as MNIST. A folder named by --data-root or --cifar-root that lacks the data set a part reads
is a one-line error naming the option, before anything runs. --out FILE.json writes the results as JSON; any other
--out FILE writes the printed log there and the JSON beside it (FILE with .json).
"""
import argparse
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path
from statistics import median

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from noisy_teachers import models
from noisy_teachers.data import DataNotFoundError, ImageData, data_root, load_dataset, subset, write_atomic
from noisy_teachers.training import Arm, TrainConfig, distil, distil_many, train_teacher

BATCH = 128
LR = 0.001   # timing only: small enough that no L2 student diverges on stand-in targets or synthetic images


def note(msg):
    print(f"  note: {msg}", flush=True)


@functools.lru_cache(maxsize=None)
def dataset(name, root):
    "load_dataset(name, root), loaded once (`check_roots` loads what the parts will read)."
    return load_dataset(name, root=root)


def not_found(name, root, e) -> str:
    "Why data set `name` could not be read from `root`, in one line."
    if isinstance(e, DataNotFoundError): return f"{name} not found in {data_root(root)}"
    return str(e).splitlines()[0]


def load_or_none(name, root):
    "dataset(name, root), or None with a note when it is not there (an explicit root without it: see `check_roots`)."
    try:
        return dataset(name, root)
    except (FileNotFoundError, ValueError) as e:        # DataNotFoundError is a FileNotFoundError
        note(f"{not_found(name, root, e)}; pass --data-root DIR or set $NOISY_TEACHERS_DATA")
        return None


def check_roots(args, p, device):
    "An explicit --data-root or --cifar-root that lacks a data set the chosen parts read: a parser error naming it."
    mnist = not args.smoke and (args.part != "b" or device.type == "cuda")          # (a), (c), and (b) on CUDA
    cifar = not args.smoke and args.part in ("b", "both", "all") and device.type == "cuda"
    for need, name, option, root in ((mnist, "mnist", "--data-root", args.data_root),
                                     (cifar, "cifar10", "--cifar-root" if args.cifar_root else "--data-root",
                                      args.cifar_root or args.data_root)):
        if not need or root is None: continue
        try: dataset(name, root)
        except (FileNotFoundError, ValueError) as e: p.error(f"argument {option}: {not_found(name, root, e)}")


def out_file(text: str) -> str:
    """An argparse type: --out's file path, not empty, not a folder, in a folder that is one or can be made and that can
    be written (checked before the benchmark runs, not after it)."""
    from noisy_teachers.experiments import _out_folder
    if not text.strip(): raise argparse.ArgumentTypeError(f"expected a file path, got {text!r}")
    if Path(text).is_dir(): raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    try: _out_folder(Path(text).parent, "its folder")                  # made now if missing, as the runs make theirs
    except ValueError as e: raise argparse.ArgumentTypeError(f"{text} cannot be written: {e}") from None
    return text


def synthetic(name, n_train, in_shape, n_classes=10, seed=0):
    "Random uint8 images of the right shape (speed does not depend on pixel values)."
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n_train, *in_shape), generator=g, dtype=torch.uint8)
    y = torch.randint(0, n_classes, (n_train,), generator=g)
    mean, std = torch.full((in_shape[0],), 0.5), torch.full((in_shape[0],), 0.29)
    classes = [str(i) for i in range(n_classes)]
    return (ImageData(x, y, mean, std, classes, f"synthetic-{name}"),
            ImageData(x[:1000].clone(), y[:1000].clone(), mean, std, classes, f"synthetic-{name}-test"))


def stand_in_logits(data, scale=8.0, seed=0):
    "Teacher-like logits: `scale` on the true class, small noise elsewhere (|z| up to about scale + 3)."
    g = torch.Generator().manual_seed(seed)
    y = data.labels.cpu()
    return scale * F.one_hot(y, data.n_classes).float() + torch.randn(len(y), data.n_classes, generator=g)


def fresh(name, data, device="cpu", seed=1):
    return models.build(name, data.in_shape, data.n_classes, generator=torch.Generator().manual_seed(seed)).to(device)


# ---------------------------------------------------------------------------------------------------- engine timings
def engine_epoch(name, train, test, arm, targets, device, lr=LR, amp=True, compile=False):
    "Seconds of one engine epoch (training part) of a freshly initialised `name`; `arm=None` trains a teacher."
    model = fresh(name, train, device)
    cfg = TrainConfig(epochs=1, batch_size=BATCH, lr=lr, schedule="constant", device=str(device), amp=amp, compile=compile)
    if arm is None:
        h = train_teacher(model, train, test, cfg, progress=False)
    else:
        h = distil(model, train, test, cfg, arm, targets=targets, progress=False)
    return h.seconds[0]


def batched_vs_sequential(name, train, test, arms, lrs, targets, device="cpu", epochs=1, sequential=True):
    """Training seconds (sum of `History.seconds`, evaluation excluded) of K = len(arms) freshly initialised `name`
    students trained together by `distil_many`, and (if `sequential`) of the same K trained one after another by
    `distil`: same weights, data, epochs, batch, arms and learning rates."""
    cfgs = [TrainConfig(epochs=epochs, batch_size=BATCH, lr=lr, schedule="constant", device=str(device), amp=False) for lr in lrs]
    students = [fresh(name, train, device, seed=1 + k) for k in range(len(arms))]
    hs = distil_many(students, train, test, cfgs, arms, targets=targets, progress=False)
    together = sum(hs[0].seconds)
    if not sequential:
        return together, None
    alone = sum(sum(distil(fresh(name, train, device, seed=1 + k), train, test, c, a, targets=targets, progress=False).seconds)
                for k, (a, c) in enumerate(zip(arms, cfgs)))
    return together, alone


# ---------------------------------------------------------------------------------------------------- plain loops
def plain_dataloader_epoch(name, train, lr=LR, seed=0):
    "The loop a user would write: DataLoader(TensorDataset(normalised floats, labels), shuffle=True), CPU."
    x = train.normalize(train.images.cpu())
    loader = DataLoader(TensorDataset(x, train.labels.cpu()), batch_size=BATCH, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    model = fresh(name, train)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    t0 = time.perf_counter()
    running = 0.0
    for xb, yb in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        running += loss.item()
    return time.perf_counter() - t0


def plain_gpu_epoch(name, train, device, lr=LR, seed=0):
    "A plain GPU-resident loop: normalised float32 data on the GPU, randperm batches, float32, loss.item() per step."
    x, y = train.normalize(train.images.to(device)), train.labels.to(device)
    model = fresh(name, train, device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    g = torch.Generator(device=device).manual_seed(seed)
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    perm = torch.randperm(len(x), device=device, generator=g)
    running = 0.0
    for i in range(0, len(x), BATCH):
        idx = perm[i:i + BATCH]
        opt.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        running += loss.item()
    torch.cuda.synchronize(device)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------------- the two parts
def part_a(args, results):
    print("\n(a) CPU: engine epochs on the mnist_student MLP, batch 128", flush=True)
    data = None if args.smoke else load_or_none("mnist", args.data_root)
    if data is None:
        data = dataset("digits", None)
        note("using scikit-learn's 8x8 digits instead of MNIST: the ratios are dominated by per-step overhead there")
    train, test = data
    if args.smoke:
        train = subset(train, min(len(train), 1024))
    test = subset(test, min(len(test), 1000))                  # evaluation is not timed; keep it short
    z = stand_in_logits(train)
    arms = {"hard": Arm("hard"), "l2": Arm("l2"), "noisy": Arm("noisy", sigma=0.1, alpha=0.15)}
    variants = {f"engine {k}": (lambda a=a: engine_epoch("mnist_student", train, test, a, z, "cpu")) for k, a in arms.items()}
    variants["plain DataLoader hard"] = lambda: plain_dataloader_epoch("mnist_student", train)
    print(f"  data {train.name}: {len(train)} training images {train.in_shape}; torch threads {torch.get_num_threads()}; "
          f"{args.repeats} repeats, interleaved, median", flush=True)
    warm = subset(train, min(len(train), 512))
    engine_epoch("mnist_student", warm, test, arms["noisy"], stand_in_logits(warm), "cpu")   # warm-up (first-call costs)
    times = {k: [] for k in variants}
    for r in range(args.repeats):
        for k, f in variants.items():
            times[k].append(f())
        print(f"  repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()), flush=True)
    med = {k: median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    print(f"\n  {'variant':<24}{'median s/epoch':>16}{'min s/epoch':>13}{'img/s (median)':>16}")
    for k, v in med.items():
        print(f"  {k:<24}{v:>16.3f}{best[k]:>13.3f}{len(train) / v:>16,.0f}")
    # ratios within each repeat (the variants of one repeat ran back to back, under the same machine load), then the median
    per_rep = lambda a, b: median([x / y for x, y in zip(times[a], times[b])])
    r1, r2 = per_rep("engine noisy", "engine hard"), per_rep("engine hard", "plain DataLoader hard")
    print(f"\n  ratios (median over repeats of the ratio within a repeat; ratio of the medians; of the minima):")
    print(f"  noisy / hard epoch time          = {r1:.3f}; {med['engine noisy'] / med['engine hard']:.3f}; "
          f"{best['engine noisy'] / best['engine hard']:.3f}  (target <= 1.10: {'met' if r1 <= 1.10 else 'NOT met'})")
    print(f"  engine hard / plain DataLoader  = {r2:.3f}; {med['engine hard'] / med['plain DataLoader hard']:.3f}; "
          f"{best['engine hard'] / best['plain DataLoader hard']:.3f}  (target <= 1.00: {'met' if r2 <= 1.0 else 'NOT met'}; "
          f"engine {1 / r2:.2f}x as fast)", flush=True)
    results["cpu"] = dict(data=train.name, n_train=len(train), threads=torch.get_num_threads(), repeats=args.repeats,
                          seconds=times, median_seconds=med, min_seconds=best, noisy_over_hard=r1, engine_over_dataloader=r2)


def part_b(args, results, device):
    what = ("engine (fp32, bf16) vs a plain GPU-resident loop" if device.type == "cuda" else
            "engine fp32 only (bf16 and the plain GPU loop need CUDA)")
    print(f"\n(b) {device}: images per second, {what} (batch 128)", flush=True)
    if device.type != "cuda" and not args.smoke:
        print(f"  skipped: no CUDA device here (device {device}); run on a GPU machine with --device cuda", flush=True)
        results["cuda"] = dict(skipped=f"no CUDA device (device {device})")
        return
    benches = [("mnist", "mnist_teacher", None), ("mnist", "mnist_student", 0.15),
               ("cifar10", "nin", None), ("cifar10", "cifar10_student", 0.5)]
    shapes = {"mnist": ((1, 28, 28), 60000), "cifar10": ((3, 32, 32), 50000)}
    loaded = {}
    for name, (shape, n) in shapes.items():
        d = None if args.smoke else load_or_none(name, args.data_root if name == "mnist" else args.cifar_root or args.data_root)
        if d is None:
            n = 128 if args.smoke else n
            d = synthetic(name, n, shape)
            note(f"{name}: synthetic uint8 images {shape} x {n} stand in (speed does not depend on pixel values)")
        loaded[name] = (d[0].to(device), subset(d[1], min(len(d[1]), 1000)).to(device))
    rows = []
    for dname, mname, alpha in benches:
        train, test = loaded[dname]
        z = stand_in_logits(train).to(device)
        arm = None if alpha is None else Arm("noisy", sigma=0.1, alpha=alpha)
        role = "teacher (hard labels)" if arm is None else f"student (noisy α={alpha})"
        variants = {"engine fp32": lambda: engine_epoch(mname, train, test, arm, z, device, amp=False, compile=args.compile)}
        if device.type == "cuda":          # bf16 autocast exists on CUDA only; the plain loop needs torch.cuda
            variants["engine bf16"] = lambda: engine_epoch(mname, train, test, arm, z, device, amp=True, compile=args.compile)
            variants["plain GPU loop fp32"] = lambda: plain_gpu_epoch(mname, train, device)
        for f in variants.values():
            f()                                                     # warm-up: cuDNN autotuning, allocator, compile
        times = {k: [] for k in variants}
        for _ in range(args.repeats):
            for k, f in variants.items():
                times[k].append(f())
        for k, v in times.items():
            rows.append(dict(data=train.name, model=mname, role=role, variant=k, n_train=len(train),
                             median_seconds=median(v), images_per_second=len(train) / median(v), seconds=v))
            print(f"  {train.name:<18}{mname:<17}{role:<24}{k:<20}{len(train) / median(v):>12,.0f} img/s", flush=True)
    train, test = loaded["mnist"]
    z = stand_in_logits(train).to(device)
    arm = Arm("noisy", sigma=0.1, alpha=0.15)
    for K in (1, 8, 32):                                # distil_many: K students of the MNIST MLP in one vmapped model
        f = lambda K=K: batched_vs_sequential("mnist_student", train, test, [arm] * K, [LR] * K, z, device, sequential=False)[0]
        f()                                                                                # warm-up
        v = [f() for _ in range(args.repeats)]
        rows.append(dict(data=train.name, model="mnist_student", role=f"{K} students (noisy) batched", variant="distil_many fp32",
                         n_train=len(train), K=K, median_seconds=median(v), student_images_per_second=K * len(train) / median(v),
                         seconds=v))
        print(f"  {train.name:<18}{'mnist_student':<17}{f'{K} students batched':<24}{'distil_many fp32':<20}"
              f"{K * len(train) / median(v):>12,.0f} student-img/s", flush=True)
    results["cuda"] = dict(device=torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
                           repeats=args.repeats, compile=args.compile, rows=rows)


def part_c(args, results):
    print("\n(c) CPU: K students trained together (distil_many) vs one after another (distil), batch 128", flush=True)
    arms = [Arm("hard"), Arm("l2"), Arm("kd"), Arm("noisy", sigma=0.1, alpha=0.15)] * 2       # 8 students, 4 arms,
    lrs = [LR] * 4 + [2 * LR] * 4                                                              # two learning rates
    digits = dataset("digits", None)
    setups = {"digits_student K=8": ("digits_student", digits[0], digits[1], 1 if args.smoke else 5)}
    mnist = None if args.smoke else load_or_none("mnist", args.data_root)
    if mnist is not None:
        setups["mnist_student K=8"] = ("mnist_student", subset(mnist[0], 6400, seed=0), subset(mnist[1], 1000), 4)
    elif args.smoke:
        setups["mnist_student K=8"] = ("mnist_student", *synthetic("mnist", 256, (1, 28, 28)), 1)
        note("smoke: synthetic 28x28 images stand in for MNIST")
    else:
        note("MNIST not found: the mnist_student row is skipped (pass --data-root or set $NOISY_TEACHERS_DATA)")
    print(f"  torch threads {torch.get_num_threads()}; {args.repeats} repeats, batched and sequential interleaved; "
          "seconds = training time (History.seconds), evaluation excluded", flush=True)
    warm = subset(digits[0], 256)
    batched_vs_sequential("digits_student", warm, digits[1], arms, lrs, stand_in_logits(warm))          # warm-up
    out = {}
    for label, (name, train, test, epochs) in setups.items():
        z = stand_in_logits(train)
        steps = epochs * -(-len(train) // BATCH)
        print(f"  {label}: {train.name}, {len(train)} images, {epochs} epochs = {steps} steps per student", flush=True)
        together, alone = [], []
        for r in range(args.repeats):
            t, a = batched_vs_sequential(name, train, test, arms, lrs, z, epochs=epochs)
            together.append(t); alone.append(a)
            print(f"    repeat {r + 1}: batched {t:.3f}s, sequential {a:.3f}s, speed-up {a / t:.2f}x", flush=True)
        speedup = median([a / t for a, t in zip(alone, together)])
        print(f"  {label}: median batched {median(together):.3f}s, sequential {median(alone):.3f}s; speed-up (median of the "
              f"per-repeat ratios) {speedup:.2f}x" + (f" (target >= 1.7x: {'met' if speedup >= 1.7 else 'NOT met'})"
                                                       if name == "digits_student" else ""), flush=True)
        out[label] = dict(data=train.name, n_train=len(train), epochs=epochs, steps=steps, K=len(arms),
                          batched_seconds=together, sequential_seconds=alone, speedup=speedup)
    results["cpu_batched"] = dict(threads=torch.get_num_threads(), repeats=args.repeats, runs=out)


def main(argv=None):
    from noisy_teachers.cli import _OneLineParser, _device, _device_here, _positive_int, _thread_count, THREADS_MAX
    p = _OneLineParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", type=_device, default=None, metavar="D",
                   help="device for part (b): cpu, cuda, cuda:<i> or mps (default: CUDA if available, then MPS, then the CPU)")
    p.add_argument("--repeats", type=_positive_int, default=5, metavar="N",
                   help="timed repeats of each variant (N >= 1); the median is reported")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="folder holding MNIST (default: $NOISY_TEACHERS_DATA, else the per-user cache; see data.load_dataset)")
    p.add_argument("--cifar-root", default=None, metavar="DIR",
                   help="folder (or tarball) holding CIFAR-10 for part (b) (default: --data-root, else as for MNIST)")
    p.add_argument("--part", choices=["a", "b", "c", "both", "all"], default="all",
                   help="a, b or c; 'both' = a and b; 'all' (default) = a, b and c")
    p.add_argument("--threads", type=_thread_count, default=None, metavar="N",
                   help=f"torch CPU threads, 1 to {THREADS_MAX} (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="part (b): TrainConfig(compile=True) (CUDA only)")
    p.add_argument("--smoke", action="store_true", help="tiny data, runs part (b) on any device: checks the code paths")
    p.add_argument("--out", type=out_file, default=None, metavar="FILE",
                   help="FILE.json: the results as JSON; any other FILE: the log, and the JSON beside it")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = _device_here(p, args.device)            # cuda without a GPU, a GPU index past the last one, ...
    check_roots(args, p, device)
    results = dict(command=" ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
                   torch=torch.__version__, python=platform.python_version(), machine=platform.machine(),
                   cpu_count=os.cpu_count(), time=time.strftime("%Y-%m-%d %H:%M:%S"))
    log = Tee() if args.out and not args.out.endswith(".json") else None
    try:
        print(f"noisy_teachers speed benchmark: torch {torch.__version__}, {os.cpu_count()} CPUs, part (b) device {device}")
        print(f"command: {results['command']}")
        if args.part in ("a", "both", "all"):
            part_a(args, results)
        if args.part in ("b", "both", "all"):
            part_b(args, results, device)
        if args.part in ("c", "all"):
            part_c(args, results)
    finally:
        if log is not None:
            sys.stdout = log.stdout
    if args.out:
        out = Path(args.out)
        json_out = out if log is None else out.with_suffix(".json")
        try:
            write_atomic(json.dumps(results, indent=1), json_out)
            if log is not None:
                write_atomic(log.text() + f"\nwrote {out} and {json_out}\n", out)
        except OSError as e:                          # a disk that filled meanwhile: the results are not lost
            print(f"{p.prog}: error: {e}; the results, as JSON:\n{json.dumps(results, indent=1)}", file=sys.stderr)
            sys.exit(2)
        print(f"\nwrote {out}" + ("" if log is None else f" and {json_out}"))
    return results


class Tee:
    "Copy everything printed to stdout into a buffer as well (the log that --out writes)."
    def __init__(self):
        self.stdout, self.parts = sys.stdout, []
        sys.stdout = self

    def write(self, s):
        self.parts.append(s)
        return self.stdout.write(s)

    def flush(self):
        self.stdout.flush()

    def text(self):
        return "".join(self.parts)


if __name__ == "__main__":
    main()

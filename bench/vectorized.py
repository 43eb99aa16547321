"""Vectorized sweeps (issue 4): sequential vs 2 single-thread processes vs vectorized, interleaved, one process.

    python bench/vectorized.py [--tasks mnist1d-mlp,mnist1d-cnn,digits-mlp] [--seeds 3,5] [--with-8]
                               [--epochs 5] [--repeats 2] [--threads 1] [--device auto] [--gpu-runs 1,8,32]

For each task and each sweep size (the six schedules of ``lrlab.config.DEFAULT_SCHEDULES`` × N seeds) it
times the same runs four ways, in rotating order within each repeat:

- ``sequential``: ``train(task, run)`` for every run, one after another, one thread (the CLI's setting);
- ``2 procs``: the runs spread over a warm pool of 2 single-thread processes (one run per task);
- ``vectorized``: ``train_many(task, runs)`` in this process with ``--threads`` threads;
- ``vec × 2 procs``: the runs split in two halves, each half ``train_many`` in one of the 2 processes.

On a CUDA machine (``--device auto``, the default, finds it; or ``--device cuda``) it measures the GPU instead:
for each task and each K of ``--gpu-runs``, K runs trained one after another on the GPU against the same K runs
as one batched model there (``train_many``), their ratio, and how closely they agree. Without CUDA it says so
and measures the CPU as above.

A cell is the fastest repeat's wall time. Achieved FLOP/s counts the matmul/convolution FLOPs of every training
step (forward and backward, ``torch.utils.flop_counter``) and every validation forward; the reference is this
machine's single-thread ``torch.mm`` (1024 x 1024) FLOP/s measured at the start. The vectorized results are
checked against the sequential ones: bitwise-equal runs for MLPs, the largest loss difference over the first
100 steps for the CNN. The pool's start-up and the first ``torch.func.grad`` call (it imports ``torch._dynamo``,
a one-time cost per process) are measured once and reported apart.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

import torch
from torch.utils.flop_counter import FlopCounterMode

from lrlab.batched import tune_allocator
from lrlab.config import DEFAULT_SCHEDULES
from lrlab.devices import resolve_device
from lrlab.runs import RunSpec, steps_per_epoch
from lrlab.tasks import Task, load_task
from lrlab.trainer import train
from lrlab.vectorized import train_many

MODES = ("sequential", "2 procs", "vectorized", "vec × 2 procs")

# ---- worker processes (one thread each) ----------------------------------------------------------------------

_TASKS: dict[str, Task] = {}


def _task(name: str) -> Task:
    if name not in _TASKS:
        _TASKS[name] = load_task(name)
    return _TASKS[name]


def _init_worker(task_names: Sequence[str]) -> None:
    torch.set_num_threads(1)
    for name in task_names:
        _task(name)


def _warm_worker(name: str) -> float:
    start = time.perf_counter()
    task = _task(name)
    run = RunSpec("constant()", 0, 1, task.batch_size, task.optimizer)
    train(task, run)
    train_many(task, [run])
    return time.perf_counter() - start


def _train_one(name: str, run: RunSpec) -> float:
    return train(_task(name), run).train_loss[-1]


def _train_group(name: str, runs: list[RunSpec]) -> int:
    return len(train_many(_task(name), runs))


# ---- measurements ------------------------------------------------------------------------------------------

def matmul_flops(threads: int, size: int = 1024, repeats: int = 7) -> float:
    """Best-of-``repeats`` FLOP/s of ``torch.mm`` on two ``size`` x ``size`` float32 matrices."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(5):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - start) / 5)
    return 2 * size**3 / best


def sweep_flops(task: Task, runs: Sequence[RunSpec]) -> float:
    """Matmul/conv FLOPs of all training steps and validation passes of ``runs`` (no divergence assumed)."""
    model = task.make_model()
    with FlopCounterMode(display=False) as train_count:
        batch = slice(0, runs[0].batch_size)
        task.loss_fn(model(task.x_train[batch]), task.y_train[batch]).backward()
    with FlopCounterMode(display=False) as val_count, torch.no_grad():
        model(task.x_val)
    total = 0.0
    for run in runs:
        steps = run.epochs * steps_per_epoch(task, run.batch_size)
        total += steps * train_count.get_total_flops() + run.epochs * val_count.get_total_flops()
    return total


def first_grad_call_s() -> float:
    """Seconds of the first ``torch.func.grad`` call in this process (it imports ``torch._dynamo``)."""
    start = time.perf_counter()
    torch.func.grad(lambda x: (x * x).sum())(torch.ones(2))
    return time.perf_counter() - start


def compare(task: Task, runs: list[RunSpec], sequential: list, vectorized: list) -> str:
    """How closely the vectorized runs follow the sequential ones."""
    if all(a.train_loss == b.train_loss and a.epochs == b.epochs for a, b in zip(sequential, vectorized, strict=True)):
        return f"bitwise equal: {len(runs)}/{len(runs)} runs"
    equal = sum(a.train_loss == b.train_loss for a, b in zip(sequential, vectorized, strict=True))
    gaps = sorted(max((abs(x - y) for x, y in zip(a.train_loss[:100], b.train_loss[:100], strict=False)), default=0.0)
                  for a, b in zip(sequential, vectorized, strict=True))
    close = sum(gap < 1e-6 for gap in gaps)
    return (f"bitwise equal: {equal}/{len(runs)} runs; max |Δ train loss| over the first 100 steps < 1e-6: "
            f"{close}/{len(runs)} runs (median {gaps[len(gaps) // 2]:.0e}, worst {gaps[-1]:.0e})")


def bench_one(task: Task, runs: list[RunSpec], pool: ProcessPoolExecutor, repeats: int,
              threads: int) -> tuple[dict[str, float], str]:
    """Best wall time of each mode over ``repeats`` rounds, modes in rotating order; and the equivalence check."""
    half = len(runs) // 2
    results: dict[str, list] = {}

    def sequential() -> None:
        torch.set_num_threads(1)
        results["sequential"] = [train(task, run) for run in runs]

    def two_procs() -> None:
        list(pool.map(_train_one, [task.name] * len(runs), runs))

    def vectorized() -> None:
        torch.set_num_threads(threads)
        results["vectorized"] = train_many(task, runs)
        torch.set_num_threads(1)

    def vec_two_procs() -> None:
        list(pool.map(_train_group, [task.name] * 2, [runs[:half], runs[half:]]))

    fns: dict[str, Callable[[], None]] = dict(zip(MODES, (sequential, two_procs, vectorized, vec_two_procs),
                                                  strict=True))
    best = dict.fromkeys(MODES, float("inf"))
    for r in range(repeats):
        for mode in MODES[r % len(MODES):] + MODES[:r % len(MODES)]:
            start = time.perf_counter()
            fns[mode]()
            best[mode] = min(best[mode], time.perf_counter() - start)
    return best, compare(task, runs, results["sequential"], results["vectorized"])


def bench_gpu(task_names: Sequence[str], counts: Sequence[int], epochs: int, device: str, repeats: int) -> None:
    """K runs one after another on ``device`` vs the same K as one batched model there: a table row per (task, K)."""
    def timed(fn: Callable[[], list]) -> tuple[float, list]:
        best, out = float("inf"), []
        for _ in range(repeats):
            torch.cuda.synchronize(device)
            start = time.perf_counter()
            out = fn()
            torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
        return best, out

    print(f"device: {device} ({torch.cuda.get_device_name(device)}); torch {torch.__version__}")
    print("| task | K runs | K sequential s | K batched s | sequential / batched | batched s per run | "
          "max Δ train loss, first 100 steps |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in task_names:
        task = load_task(name)
        specs = list(DEFAULT_SCHEDULES.values())
        warm = RunSpec("constant()", 0, 1, task.batch_size, task.optimizer, device=device)
        train(task, warm)
        train_many(task, [warm])
        for k in counts:
            runs = [RunSpec(specs[i % len(specs)], i // len(specs), epochs or task.epochs, task.batch_size,
                            task.optimizer, device=device) for i in range(k)]
            seq_s, seq = timed(lambda runs=runs, task=task: [train(task, run) for run in runs])
            vec_s, vec = timed(lambda runs=runs, task=task: train_many(task, runs, max_members=len(runs)))
            gap = max(max((abs(x - y) for x, y in zip(a.train_loss[:100], b.train_loss[:100], strict=False)),
                          default=0.0) for a, b in zip(seq, vec, strict=True))
            print(f"| {name} | {k} | {seq_s:.2f} | {vec_s:.2f} | {seq_s / vec_s:.1f}× | {vec_s / k:.3f} | "
                  f"{gap:.1e} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="mnist1d-mlp,mnist1d-cnn,digits-mlp")
    parser.add_argument("--seeds", default="3,5", help="comma-separated seed counts (× 6 schedules)")
    parser.add_argument("--with-8", action="store_true", help="add the 6 × 8 sweep")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (0: the task's default)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the in-process vectorized trainer")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--gpu-runs", default="1,8,32", help="comma-separated K: runs trained at once on a GPU")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if device.startswith("cuda"):
        bench_gpu(args.tasks.split(","), [int(k) for k in args.gpu_runs.split(",")], args.epochs, device,
                  args.repeats)
        return
    print(f"no CUDA device here (torch {torch.__version__}, device {device}): the GPU figures need a GPU machine "
          "(python bench/vectorized.py --device cuda); measuring the CPU")

    start = time.perf_counter()
    torch.set_num_threads(1)
    tuned = tune_allocator()
    task_names = args.tasks.split(",")
    seed_counts = [int(s) for s in args.seeds.split(",")] + ([8] if args.with_8 else [])
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"torch {torch.__version__}; allocator tuned: {tuned}")
    peak = {t: matmul_flops(t) for t in sorted({1, args.threads})}
    torch.set_num_threads(1)
    print("torch.mm 1024² FLOP/s: " + ", ".join(f"{t} thread(s) {f / 1e9:.1f} GFLOP/s" for t, f in peak.items()))
    print(f"first torch.func.grad call in this process (one-time): {first_grad_call_s():.2f} s")
    pool_start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx, initializer=_init_worker, initargs=(task_names,)) as pool:
        list(pool.map(_warm_worker, task_names * 2))
        print("2-process pool start-up and warm-up (one-time, not timed below): "
              f"{time.perf_counter() - pool_start:.1f} s")
        rows = []
        for name in task_names:
            task = load_task(name)
            epochs = args.epochs or task.epochs
            warm = RunSpec("constant()", 0, 1, task.batch_size, task.optimizer)
            train(task, warm)
            train_many(task, [warm])
            for seeds in seed_counts:
                runs = [RunSpec(spec, seed, epochs, task.batch_size, task.optimizer)
                        for spec in DEFAULT_SCHEDULES.values() for seed in range(seeds)]
                best, check = bench_one(task, runs, pool, args.repeats, args.threads)
                flops = sweep_flops(task, runs)
                rows.append((name, f"6×{seeds}", best, flops))
                print(f"{name} 6×{seeds} ({epochs} epochs, {len(runs)} runs): " + ", ".join(
                    f"{m} {best[m]:.2f} s" for m in MODES) + f"; {check}", flush=True)

    single = peak[1]
    print()
    print("| task | runs | sequential s | 2 procs s | vectorized s | vec × 2 procs s | vec / seq | vec / 2 procs | "
          "vec × 2 procs / seq | GFLOP/s seq → vec | vec % of 1-thread mm |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, size, best, flops in rows:
        seq, two, vec, vec2 = (best[m] for m in MODES)
        print(f"| {name} | {size} | {seq:.2f} | {two:.2f} | {vec:.2f} | {vec2:.2f} | {seq / vec:.2f}× | "
              f"{two / vec:.2f}× | {seq / vec2:.2f}× | {flops / seq / 1e9:.1f} → {flops / vec / 1e9:.1f} | "
              f"{100 * flops / vec / single:.0f}% |")
    print(f"\n(vectorized with {args.threads} thread(s); load average now {os.getloadavg()[0]:.1f}; "
          f"whole benchmark {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

"""Wall time of the default study (`lrlab compare`: 6 schedules x 5 seeds on mnist1d-mlp), per trainer.

    python bench/compare.py [--seeds N] [--task NAME] [--trainers sequential auto] [--repeats R]
    python bench/compare.py --trainers sequential auto --backends local dask ray --repeats 1 [--tune-grid]
    python bench/compare.py --overhead 200 --backends dask ray --repeats 3

For each trainer, interleaved over repeats: per-schedule mean wall time per run, the sweep's wall time, the
report's, and the total; then the sweep-time ratio of each trainer to the first (median over repeats).
``--overhead N``: each cluster engine's own cost instead, started by lrlab with 2 workers (lrlab.executors): the
time to start it, and per task over N empty tasks after a warm-up (no training, no task loaded).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict

import torch

from lrlab.config import parse_config
from lrlab.report import make_report
from lrlab.runner import plan_sweep, run_sweep, set_threads_for_small_models


def study(task: str, seeds: int, trainer: str, backend: str = "local",
          peak_lr: str | None = None) -> dict[str, float | dict[str, list[float]]]:
    """Run the default study once into a temporary directory (``peak_lr='tune'``: only the first schedule's
    tune-lr grid); return its timings."""
    start = time.perf_counter()
    config = parse_config({"task": task, "seeds": seeds, "trainer": trainer, "backend": backend})
    if peak_lr == "tune":  # a tune-lr grid: the first schedule at 7 LRs (0.01-0.316) x 3 seeds, as one sweep
        from lrlab.tune import lr_grid
        from lrlab.tuner import grid_name

        spec = next(iter(config.schedules.values()))
        lrs = lr_grid(0.01, 0.3, 4)
        config = config.model_copy(update={"schedules": {grid_name(lr): spec for lr in lrs}, "seeds": 3,
                                           "peak_lrs": {grid_name(lr): lr for lr in lrs}})
    with tempfile.TemporaryDirectory() as out:
        with plan_sweep(config, out) as sweep:
            prepared = time.perf_counter()
            used = run_sweep(sweep)
            swept = time.perf_counter()
            runs = sweep.store.runs()
        make_report(out)
        reported = time.perf_counter()
        per_schedule: dict[str, list[float]] = defaultdict(list)
        for run in runs:
            per_schedule[run.schedule].append(run.wall_s)
    return {"prepare": prepared - start, "sweep": swept - prepared, "report": reported - swept,
            "total": reported - start, "per_schedule": per_schedule, "used": used}


def _nothing(i: int) -> int:
    return i


def engine_overhead(backend: str, tasks: int) -> dict[str, float]:
    """Seconds to start ``backend``'s own 2-worker cluster (:func:`lrlab.executors.open_executor`), and seconds
    per task over ``tasks`` empty tasks submitted at once, after as many to warm its workers up."""
    from lrlab.executors import open_executor

    start = time.perf_counter()
    executor = open_executor(backend, None, "vectorized", 2, tasks)
    started = time.perf_counter()
    try:
        if backend == "dask":
            def run() -> None:
                executor.client.gather([executor.client.submit(_nothing, i, pure=False) for i in range(tasks)])
        else:
            import ray

            remote = ray.remote(_nothing)

            def run() -> None:
                ray.get([remote.remote(i) for i in range(tasks)])
        run()
        warm = time.perf_counter()
        run()
        done = time.perf_counter()
    finally:
        executor.close()
    return {"start": started - start, "per_task": (done - warm) / tasks}


def overhead(backends: list[str], tasks: int, repeats: int) -> None:
    """Print each engine's start time and per-task cost (medians over ``repeats``, interleaved)."""
    results: dict[str, list[dict[str, float]]] = defaultdict(list)
    for _ in range(repeats):
        for backend in backends:
            results[backend].append(engine_overhead(backend, tasks))
    print(f"engine overhead: 2 single-thread workers started by lrlab, {tasks} empty tasks, {repeats} repeats "
          "(medians)")
    print(f"{'backend':<10}{'start s':>9}{'ms/task':>9}")
    for backend, runs in results.items():
        print(f"{backend:<10}{statistics.median(r['start'] for r in runs):>9.2f}"
              f"{1000 * statistics.median(r['per_task'] for r in runs):>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["local"], help="local, dask, ray: each trainer on each")
    parser.add_argument("--overhead", type=int, metavar="N", help="time N empty tasks per cluster engine instead")
    parser.add_argument("--tune-grid", action="store_true", help="time a tune-lr grid (7 LRs x 3 seeds) instead")
    parser.add_argument("--task", default="mnist1d-mlp")
    parser.add_argument("--trainers", nargs="+", default=["sequential", "auto"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    set_threads_for_small_models()
    if args.overhead:
        overhead([b for b in args.backends if b != "local"], args.overhead, args.repeats)
        return
    results: dict[str, list[dict]] = defaultdict(list)
    combos = [(trainer, backend) for backend in args.backends for trainer in args.trainers]
    for _ in range(args.repeats):
        for trainer, backend in combos:  # interleaved: load drifts hit every trainer alike
            results[f"{trainer}/{backend}"].append(
                study(args.task, args.seeds, trainer, backend, "tune" if args.tune_grid else None))

    what = "a tune-lr grid (7 LRs x 3 seeds)" if args.tune_grid else f"default study: 6 schedules x {args.seeds} seeds"
    print(f"{what} on {args.task}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s) per process, {args.repeats} repeats (medians)")
    labels = list(results)
    first = statistics.median(r["sweep"] for r in results[labels[0]])
    print(f"{'trainer/backend':<22}{'sweep s':>9}{'s/run':>8}{'report s':>10}{'total s':>9}{'speed-up':>10}  used")
    for label, runs in results.items():
        sweep = statistics.median(r["sweep"] for r in runs)
        n = sum(len(t) for t in runs[0]["per_schedule"].values())
        print(f"{label:<22}{sweep:>9.2f}{sweep / n:>8.3f}{statistics.median(r['report'] for r in runs):>10.2f}"
              f"{statistics.median(r['total'] for r in runs):>9.2f}{first / sweep:>9.2f}x  {runs[-1]['used']}")
    print()
    print(f"per run ({labels[0]}, last repeat): {'schedule':<16}{'runs':>6}{'mean s/run':>12}")
    for name, times in results[labels[0]][-1]["per_schedule"].items():
        print(f"{'':<32}{name:<16}{len(times):>6}{statistics.mean(times):>12.3f}")


if __name__ == "__main__":
    main()

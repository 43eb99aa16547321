"""Wall time of the default study (`lrlab compare`: 6 schedules x 5 seeds on mnist1d-mlp), per trainer.

    python bench/compare.py [--seeds N] [--task NAME] [--trainers sequential auto] [--repeats R]

For each trainer, interleaved over repeats: per-schedule mean wall time per run, the sweep's wall time, the
report's, and the total; then the sweep-time ratio of each trainer to the first (median over repeats).
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


def study(task: str, seeds: int, trainer: str) -> dict[str, float | dict[str, list[float]]]:
    """Run the default study once into a temporary directory; return its timings."""
    start = time.perf_counter()
    config = parse_config({"task": task, "seeds": seeds, "trainer": trainer})
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--task", default="mnist1d-mlp")
    parser.add_argument("--trainers", nargs="+", default=["sequential", "auto"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    set_threads_for_small_models()
    results: dict[str, list[dict]] = defaultdict(list)
    for _ in range(args.repeats):
        for trainer in args.trainers:  # interleaved: load drifts hit every trainer alike
            results[trainer].append(study(args.task, args.seeds, trainer))

    print(f"default study on {args.task}: 6 schedules x {args.seeds} seeds, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s) per process, {args.repeats} repeats (medians)")
    first = statistics.median(r["sweep"] for r in results[args.trainers[0]])
    print(f"{'trainer':<12}{'sweep s':>9}{'s/run':>8}{'report s':>10}{'total s':>9}{'sweep speed-up':>16}  used")
    for trainer, runs in results.items():
        sweep = statistics.median(r["sweep"] for r in runs)
        n = sum(len(t) for t in runs[0]["per_schedule"].values())
        print(f"{trainer:<12}{sweep:>9.2f}{sweep / n:>8.3f}{statistics.median(r['report'] for r in runs):>10.2f}"
              f"{statistics.median(r['total'] for r in runs):>9.2f}{first / sweep:>15.2f}x  {runs[-1]['used']}")
    print()
    print(f"per run ({args.trainers[0]}, last repeat): {'schedule':<16}{'runs':>6}{'mean s/run':>12}")
    for name, times in results[args.trainers[0]][-1]["per_schedule"].items():
        print(f"{'':<32}{name:<16}{len(times):>6}{statistics.mean(times):>12.3f}")


if __name__ == "__main__":
    main()

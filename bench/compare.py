"""Wall time of the default study (`lrlab compare`: 6 schedules x 5 seeds on mnist1d-mlp, sequential trainer).

    python bench/compare.py [--seeds N] [--task NAME]

Prints per-schedule mean wall time per run, the sweep total, the report's time and the whole command's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict

import torch

from lrlab.experiment import open_store, parse_config, prepare, run_experiment, set_threads_for_small_models
from lrlab.report import make_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--task", default="mnist1d-mlp")
    args = parser.parse_args()

    start = time.perf_counter()
    set_threads_for_small_models()
    config = parse_config({"task": args.task, "seeds": args.seeds})
    experiment = prepare(config)
    prepared = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        store = open_store(out, config)
        run_experiment(experiment, store)
        swept = time.perf_counter()
        make_report(out)
        reported = time.perf_counter()
        per_schedule: dict[str, list[float]] = defaultdict(list)
        for run in store.runs():
            per_schedule[run.schedule].append(run.wall_s)
        store.close()

    print(f"default study on {args.task}: {len(config.schedules)} schedules x {args.seeds} seeds, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"{'schedule':<16}{'runs':>6}{'mean s/run':>12}{'min':>8}{'max':>8}")
    for name, times in per_schedule.items():
        print(f"{name:<16}{len(times):>6}{statistics.mean(times):>12.3f}{min(times):>8.3f}{max(times):>8.3f}")
    runs = sum(len(t) for t in per_schedule.values())
    print(f"{'load task + check specs':<32}{prepared - start:>8.1f} s")
    print(f"{'sweep (' + str(runs) + ' runs)':<32}{swept - prepared:>8.1f} s   ({(swept - prepared) / runs:.3f} s/run)")
    print(f"{'report (figures, html, csv)':<32}{reported - swept:>8.1f} s")
    print(f"{'total':<32}{reported - start:>8.1f} s")


if __name__ == "__main__":
    main()

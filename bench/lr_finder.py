"""Evidence for the LR range test (issue 5): does the finder's LR, used as OneCycle's max_lr, train as well as
the best peak LR of a grid?

For each task: run the finder (3 seeds, its defaults), then train ``onecycle(max_lr=X)`` for every X of a
log-spaced grid and for the finder's LR, 3 seeds each, and compare final validation losses. The finder's LR
is "within noise" of the best grid point when Welch's t-test cannot tell them apart (p > 0.05), or its mean is
within one standard deviation of the best's, or better. Judged twice: on the final validation loss and on the
final validation accuracy (they can disagree: a high LR can raise accuracy and the loss together). A grid point
with a diverged run ranks last.

    python bench/lr_finder.py                       # digits-mlp, mnist1d-mlp, mnist1d-cnn (~3-5 min, 2 CPUs)
    python bench/lr_finder.py --charlm --jobs 2     # also charlm-transformer (AdamW; several more minutes)
    python bench/lr_finder.py --tasks digits-mlp --figures /tmp/finder   # one task, and the finder's figure

Prints one markdown table per task (paste into bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from lrlab.finder import find_lr_for_task
from lrlab.tasks import load_task
from lrlab.trainer import RunSpec, train

DEFAULT_TASKS = ("digits-mlp", "mnist1d-mlp", "mnist1d-cnn")
CHARLM = "charlm-transformer"
# peak-LR grids: SGD-momentum tasks and Adam-family tasks live a few decades apart
GRIDS = {"sgd": (1e-3, 1.0), "adam": (1e-4, 1e-1), "adamw": (1e-4, 1e-1)}


def _one_run(task_name: str, max_lr: float, seed: int, epochs: int | None) -> tuple[float, float]:
    """Final validation loss and accuracy of one OneCycle run (inf, nan when it diverged)."""
    torch.set_num_threads(1)
    task = load_task(task_name)
    run = RunSpec(f"onecycle(max_lr={max_lr!r})", seed, epochs or task.epochs, task.batch_size, task.optimizer)
    metrics = train(task, run)
    if metrics.diverged_step is not None or not metrics.epochs:
        return math.inf, math.nan
    last = metrics.epochs[-1]
    return float(last["val_loss"]), float(last["val_acc"]) if last["val_acc"] is not None else math.nan


def _summary(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation; (nan, nan) when a run diverged."""
    array = np.asarray(values)
    if not np.all(np.isfinite(array)):
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def _rank(values: list[float], sign: float) -> float:
    """A sort key, lower is better: ``sign * mean`` (sign -1 for accuracy), +inf for a diverged point."""
    mean = _summary(values)[0]
    return sign * mean if math.isfinite(mean) else math.inf


def _compare(finder: list[float], best: list[float], sign: float) -> tuple[float, bool, bool]:
    """Welch's p-value, whether the finder is within noise of the best (p > 0.05, or within one of the best's
    standard deviations, or better), and whether it is better."""
    f_mean, _ = _summary(finder)
    b_mean, b_std = _summary(best)
    if not math.isfinite(f_mean):
        return math.nan, False, False
    with np.errstate(all="ignore"):
        p = float(stats.ttest_ind(finder, best, equal_var=False).pvalue)
    better = sign * f_mean < sign * b_mean
    within = better or abs(f_mean - b_mean) <= b_std or (math.isfinite(p) and p > 0.05)
    return p, within, better


def _verdict(metric: str, p: float, within: bool, better: bool) -> str:
    word = "within noise" if within else "NOT within noise"
    return f"{metric}: p = {p:.2g}, **{word}**" + (" (better)" if better else "")


def bench_task(name: str, seeds: int, grid_points: int, epochs: int | None, pool: ProcessPoolExecutor,
               figures: Path | None) -> str:
    task = load_task(name)
    start = time.perf_counter()
    result = find_lr_for_task(task, seeds=range(seeds))
    finder_s = time.perf_counter() - start
    rec = result.recommendation
    if figures is not None:
        from lrlab.finder_plot import plot_finder
        plot_finder(result, figures / f"{name}.png")
    low, high = GRIDS[task.optimizer.name]
    grid = [float(v) for v in np.geomspace(low, high, grid_points)]
    lrs = [*grid, rec.lr]
    start = time.perf_counter()
    jobs = {(i, seed): pool.submit(_one_run, name, lr, seed, epochs) for i, lr in enumerate(lrs)
            for seed in range(seeds)}
    runs = {key: job.result() for key, job in jobs.items()}
    train_s = time.perf_counter() - start
    loss = [[runs[i, s][0] for s in range(seeds)] for i in range(len(lrs))]
    acc = [[runs[i, s][1] for s in range(seeds)] for i in range(len(lrs))]
    finder = len(lrs) - 1
    best_loss = min(range(len(grid)), key=lambda i: _rank(loss[i], 1))
    best_acc = min(range(len(grid)), key=lambda i: _rank(acc[i], -1))

    def cell(values: list[float], scale: float, digits: int) -> str:
        mean, std = _summary(values)
        if not math.isfinite(mean):
            return f"diverged ({sum(not math.isfinite(v) for v in values)}/{seeds})"
        return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"

    def row(i: int) -> str:
        notes = [text for flag, text in ((i == best_loss, "best loss"), (i == best_acc, "best acc")) if flag]
        if i == finder:
            notes = [_verdict("loss", *_compare(loss[i], loss[best_loss], 1)),
                     _verdict("acc", *_compare(acc[i], acc[best_acc], -1))]
        label = "**finder**" if i == finder else "grid"
        return f"| {label} | {lrs[i]:.3g} | {cell(loss[i], 1, 4)} | {cell(acc[i], 100, 1)} | {'; '.join(notes)} |"

    per_method = ", ".join(f"{k} {v:.3g}" if v is not None else f"{k} -" for k, v in rec.per_method.items())
    lines = [
        f"### {name} ({task.optimizer.name}, {epochs or task.epochs} epochs, {seeds} seeds)",
        "",
        f"Finder: {result.settings['num_steps']} updates from {result.settings['min_lr']:g} to "
        f"{result.settings['max_lr']:g}, {finder_s:.1f} s for {seeds} sweeps; recommended **{rec.lr:.3g}** "
        f"(interval {rec.low:.3g} – {rec.high:.3g}; per method: {per_method}). Training: {train_s:.0f} s.",
        "",
        "| run | OneCycle max_lr | final val loss (mean ± std) | final val acc % (mean ± std) | vs best grid point |",
        "|---|---|---|---|---|",
        *(row(i) for i in range(len(lrs))),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated task names")
    parser.add_argument("--charlm", action="store_true", help=f"also run {CHARLM} (slow on a CPU)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--grid", type=int, default=6, help="peak LRs in the grid (log-spaced)")
    parser.add_argument("--epochs", type=int, default=None, help="override every task's epochs (default: task's)")
    parser.add_argument("--jobs", type=int, default=1, help="training runs in parallel (processes, 1 thread each)")
    parser.add_argument("--figures", type=Path, default=None, help="write each finder figure here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny models: one thread each is fastest and leaves the other cores to --jobs
    names = [n for n in args.tasks.split(",") if n] + ([CHARLM] if args.charlm else [])
    print(f"# python {' '.join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])])}")
    print(f"# torch {torch.__version__}, {os.cpu_count()} CPUs, jobs={args.jobs}\n")
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for name in names:
            print(bench_task(name, args.seeds, args.grid, args.epochs, pool, args.figures), flush=True)
    print(f"total: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

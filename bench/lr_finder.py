"""Evidence for the LR range test (issue 5) and for ``tune-lr`` (issue 12): does the finder's LR, or tune-lr's
pick, used as OneCycle's max_lr, train as well as the best peak LR of a fine grid?

tune-lr runs as ``lrlab tune-lr --schedule onecycle()`` would: its own grid (4 per decade over the finder's bracket,
widened at an edge, refined around its pick), 3 seeds held out from the fine grid's (1000..1002), as batched
sweeps; and again with ``--halving`` (successive halving). Each pick is then trained with the fine grid's seeds
like every other candidate. Their cost (runs, full-run equivalents, seconds) is printed beside the fine grid's.

For each task: run the finder (3 seeds, its defaults), then train ``onecycle(max_lr=X)`` for every X of a
log-spaced grid and for the finder's LR, ``--seeds`` seeds each. Judged on three metrics, each against its own
best grid point: the final validation loss (what lrlab's reports rank schedules by), the final validation
accuracy, and the best validation loss over the run's epochs (the checkpoint early stopping would keep). They
can disagree: a high LR can overfit the loss while raising the accuracy. A point is "within noise" of the best
when Welch's t-test cannot tell them apart (p > 0.05), or its mean is within one standard deviation of the
best's, or better. For each metric the table also lists the grid's own points within noise of its best (the
"good region"), so one can see whether the metrics' good regions overlap at all. A grid point with a diverged
run ranks last.

    python bench/lr_finder.py                       # digits-mlp, mnist1d-mlp, mnist1d-cnn (~10 min, 2 CPUs)
    python bench/lr_finder.py --charlm --jobs 2     # also charlm-transformer (AdamW; ~15 more minutes)
    python bench/lr_finder.py --tasks digits-mlp --figures /tmp/finder   # one task, and the finder's figure
    python bench/lr_finder.py --tasks charlm-transformer-pre,examples.my_task:make_task   # held-out tasks
    python bench/lr_finder.py --tasks digits-mlp --optimizer adamw                        # held-out optimizer

Prints one markdown table per task and a summary (paste into bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lrlab.config import parse_config
from lrlab.finder import find_lr_for_task
from lrlab.runs import RunSpec
from lrlab.stats import compare as welch
from lrlab.store import Store
from lrlab.tasks import OptimizerDefaults, load_task
from lrlab.trainer import train
from lrlab.tune import TuneResult
from lrlab.tuner import bracket_from, peak_step, tune_schedule

DEFAULT_TASKS = ("digits-mlp", "mnist1d-mlp", "mnist1d-cnn")
CHARLM = "charlm-transformer"
# peak-LR grids (decades): SGD-momentum tasks and Adam-family tasks live a few decades apart
GRIDS = {"sgd": (-3, 0), "adam": (-4, 0), "adamw": (-4, 0)}
# --optimizer: standard settings for a held-out check (the LR is the schedule's)
OPTIMIZERS = {"sgd": OptimizerDefaults(name="sgd", lr=0.1, momentum=0.9),
              "adam": OptimizerDefaults(name="adam", lr=1e-3),
              "adamw": OptimizerDefaults(name="adamw", lr=1e-3, weight_decay=0.01)}


@dataclass(frozen=True)
class Metric:
    """One way to judge a run: its key in :func:`_one_run`'s result, its label, and +1 (lower is better) or -1."""

    index: int
    label: str
    sign: float
    scale: float
    digits: int


METRICS = (Metric(0, "final val loss", 1, 1, 4), Metric(1, "final val acc %", -1, 100, 1),
           Metric(2, "best-epoch val loss", 1, 1, 4))


def _one_run(task_name: str, max_lr: float, seed: int, epochs: int | None,
             optimizer: OptimizerDefaults | None) -> tuple[float, float, float]:
    """Final validation loss, final validation accuracy and lowest per-epoch validation loss of one OneCycle run
    (inf, nan, inf when it diverged)."""
    torch.set_num_threads(1)
    task = load_task(task_name)
    run = RunSpec(f"onecycle(max_lr={max_lr!r})", seed, epochs or task.epochs, task.batch_size,
                  optimizer or task.optimizer)
    metrics = train(task, run)
    if metrics.diverged_step is not None or not metrics.epochs:
        return math.inf, math.nan, math.inf
    last = metrics.epochs[-1]
    acc = float(last["val_acc"]) if last["val_acc"] is not None else math.nan
    return float(last["val_loss"]), acc, min(float(e["val_loss"]) for e in metrics.epochs)


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


def _compare(candidate: list[float], best: list[float], sign: float) -> tuple[float, bool, bool]:
    """Welch's p-value, whether ``candidate`` is within noise of ``best`` (p > 0.05, or within one of the best's
    standard deviations, or better), and whether it is better."""
    c_mean, _ = _summary(candidate)
    b_mean, b_std = _summary(best)
    if not math.isfinite(c_mean):
        return math.nan, False, False
    p = welch(candidate, best).p_value
    better = sign * c_mean < sign * b_mean
    within = better or abs(c_mean - b_mean) <= b_std or (math.isfinite(p) and p > 0.05)
    return p, within, better


def _region_text(lrs: list[float]) -> str:
    """A good region as text: its first and last grid LR and how many points it holds."""
    if not lrs:  # the metric does not exist (a regression task has no accuracy)
        return "–"
    return f"{lrs[0]:.3g}" if len(lrs) == 1 else f"{lrs[0]:.3g} – {lrs[-1]:.3g} ({len(lrs)} points)"


def _tune(config: object, rec: object, halving: bool) -> tuple[TuneResult, str]:
    """``tune-lr --schedule onecycle()`` on the finder's bracket (seeds 1000-1002, batched sweeps); its pick and
    its cost: runs, full-run equivalents (all updates trained / one run's) and seconds."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tune_dir:
        tuned = tune_schedule(config, "onecycle()", tune_dir, bracket_from(rec), seeds=range(1000, 1003),
                              halving=halving)
        seconds = time.perf_counter() - start
        with Store(tune_dir, readonly=True) as store:
            updates = [len(store.step_metrics(r.id)["lr"]) for r in store.runs()]
    full = peak_step(config, "onecycle()")[0]
    return tuned, f"{len(updates)} runs = {sum(updates) / full:.1f} full, {seconds:.0f} s"


def bench_task(name: str, seeds: int, per_decade: int, epochs: int | None, optimizer: OptimizerDefaults | None,
               pool: ProcessPoolExecutor, figures: Path | None) -> tuple[str, str]:
    """Run one task's finder and grid; return its markdown section and its summary row.

    Trained besides the grid: the recommendation and each method's own pick (the median over the finder's seeds),
    so the table shows how every suggestion rule does, not only the combined one.
    """
    task = load_task(name)
    title = f"{name}, {optimizer.name}" if optimizer else name
    used = f"{optimizer.name} instead of {task.optimizer.name}" if optimizer else task.optimizer.name
    start = time.perf_counter()
    result = find_lr_for_task(task, seeds=range(3), optimizer=optimizer)
    finder_s = time.perf_counter() - start
    rec = result.recommendation
    if figures is not None:
        from lrlab.finder import plot_finder
        plot_finder(result, figures / f"{title.replace(', ', '-').replace(':', '_')}.png")
    opt = {} if optimizer is None else {k: v for k, v in asdict(optimizer).items() if k != "lr"}
    config = parse_config({"task": name, "epochs": epochs, "optimizer": opt})
    tuned, tune_cost = _tune(config, rec, halving=False)
    halved, halving_cost = _tune(config, rec, halving=True)
    low, high = GRIDS[(optimizer or task.optimizer).name]
    grid = [float(v) for v in np.logspace(low, high, (high - low) * per_decade + 1)]
    picks = {"**finder**": rec.lr, "**tune-lr**": tuned.peak_lr, "**tune-lr --halving**": halved.peak_lr,
             **{m: v for m, v in rec.per_method.items() if v is not None}}
    lrs = list(dict.fromkeys([*grid, *picks.values()]))  # a pick equal to another LR is trained once
    start = time.perf_counter()
    jobs = {(i, seed): pool.submit(_one_run, name, lr, seed, epochs, optimizer) for i, lr in enumerate(lrs)
            for seed in range(seeds)}
    runs = {key: job.result() for key, job in jobs.items()}
    train_s = time.perf_counter() - start
    values = {m.label: [[runs[i, s][m.index] for s in range(seeds)] for i in range(len(lrs))] for m in METRICS}
    best = {m.label: min(range(len(grid)), key=lambda i, m=m: _rank(values[m.label][i], m.sign)) for m in METRICS}
    good = {m.label: [i for i in range(len(grid))
                      if _compare(values[m.label][i], values[m.label][best[m.label]], m.sign)[1]] for m in METRICS}

    def verdict(m: Metric, lr: float) -> tuple[float, bool, bool]:
        return _compare(values[m.label][lrs.index(lr)], values[m.label][best[m.label]], m.sign)

    def cell(m: Metric, i: int) -> str:
        mean, std = _summary(values[m.label][i])
        if not math.isfinite(mean):
            return f"diverged ({sum(not math.isfinite(v) for v in values[m.label][i])}/{seeds})"
        mark = "**" if i == best[m.label] else ""
        text = f"{mark}{m.scale * mean:.{m.digits}f} ± {m.scale * std:.{m.digits}f}{mark}"
        return text + (" ·" if i in good[m.label] and i != best[m.label] else "")

    def row(label: str, lr: float) -> str:
        return f"| {label} | {lr:.3g} | " + " | ".join(cell(m, lrs.index(lr)) for m in METRICS) + " |"

    def said(m: Metric, lr: float) -> str:
        p, within, better = verdict(m, lr)
        word = "within noise" if within else "**NOT** within noise"
        return f"{word} (p = {p:.2g}{', better' if better else ''})"

    def yes(m: Metric, lr: float) -> str:
        return "yes" if verdict(m, lr)[1] else "**no**"

    edges = [m.label for m in METRICS if best[m.label] in (0, len(grid) - 1)]
    per_method = ", ".join(f"{k} {v:.3g}" if v is not None else f"{k} -" for k, v in rec.per_method.items())
    both = [lrs[i] for i in good[METRICS[0].label] if i in good[METRICS[1].label]]
    loss = METRICS[0]
    section = "\n".join([
        f"### {name} ({used}, {epochs or task.epochs} epochs, {seeds} seeds per point)",
        "",
        f"Finder: 3 sweeps of {result.settings['num_steps']} updates from {result.settings['min_lr']:g} to "
        f"{result.settings['max_lr']:g}, {finder_s:.1f} s; recommended **{rec.lr:.3g}** "
        f"(interval {rec.low:.3g} – {rec.high:.3g}; per method: {per_method}). tune-lr: {tuned.line()}, "
        f"{tune_cost}; with --halving: {halved.line()}, {halving_cost}. The fine grid: {len(grid) * seeds} runs; "
        f"all training here (grid and picks, one process each): {train_s:.0f} s.",
        "",
        "| run | OneCycle max_lr | " + " | ".join(m.label + " (mean ± std)" for m in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
        *(row("grid", lr) for lr in grid),
        *(row(label, lr) for label, lr in picks.items()),
        "",
        "Bold: the best grid point of each metric; ·: a grid point within noise of it.",
        "",
        *(f"- {m.label}: best grid point {grid[best[m.label]]:.3g}, good region "
          f"{_region_text([grid[i] for i in good[m.label]])}; the finder's {rec.lr:.3g} is {said(m, rec.lr)}"
          for m in METRICS),
        "- each method's pick, on the final val loss: "
        + "; ".join(f"{label} {lr:.3g} {said(loss, lr)}" for label, lr in list(picks.items())[1:]),
        f"- grid points within noise of the best on both final loss and final accuracy: "
        f"{', '.join(f'{v:.3g}' for v in both) if both else '**none**'}",
        *([f"- **the best grid point is at the grid's edge** for: {', '.join(edges)}"] if edges else []),
        "",
    ])
    summary = (f"| {title} | {rec.lr:.3g} ({rec.low:.3g} – {rec.high:.3g}) | "
               + " | ".join(f"{t.peak_lr:.3g}: {yes(loss, t.peak_lr)} (p = {verdict(loss, t.peak_lr)[0]:.2g}); {cost}"
                            for t, cost in ((tuned, tune_cost), (halved, halving_cost)))
               + f" | {len(grid) * seeds} runs | "
               + " | ".join(f"{grid[best[m.label]]:.3g}; {yes(m, rec.lr)} (p = {verdict(m, rec.lr)[0]:.2g})"
                            for m in METRICS)
               + " | " + ", ".join(f"{label} {yes(loss, lr)}" for label, lr in list(picks.items())[1:])
               + f" | {'yes' if both else '**no**'} |")
    return section, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated task names")
    parser.add_argument("--charlm", action="store_true", help=f"also run {CHARLM} (slow on a CPU)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per grid point (the finder uses 3)")
    parser.add_argument("--per-decade", type=int, default=3, help="grid points per decade of peak LR")
    parser.add_argument("--epochs", type=int, default=None, help="override every task's epochs (default: task's)")
    parser.add_argument("--jobs", type=int, default=1, help="training runs in parallel (processes, 1 thread each)")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=None,
                        help="replace every task's optimizer by this one with standard settings (a held-out check)")
    parser.add_argument("--figures", type=Path, default=None, help="write each finder figure here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny models: one thread each is fastest and leaves the other cores to --jobs
    names = [n for n in args.tasks.split(",") if n] + ([CHARLM] if args.charlm else [])
    print(f"# python {' '.join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])])}")
    print(f"# torch {torch.__version__}, {os.cpu_count()} CPUs, jobs={args.jobs}\n")
    start = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for name in names:
            section, row = bench_task(name, args.seeds, args.per_decade, args.epochs,
                                      OPTIMIZERS.get(args.optimizer), pool, args.figures)
            print(section, flush=True)
            rows.append(row)
    print("Summary (each metric: best grid point; is the finder within noise of it?):\n")
    print("| task | finder's LR (interval) | tune-lr's pick: within noise on final val loss?; its cost | "
          "with --halving | the fine grid's cost | " + " | ".join(m.label for m in METRICS)
          + " | each method's pick, by final val loss | any grid LR good on final loss and acc? |")
    print("|---|---|---|---|---|" + "---|" * (len(METRICS) + 2))
    print("\n".join(rows) + "\n")
    print(f"total: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The claims' figures, one panel per task.

- :func:`plot_lr_sweeps` (claims 6a, 6b): where the constant schedule was tuned, its tuning grid and the LR
  sweep around it (held-out seeds): the mean final validation loss with the seeds' range, the tuned LR as a
  filled circle, and every LR where a seed diverged as a red ``x`` at the panel's top with how many did.
- :func:`plot_schedules` (claims 1, 3, 4, 5, 9, 10): each schedule's final validation loss at its peak LR,
  every seed and the mean with its 95% CI, best first, schedule-free in its own colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lrlab.report.claims import final_loss
from lrlab.report.data import Study
from lrlab.report.figures import save_figure
from lrlab.stats import describe
from lrlab.study.verdicts import TaskStudies, constant_sweep

SWEEP_FIGURE, SCHEDULES_FIGURE = "claims_lr_sweep.png", "claims_schedules.png"


def plot_lr_sweeps(tasks: Sequence[TaskStudies], path: str | Path) -> Path | None:
    """Draw the constant-LR sweep of each of ``tasks`` into the PNG ``path``; None (nothing written) when no
    task's constant schedule was tuned."""
    swept = [(t.task, s) for t in tasks if (s := constant_sweep(t)) is not None]
    if not swept:
        return None
    fig = Figure(figsize=(3.6 * len(swept), 3.4))
    axes = fig.subplots(1, len(swept), squeeze=False)[0]
    for ax, (task, (pick, points, _added)) in zip(axes, swept, strict=True):
        lrs = np.array([p[0] for p in points])
        means = np.array([p[1].mean() if len(p[1]) else math.nan for p in points])
        lows = np.array([p[1].min() if len(p[1]) else math.nan for p in points])
        highs = np.array([p[1].max() if len(p[1]) else math.nan for p in points])
        ok = np.isfinite(means)
        ax.plot(lrs[ok], means[ok], "-o", color="tab:blue", markersize=3)
        ax.fill_between(lrs[ok], lows[ok], highs[ok], color="tab:blue", alpha=0.15, linewidth=0)
        best = next(i for i, p in enumerate(points) if p[0] == pick)
        ax.plot([pick], [means[best]], "o", color="tab:blue", markersize=8)
        for lr, finished, diverged in points:
            if diverged:
                ax.plot([lr], [0.97], "x", color="tab:red", markersize=8, transform=ax.get_xaxis_transform())
                ax.annotate(f"{diverged}/{diverged + len(finished)}", (lr, 0.9), xycoords=("data", "axes fraction"),
                            ha="center", fontsize=7, color="tab:red")
        ax.set_xscale("log")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("constant LR")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("final validation loss (mean, seed range)")
    fig.suptitle("Claims 6a/6b: the constant LR's tuning grid and the sweep around it; "
                 "o = tuned LR, x = seeds diverged", fontsize=9)
    return save_figure(fig, Path(path))


def plot_schedules(tasks: Sequence[TaskStudies], path: str | Path) -> Path | None:
    """Draw each task's schedules (and its schedule-free contender) into the PNG ``path``: final validation loss
    per seed and the mean's 95% CI, best first, labelled with the peak LR; None when no task has schedules."""
    drawn = [t for t in tasks if t.schedules is not None]
    if not drawn:
        return None
    fig = Figure(figsize=(4.4 * len(drawn), 3.8), layout="constrained")
    axes = fig.subplots(1, len(drawn), squeeze=False)[0]
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    for ax, task in zip(axes, drawn, strict=True):
        entries = [(_label(study, runs.name), final_loss(runs), len(runs.diverged), study is task.schedulefree)
                   for study in (task.schedules, task.schedulefree) if study is not None
                   for runs in study.schedules.values()]
        entries.sort(key=lambda e: e[1].mean() if len(e[1]) else math.inf)
        for y, (_, values, diverged, free) in enumerate(entries):
            color = "tab:purple" if free else "tab:blue"
            ax.scatter(values, y + rng.uniform(-0.15, 0.15, len(values)), color=color, alpha=0.6, s=14, zorder=3)
            summary = describe(values)
            if summary.n:
                xerr = None if summary.n < 2 else [[summary.mean - summary.ci_low], [summary.ci_high - summary.mean]]
                ax.errorbar(summary.mean, y + 0.3, xerr=xerr, fmt="D", color="black", ms=4, capsize=3, zorder=4)
            if diverged:
                ax.annotate(f"{diverged} diverged", (0.98, y), xycoords=("axes fraction", "data"), ha="right",
                            va="center", fontsize=7, color="tab:red")
        ax.set_yticks(range(len(entries)), [e[0] for e in entries], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(task.task, fontsize=9)
        ax.set_xlabel("final validation loss")
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Each schedule at its peak LR (@): seeds, and black the mean with its 95% CI, best on top; "
                 "purple = schedule-free", fontsize=9)
    return save_figure(fig, Path(path))


def _label(study: Study, name: str) -> str:
    lr = study.peak_lr_of(name)
    return name if lr is None else f"{name} @ {lr:.3g}"

"""The claims' figure: each task's constant-LR sweep (claims 6a and 6b), final validation loss against the LR.

One panel per task whose constant schedule was tuned: the tuning grid and the LR sweep above it (held-out
seeds), the mean final validation loss with the seeds' range, the tuned LR as a filled circle, and every LR
where a seed diverged as a red ``x`` at the panel's top with how many of its seeds did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lrlab.report.files import replacing
from lrlab.study.verdicts import TaskStudies, constant_sweep

SWEEP_FIGURE = "claims_lr_sweep.png"


def plot_lr_sweeps(tasks: Sequence[TaskStudies], path: str | Path, dpi: int = 110) -> Path | None:
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
    fig.suptitle("Claims 6a/6b: the constant LR's tuning grid and the sweep above it; "
                 "o = tuned LR, x = seeds diverged", fontsize=9)
    path = Path(path)
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path

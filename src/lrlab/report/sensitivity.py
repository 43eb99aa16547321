"""The LR-sensitivity figure: final validation loss (and accuracy) against peak LR, one curve per schedule.

It shows which schedules forgive a wrong peak LR: a flat curve around its minimum is a schedule that trains as
well at half or twice its best LR; a steep one needs tuning. Each curve is the mean over seeds with a band from
the lowest to the highest seed; diverged seeds are left out of the band, and a point where any seed diverged
is drawn as an ``x``. The tuned pick of each schedule is a filled circle, its good region a thicker segment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from lrlab.report.files import replacing
from lrlab.tune import TuneResult

SENSITIVITY_NAME = "lr_sensitivity.png"


def plot_sensitivity(results: Mapping[str, TuneResult], path: str | Path, dpi: int = 110) -> Path:
    """Draw ``results`` (schedule name -> its tuned grid) into the PNG ``path``; return the path.

    One panel for the final validation loss, and one for accuracy when any grid point has one.
    """
    with_acc = any(p.accuracy is not None for r in results.values() for p in r.points)
    fig = Figure(figsize=(11 if with_acc else 6.5, 4.2))
    axes = fig.subplots(1, 2 if with_acc else 1, squeeze=False)[0]
    cmap = colormaps["tab10" if len(results) <= 10 else "tab20"]
    for i, (name, result) in enumerate(results.items()):
        color = cmap(i % cmap.N)
        lrs = np.array([p.lr for p in result.points])
        means = np.array([p.mean for p in result.points])
        lows = np.array([min(p.finished, default=math.nan) for p in result.points])
        highs = np.array([max(p.finished, default=math.nan) for p in result.points])
        ok = np.isfinite(means)
        ax = axes[0]
        ax.plot(lrs[ok], means[ok], "-o", color=color, markersize=3, label=name.replace("$", r"\$"))
        ax.fill_between(lrs[ok], lows[ok], highs[ok], color=color, alpha=0.15, linewidth=0)
        failed = [p for p in result.points if p.failed and math.isfinite(p.mean)]
        ax.plot([p.lr for p in failed], [p.mean for p in failed], "x", color=color, markersize=7)
        pick = next(p for p in result.points if p.lr == result.peak_lr)
        ax.plot([pick.lr], [pick.mean], "o", color=color, markersize=8)
        region = [(p.lr, p.mean) for p in result.points
                  if result.good_region[0] <= p.lr <= result.good_region[1] and math.isfinite(p.mean)]
        ax.plot(*zip(*region, strict=True), "-", color=color, linewidth=4, alpha=0.5)
        if with_acc:
            accs = [(p.lr, p.accuracy) for p in result.points if p.accuracy is not None]
            if accs:
                axes[1].plot(*zip(*accs, strict=True), "-o", color=color, markersize=3)
    axes[0].set_ylabel("final validation loss (mean, seed range)")
    if with_acc:
        axes[1].set_ylabel("final validation accuracy (mean)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("peak LR")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("LR sensitivity: o = tuned peak, thick = good region (within seed noise), x = a seed diverged",
                 fontsize=9)
    path = Path(path)
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path

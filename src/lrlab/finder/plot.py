"""The LR range test's figure: loss against LR on a log axis, the band over seeds, each suggestion marked.

A pure function of a :class:`~lrlab.finder.curves.FinderResult` (no torch); matplotlib is drawn on an Agg
canvas (no pyplot state), as in :mod:`lrlab.plotting`.
"""

from __future__ import annotations

import math
from pathlib import Path

from lrlab.finder.curves import FinderResult

__all__ = ["plot_finder"]

DPI = 110
#: how each suggestion method is marked: (line style, marker)
_STYLES = {"steepest": (":", "v"), "valley": ("--", "o"), "minimum/10": ("-.", "s")}


def plot_finder(result: FinderResult, path: str | Path, *, title: str | None = None) -> Path:
    """Draw the LR range test of ``result`` and save it (PNG, or any format matplotlib knows).

    Shows every seed's smoothed loss (thin), their mean with a min..max band, one vertical line per
    suggestion method (median over seeds), the recommended LR (solid) and its interval (shaded). The y axis is
    cut a little above the highest starting loss, so a blow-up at the end does not flatten the useful part.

    Args:
        result: what :func:`lrlab.finder.find_lr_for_task` returned (or one built by hand from curves).
        path: the file to write (its folder is created).
        title: the figure's title (default: the task, the seeds and the recommendation).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rec, band = result.recommendation, result.band
    fig = Figure(figsize=(8.0, 4.8), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.axvspan(rec.low, rec.high, color="tab:green", alpha=0.12, label=f"interval {rec.low:.3g} – {rec.high:.3g}")
    ax.fill_between(band.lrs, band.low, band.high, color="tab:blue", alpha=0.25, linewidth=0,
                    label=f"min – max over {len(result.curves)} seed(s)")
    for curve in result.curves:
        n = curve.usable
        ax.plot(curve.lrs[:n], curve.smoothed[:n], color="tab:blue", alpha=0.35, linewidth=0.8)
    ax.plot(band.lrs, band.mean, color="tab:blue", linewidth=2, label="mean smoothed loss")
    for name, value in rec.per_method.items():
        if value is None:
            continue
        style, marker = _STYLES.get(name, ("--", "d"))
        ax.axvline(value, color="0.3", linestyle=style, linewidth=1.2)
        ax.plot([value], [_mean_at(band.lrs, band.mean, value)], marker=marker, color="0.2", linestyle="none",
                label=f"{name}: {value:.3g}")
    ax.axvline(rec.lr, color="tab:green", linewidth=2, label=f"recommended: {rec.lr:.3g}")
    ax.set_xscale("log")
    starts = [c.smoothed[0] for c in result.curves if c.smoothed]
    finite = [v for v in band.low if math.isfinite(v)]
    if starts and finite:
        top, bottom = max(starts), min(finite)
        ax.set_ylim(bottom - 0.05 * (top - bottom), top + 0.15 * (top - bottom) + 1e-12)
    ax.set_xlabel("learning rate (first param group)")
    ax.set_ylabel("loss (smoothed)")
    ax.set_title(title or f"LR range test: {result.task}, seeds {list(result.settings.get('seeds', []))}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None} if path.suffix.lower() == ".png" else None)
    return path


def _mean_at(lrs: tuple[float, ...], values: tuple[float, ...], lr: float) -> float:
    """The band's mean at the grid point nearest ``lr`` in log scale (NaN-free when the nearest is covered)."""
    nearest = min(range(len(lrs)), key=lambda i: abs(math.log(lrs[i]) - math.log(lr)))
    return values[nearest]

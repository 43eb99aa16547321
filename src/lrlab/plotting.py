"""Pictures of schedules for ``lrlab plot``: a PNG of LR (and momentum) against step, a CSV, a terminal preview.

Pure functions of the values: they take :class:`Curve` objects (a label and the value at every step) and know
nothing of specs. matplotlib is imported only by :func:`draw_curves` (Agg canvas, no pyplot state), so the
terminal preview stays cheap.

>>> print(sparkline([0.0, 0.5, 1.0, 1.0, 0.5, 0.0]))
▁▅██▅▁
"""

from __future__ import annotations

import csv
import itertools
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Curve", "any_script", "draw_curves", "sparkline", "text_preview", "write_curves_csv"]

BLOCKS = "▁▂▃▄▅▆▇█"
ASCII_LEVELS = "_.-:=+*#"  # for terminals that cannot show the block characters
DPI = 110
LOG_RANGE = 10.0  # the automatic LR axis is log when the largest LR is at least this many times the smallest
# Outline fonts with CJK or emoji glyphs, tried after matplotlib's own font for what it lacks (color-bitmap emoji
# fonts are left out: matplotlib cannot scale them).
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR", "Source Han Sans",
                  "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "Microsoft YaHei", "Yu Gothic",
                  "Hiragino Sans", "PingFang SC", "Malgun Gothic", "Noto Emoji", "Segoe UI Emoji", "Symbola")


@dataclass(frozen=True)
class Curve:
    """One schedule's values at steps ``0 .. len(lr) - 1``.

    Args:
        label: what the legend and the CSV header call it (``lrlab plot`` uses the spec's canonical text).
        lr: the learning rate at each step.
        momentum: the momentum (or Adam's beta1) at each step; None when the schedule leaves it alone.
    """

    label: str
    lr: Sequence[float]
    momentum: Sequence[float] | None = None


def _buckets(values: Sequence[float], width: int) -> list[float]:
    """``values`` shrunk to at most ``width`` points, each the mean of an equal share of the steps."""
    n = len(values)
    if n <= width:
        return [float(v) for v in values]
    edges = [round(i * n / width) for i in range(width + 1)]
    return [math.fsum(values[a:b]) / (b - a) for a, b in itertools.pairwise(edges)]


def sparkline(values: Sequence[float], width: int = 60, ascii_only: bool = False) -> str:
    """A one-line chart of ``values``: one character per bucket of steps, its height linear in the bucket's mean.

    The lowest value maps to the lowest level and the highest to the highest; a flat curve sits mid-height.
    ``ascii_only`` draws with ``_.-:=+*#`` instead of the block characters ``▁..█``.
    """
    if width < 1:
        raise ValueError(f"width={width!r} is invalid: expected an integer >= 1")
    levels = ASCII_LEVELS if ascii_only else BLOCKS
    points = _buckets(values, width)
    if not points:
        return ""
    low, high = min(points), max(points)
    top = len(levels) - 1
    if high == low:
        return levels[top // 2] * len(points)
    return "".join(levels[round((p - low) / (high - low) * top)] for p in points)


def _num(x: float) -> str:
    return f"{x:.4g}"


def text_preview(curve: Curve, width: int = 60, ascii_only: bool = False) -> str:
    """A few lines for a terminal: the label, a sparkline of the LR and its start/min/max/end values.

    A momentum schedule, when there is one, gets its own sparkline line below.
    """
    lr = curve.lr
    lines = [curve.label]
    if not lr:
        return curve.label + "\n  (no steps)"
    lines.append(f"  lr        {sparkline(lr, width, ascii_only)}")
    lines.append(f"            start {_num(lr[0])}  min {_num(min(lr))}  max {_num(max(lr))}  end {_num(lr[-1])}"
                 f"  ({len(lr)} steps)")
    if curve.momentum:
        m = curve.momentum
        lines.append(f"  momentum  {sparkline(m, width, ascii_only)}")
        lines.append(f"            start {_num(m[0])}  min {_num(min(m))}  max {_num(max(m))}  end {_num(m[-1])}")
    return "\n".join(lines)


def write_curves_csv(path: str | Path, curves: Sequence[Curve]) -> Path:
    """Write ``step,<label>,...`` then one row per step; curves with momentum add ``momentum:<label>`` columns.

    Floats are written exactly (as ``repr`` writes them), so ``float(cell)`` gives the value back. The curves
    must have the same number of steps. Returns the path.
    """
    lengths = {len(c.lr) for c in curves} | {len(c.momentum) for c in curves if c.momentum is not None}
    if len(lengths) > 1:
        raise ValueError(f"curves have {sorted(lengths)} steps: expected the same number of steps for every curve")
    with_momentum = [c for c in curves if c.momentum is not None]
    header = ["step", *(c.label for c in curves), *(f"momentum:{c.label}" for c in with_momentum)]
    columns = [c.lr for c in curves] + [c.momentum for c in with_momentum if c.momentum is not None]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        steps = lengths.pop() if lengths else 0
        for t in range(steps):
            writer.writerow([t, *(repr(float(column[t])) for column in columns)])
    return path


@contextmanager
def any_script() -> Iterator[None]:
    """Figures made and saved inside this block show names in any script (a schedule named in Chinese, an emoji).

    Glyphs matplotlib's font lacks come from the installed :data:`FALLBACK_FONTS`; one that no font has is
    drawn as a box, without matplotlib's "Glyph ... missing" warning for every character of every label.
    """
    from matplotlib import font_manager, rc_context, rcParams

    installed = {font.name for font in font_manager.fontManager.ttflist}
    fallbacks = [name for name in FALLBACK_FONTS if name in installed]
    with rc_context({"font.family": [*rcParams["font.family"], *fallbacks]}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        yield


@any_script()
def draw_curves(curves: Sequence[Curve], path: str | Path, *, log: bool | None = None,
                steps_per_epoch: int | None = None, title: str | None = None) -> Path:
    """Draw every curve's LR against step in one figure and save it (PNG, or any format matplotlib knows).

    Args:
        curves: the schedules; legend labels are their ``label``.
        path: the file to write (its folder is created).
        log: log-scaled LR axis; None (default): log when every LR value is > 0 and the largest is at least
            :data:`LOG_RANGE` times the smallest, else linear.
        steps_per_epoch: when given, a second x axis on top counts epochs.
        title: the figure's title (default: how many steps are shown).

    A second panel shows momentum, only when some curve has a momentum schedule (those without are not in it).
    Returns the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("curves=[] is invalid: expected at least one curve")
    with_momentum = [c for c in curves if c.momentum is not None]
    if log is None:  # log only where it helps: every value > 0 and at least a decade between them
        values = [v for c in curves for v in c.lr]
        log = bool(values) and min(values) > 0 and max(values) >= LOG_RANGE * min(values)
    fig = Figure(figsize=(8.0, 6.5 if with_momentum else 4.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    if with_momentum:
        ax, ax_m = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    else:
        ax, ax_m = fig.subplots(), None
    steps = max(len(c.lr) for c in curves)
    for curve in curves:
        ax.plot(range(len(curve.lr)), curve.lr, label=_literal(curve.label), linewidth=1.5)
    ax.set_yscale("log" if log else "linear")
    ax.set_ylabel("learning rate")
    ax.set_title(title or f"Learning rate over {steps} steps")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    if ax_m is not None:
        color_of = {c.label: line.get_color() for c, line in zip(curves, ax.get_lines(), strict=True)}
        for curve in with_momentum:
            assert curve.momentum is not None
            ax_m.plot(range(len(curve.momentum)), curve.momentum, color=color_of[curve.label], linewidth=1.5,
                      label=_literal(curve.label))
        ax_m.set_ylabel("momentum")
        ax_m.grid(True, alpha=0.3)
    bottom = ax_m if ax_m is not None else ax
    bottom.set_xlabel("step (optimizer updates done)")
    if steps_per_epoch:
        top = ax.secondary_xaxis("top", functions=(lambda s: s / steps_per_epoch, lambda e: e * steps_per_epoch))
        top.set_xlabel("epoch")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None} if path.suffix.lower() == ".png" else None)
    return path


def _literal(text: str) -> str:
    """A label shown as written: ``$`` is not math, a leading ``_`` does not hide it from the legend."""
    text = text.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text

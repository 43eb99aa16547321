"""Figures of a study as PNG files (matplotlib's Agg canvas, no pyplot state, so it is safe anywhere).

Bands are over the seeds that trained to the end: the line is their mean and the shaded band spans their
min..max. A diverged run is drawn thin and dashed up to where it diverged, ending in an ``x``; loss axes are
scaled to the finished runs (log when they span 5x or more) and a diverged run's loss is clipped to them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lrlab.report.data import RunSeries, ScheduleRuns, Study, epoch_matrix
from lrlab.report.files import replacing

DPI = 110
# PNG metadata without matplotlib's "Software" entry, which holds a URL; keeps the embedded report link-free.
_PNG_METADATA = {"Software": None}


def label(name: str) -> str:
    """A schedule name as a matplotlib label, shown literally: ``$`` is not math, a leading ``_`` not hidden."""
    text = name.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


def colors(study: Study) -> dict[str, Any]:
    """One color per schedule, by display order (tab10, or tab20 for more than ten schedules)."""
    names = list(study.schedules)
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def ema(values: np.ndarray, window: int) -> np.ndarray:
    """Bias-corrected exponential moving average with ``beta = 1 - 1/window`` (``window=1``: unchanged).

    ``s_t = beta·s_{t-1} + (1-beta)·x_t``, shown as ``s_t / (1 - beta^(t+1))`` so the start is not pulled to 0.
    Non-finite values are carried over (the average holds its last value).
    """
    values = np.asarray(values, dtype=float)
    beta = 1.0 - 1.0 / max(window, 1)
    if np.isfinite(values).all():  # the usual case
        # the recurrence as scipy.signal.lfilter([1-beta], [1, -beta], x) runs it, bit for bit; importing
        # scipy.signal (which imports scipy.stats) took a second, more than this loop takes on a 1M-step study
        gain, state, smoothed = 1 - beta, 0.0, []
        for x in values.tolist():
            state = gain * x + beta * state
            smoothed.append(state)
        return np.array(smoothed) / (1 - beta ** np.arange(1, len(values) + 1))
    out = np.empty(len(values))
    state, weight = 0.0, 0.0
    for t, x in enumerate(values):
        if math.isfinite(x):
            state = beta * state + (1 - beta) * x
            weight = beta * weight + (1 - beta)
        out[t] = state / weight if weight > 0 else math.nan
    return out


def save_figure(fig: Figure, path: Path) -> Path:
    with replacing(path) as tmp:  # a failed write (a full disk) leaves the earlier figure as it was
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", metadata=_PNG_METADATA)
    return path


def _representative(sched: ScheduleRuns) -> RunSeries:
    return sched.done[0] if sched.done else max(sched.runs, key=lambda r: len(r.lr))


def plot_lr(study: Study, path: Path) -> Path:
    """(a) LR vs step of every schedule (one seed each, log y), with a momentum panel when any run has one."""
    palette = colors(study)
    panels = 2 if study.has_momentum else 1
    fig = Figure(figsize=(9, 4.2 if panels == 1 else 6.5))
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    for name, sched in study.schedules.items():
        run = _representative(sched)
        steps = np.arange(len(run.lr))
        axes[0].plot(steps, run.lr, color=palette[name], label=f"{label(name)} (seed {run.seed})")
        if panels == 2 and run.momentum is not None:
            axes[1].plot(steps, run.momentum, color=palette[name])
    axes[0].set_yscale("log", nonpositive="mask")  # a zero LR (warmup start, cosine end) is left out, not clipped
    axes[0].set_ylabel("learning rate")
    axes[0].set_title("Learning rate per step")
    axes[0].legend(fontsize=8)
    if panels == 2:
        axes[1].set_ylabel("momentum / beta1")
    axes[-1].set_xlabel("step (optimizer updates)")
    for ax in axes:
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def _band(ax: Axes, x: np.ndarray, matrix: np.ndarray, color: Any, name: str) -> None:
    """Mean line and min..max band over the rows of ``matrix`` (nan = missing)."""
    valid = np.isfinite(matrix).any(axis=0)
    if not valid.any():
        return
    mean = np.nanmean(matrix[:, valid], axis=0)
    ax.plot(x[valid], mean, color=color, label=label(name), lw=1.6)
    if len(matrix) > 1:
        ax.fill_between(x[valid], np.nanmin(matrix[:, valid], axis=0), np.nanmax(matrix[:, valid], axis=0),
                        color=color, alpha=0.2, lw=0)


Curve = tuple[str, np.ndarray, np.ndarray]  # schedule name, x, y (a band's y is a runs × x matrix)


def _curves(ax: Axes, study: Study, bands: list[Curve], diverged: list[Curve], loss: bool) -> None:
    """Draw bands and diverged runs; for a loss, a log axis when it spans 5x or more, and limits set by the bands.

    A diverged run's loss explodes: it is clipped to the bands' range, so its ``x`` stays in view and the
    finished runs stay readable.
    """
    palette = colors(study)
    for name, x, matrix in bands:
        _band(ax, x, matrix, palette[name], name)
    finite = np.concatenate([m[np.isfinite(m)] for _, _, m in bands] or [np.array([])])
    if not diverged and not len(finite):
        return
    pool = finite if len(finite) else np.concatenate([y[np.isfinite(y)] for _, _, y in diverged])
    low, high = (float(pool.min()), float(pool.max())) if len(pool) else (0.0, 1.0)
    if loss and low > 0 and high >= 5 * low:
        ax.set_yscale("log")
        low, high = low / 1.3, high * 1.5
    else:
        pad = 0.06 * (high - low) or 0.05 * abs(high) or 0.1
        low, high = low - pad, high + pad
    if loss and len(finite):
        ax.set_ylim(low, high)
    seen: set[str] = set()
    for name, x, y in diverged:
        keep = np.isfinite(y)
        if not keep.any():
            continue
        xs, ys = x[keep], np.clip(y[keep], low, high) if loss and len(finite) else y[keep]
        first = name not in seen
        seen.add(name)
        ax.plot(xs, ys, color=palette[name], lw=0.8, ls="--", label=f"{label(name)} (diverged)" if first else None)
        ax.plot(xs[-1], ys[-1], marker="x", color=palette[name], ms=8, mew=2)


def plot_train_loss(study: Study, path: Path) -> Path:
    """(b) Training loss vs step, EMA-smoothed (window = 1/50 of the run), mean ± min..max band over seeds."""
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    longest = max(len(r.train_loss) for s in study.schedules.values() for r in s.runs)
    window = max(1, longest // 50)
    bands, diverged = [], []
    for name, sched in study.schedules.items():
        if sched.done:
            length = max(len(r.train_loss) for r in sched.done)
            matrix = np.full((len(sched.done), length), math.nan)
            for i, run in enumerate(sched.done):
                matrix[i, :len(run.train_loss)] = ema(run.train_loss, window)
            bands.append((name, np.arange(length), matrix))
        for run in sched.diverged:
            loss = run.train_loss[:-1]  # the last step is the one that diverged (non-finite or exploding)
            diverged.append((name, np.arange(len(loss)), ema(loss, window)))
    _curves(ax, study, bands, diverged, loss=True)
    ax.set_xlabel("step (optimizer updates)")
    ax.set_ylabel(f"training loss (EMA, window {window})")
    ax.set_title("Training loss: mean and min..max over seeds")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:  # nothing to name when no run has a finite value (NaN in the data)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_val_metric(study: Study, metric: str, path: Path) -> Path:
    """(c)/(d) ``val_loss`` or ``val_acc`` vs epoch: mean ± min..max band over seeds, per schedule."""
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    x = np.arange(1, study.epochs + 1)
    bands = [(name, x, epoch_matrix(s.done, metric, study.epochs)) for name, s in study.schedules.items() if s.done]
    diverged = [(name, run.epoch.astype(float), getattr(run, metric)) for name, s in study.schedules.items()
                for run in s.diverged if getattr(run, metric) is not None]
    _curves(ax, study, bands, diverged, loss=metric == "val_loss")
    what = "validation loss" if metric == "val_loss" else "validation accuracy"
    if metric == "val_acc" and study.target_acc is not None:
        ax.axhline(study.target_acc, color="0.3", ls=":", lw=1, label=f"target {study.target_acc:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(what)
    ax.set_title(f"{what.capitalize()} per epoch: mean and min..max over seeds")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:  # nothing to name when no run has a finite value (NaN in the data)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_final(study: Study, rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """(e) Final val loss (and accuracy) per schedule, best first: every seed's point and the 95% CI of the mean."""
    palette = colors(study)
    metrics = ["final_val_loss"] + (["final_val_acc"] if study.has_accuracy else [])
    fig = Figure(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.5 * len(metrics)))
    axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    for ax, metric in zip(axes, metrics, strict=True):
        for i, row in enumerate(rows):
            sched = study.schedules[row["schedule"]]
            values = sched.final_val_loss() if metric == "final_val_loss" else sched.final_val_acc()
            values = values[np.isfinite(values)]
            color = palette[sched.name]
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, color=color, alpha=0.7, s=22, zorder=3)
            mean, low, high = row[f"{metric}_mean"], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
            if mean is not None:
                yerr = None if low is None else [[mean - low], [high - mean]]
                ax.errorbar(i + 0.3, mean, yerr=yerr, fmt="D", color="black", ms=5, capsize=4, zorder=4)
            if row["diverged"]:
                note = "all diverged" if not sched.done else f"{row['diverged']} diverged"
                ax.annotate(note, (i, 0.02), xycoords=("data", "axes fraction"), ha="center", fontsize=8,
                            color="crimson")
        ax.set_xticks(range(len(rows)), [label(r["schedule"]) for r in rows], rotation=25, ha="right")
        ax.set_xlim(-0.6, len(rows) - 0.4)
        what = "final validation loss" if metric == "final_val_loss" else "final validation accuracy"
        ax.set_ylabel(what)
        ax.set_title(f"{what.capitalize()} per seed; black: mean with 95% CI (best first)")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_lr_finder(study: Study, path: Path) -> Path:
    """(f) The LR range test that chose the peak LR (``compare --peak-lr auto``), from its stored result."""
    from lrlab.finder import FinderResult, plot_finder

    with replacing(path) as tmp:
        plot_finder(FinderResult.from_dict(study.peak_lr["finder"]), tmp)
    return path

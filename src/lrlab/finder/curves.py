"""What an LR range test records, torch-free: the curve of one sweep, the band over seeds and the result.

A point of the curve is ``(lr_k, loss after the update made at lr_k)``: in the default mode the loss is that of
the next training batch, measured before its own update (so a sweep of N updates costs N + 1 forward passes);
with ``val_fn`` it is the validation loss after the update. :class:`FinderResult` is what the store keeps
(:meth:`FinderResult.to_dict`) and the report reads back (:meth:`FinderResult.from_dict`) without torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Band", "FinderResult", "LRCurve", "Recommendation", "Recorder", "curve_band", "ema"]


@dataclass(frozen=True)
class LRCurve:
    """One LR range test: the LR of every update and the loss measured after it.

    Args:
        lrs: the first param group's LR at each recorded update.
        losses: the raw loss after each update (training batch or validation, see the module docstring).
        smoothed: the bias-corrected EMA of ``losses`` (see :func:`ema`), what divergence and suggestions use.
        stop_step: index of the point at which the sweep stopped because the loss diverged (the smoothed loss
            rose above ``diverge_factor`` x its best, or a loss was not finite); None when it ran to the end.
            A point at ``stop_step`` is recorded only when its loss was finite.
        smooth: the EMA factor that made ``smoothed``.
        seed: the seed of the sweep, when :func:`find_lr_for_task` ran it.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    stop_step: int | None = None
    smooth: float = 0.98
    seed: int | None = None

    def __post_init__(self) -> None:
        if not len(self.lrs) == len(self.losses) == len(self.smoothed):
            raise ValueError(f"lrs, losses and smoothed have {len(self.lrs)}, {len(self.losses)} and "
                             f"{len(self.smoothed)} points: expected the same number")
        if any(not lr > 0 for lr in self.lrs):
            raise ValueError("lrs are invalid: expected every LR > 0 (the curve is read on a log axis)")

    @property
    def stopped_early(self) -> bool:
        """True when the sweep stopped because the loss diverged."""
        return self.stop_step is not None

    @property
    def usable(self) -> int:
        """Number of points before divergence: the suggestions look only at ``[0, usable)``."""
        return len(self.lrs) if self.stop_step is None else min(self.stop_step, len(self.lrs))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (for the store); :meth:`from_dict` reads it back."""
        return {"lrs": list(self.lrs), "losses": list(self.losses), "smoothed": list(self.smoothed),
                "stop_step": self.stop_step, "smooth": self.smooth, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRCurve:
        """The curve :meth:`to_dict` wrote."""
        return cls(tuple(data["lrs"]), tuple(data["losses"]), tuple(data["smoothed"]), data.get("stop_step"),
                   data.get("smooth", 0.98), data.get("seed"))


def ema(values: Sequence[float], smooth: float) -> list[float]:
    """Bias-corrected exponential moving average of ``values``.

    ``a_k = smooth a_(k-1) + (1 - smooth) x_k`` from ``a_(-1) = 0``, and ``s_k = a_k / (1 - smooth^(k+1))``: the
    correction removes the pull towards 0 of the first points (``s_0 = x_0``). ``smooth=0`` returns the
    values unchanged.

    >>> ema([1.0, 1.0, 4.0], 0.5)
    [1.0, 1.0, 2.7142857142857144]
    """
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth={smooth!r} is invalid: expected 0 <= smooth < 1")
    out, avg = [], 0.0
    for k, x in enumerate(values):
        avg = smooth * avg + (1 - smooth) * float(x)
        out.append(avg / (1 - smooth ** (k + 1)))
    return out


@dataclass
class Recorder:
    """One sweep's points and its stop rule, shared by :func:`find_lr` and the batched sweeps."""

    smooth: float
    diverge_factor: float
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    stop_step: int | None = None
    avg: float = 0.0
    best: float = math.inf

    def add(self, k: int, lr: float, measured: float) -> bool:
        """Record update ``k``'s point; False when the sweep stops there (a non-finite loss, or divergence)."""
        if not math.isfinite(measured):
            self.stop_step = k
            return False
        self.avg = self.smooth * self.avg + (1 - self.smooth) * measured
        value = self.avg / (1 - self.smooth ** (k + 1))
        self.lrs.append(lr)
        self.losses.append(measured)
        self.smoothed.append(value)
        if self.best > 0 and value > self.diverge_factor * self.best:
            self.stop_step = k
            return False
        self.best = min(self.best, value)
        return True

    def curve(self, seed: int | None) -> LRCurve:
        """The recorded sweep as an :class:`LRCurve`."""
        return LRCurve(tuple(self.lrs), tuple(self.losses), tuple(self.smoothed), self.stop_step, self.smooth, seed)


@dataclass(frozen=True)
class Band:
    """Curves over seeds on one log-spaced LR grid: mean, min and max of the smoothed loss at each LR.

    ``count[i]`` is how many curves reach ``lrs[i]`` (a curve stops where it diverged); the statistics at a
    point are over those curves only.
    """

    lrs: tuple[float, ...]
    mean: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    count: tuple[int, ...]


def curve_band(curves: Sequence[LRCurve], num_points: int | None = None) -> Band:
    """The band of ``curves`` (their points before divergence), interpolated linearly in log-LR.

    The grid spans the lowest to the highest LR any curve reached, with ``num_points`` points (default: the
    longest curve's length).
    """
    parts = [(np.log(np.asarray(c.lrs[:c.usable])), np.asarray(c.smoothed[:c.usable])) for c in curves]
    parts = [(x, y) for x, y in parts if len(x) > 0]
    if not parts:
        raise ValueError("curves have no points before divergence: expected at least one")
    start, stop = min(float(x[0]) for x, _ in parts), max(float(x[-1]) for x, _ in parts)
    grid = np.linspace(start, stop, num_points or max(len(x) for x, _ in parts))
    table = np.full((len(parts), len(grid)), np.nan)
    for row, (x, y) in enumerate(parts):
        inside = (grid >= x[0] - 1e-12) & (grid <= x[-1] + 1e-12)
        table[row, inside] = np.interp(grid[inside], x, y)
    count = np.sum(~np.isnan(table), axis=0)
    with np.errstate(all="ignore"):
        mean = np.where(count > 0, np.nansum(table, axis=0) / np.maximum(count, 1), np.nan)
    low = np.array([np.nanmin(col) if n else np.nan for col, n in zip(table.T, count, strict=True)])
    high = np.array([np.nanmax(col) if n else np.nan for col, n in zip(table.T, count, strict=True)])
    return Band(tuple(np.exp(grid).tolist()), tuple(mean.tolist()), tuple(low.tolist()), tuple(high.tolist()),
                tuple(int(n) for n in count))


@dataclass(frozen=True)
class Recommendation:
    """A peak LR read off one or more sweeps, with how much the reading moves.

    Args:
        lr: ``exp(median)`` of every method's log-LR on every seed.
        low, high: the lowest and the highest of those LRs: every method on every seed picked inside it.
        per_method: method -> ``exp(median)`` of its log-LR over seeds (None: it failed on every seed).
        per_seed: for each curve, method -> its LR (None: the curve was too short for that method).
    """

    lr: float
    low: float
    high: float
    per_method: dict[str, float | None]
    per_seed: tuple[dict[str, float | None], ...]


@dataclass(frozen=True)
class FinderResult:
    """The LR range test of a task, repeated over seeds.

    Args:
        task: the task's name.
        curves: one :class:`LRCurve` per seed.
        recommendation: the combined suggestion (:func:`~lrlab.finder.suggest.combine_suggestions`).
        band: the curves' band over seeds (:func:`curve_band`).
        settings: how the sweeps ran (min_lr, max_lr, num_steps, mode, batch_size, optimizer, ...), for the store.
    """

    task: str
    curves: tuple[LRCurve, ...]
    recommendation: Recommendation
    band: Band
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for the store: settings, the recommendation and every curve."""
        rec = self.recommendation
        return {"task": self.task, "settings": self.settings, "lr": rec.lr, "low": rec.low, "high": rec.high,
                "per_method": rec.per_method, "per_seed": list(rec.per_seed),
                "curves": [c.to_dict() for c in self.curves]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinderResult:
        """The result :meth:`to_dict` wrote (the band is recomputed from the curves), e.g. for a report."""
        curves = tuple(LRCurve.from_dict(c) for c in data["curves"])
        rec = Recommendation(data["lr"], data["low"], data["high"], dict(data["per_method"]),
                             tuple(dict(p) for p in data["per_seed"]))
        return cls(data["task"], curves, rec, curve_band(curves), dict(data.get("settings", {})))


"""Tuning a schedule's peak LR with a grid of real runs: the grid, the pick, the good region, when to widen.

Torch-free arithmetic; training the grid's runs is the runner's job. A grid point is one peak LR trained with
several seeds; what it scores is each seed's final validation loss (lower is better).

- **The grid** lies on the lattice ``10 ** (k / per_decade)`` (rounded to 3 significant digits), so a grid
  widened later, or asked again with other bounds, reuses the LRs (and stored runs) it already has.
- **The pick** is the point with the best mean final validation loss, where a diverged seed counts as a
  failure: points are ranked first by how many seeds failed, then by the mean of their losses. So a point
  whose seeds mostly diverged never ranks above one whose seeds all finished.
- **The good region** is every point within seed noise of the pick (:func:`within_noise`).
- **Widening**: while the pick sits at an edge of the grid (the optimum may lie beyond), the grid grows by
  ``per_decade`` points on that side, up to a bound.
- **Refining**: once the pick is found, the two LRs halfway (in log) to its neighbours join the grid, for optima
  sharper than the grid's spacing (:func:`refine_lrs`).
- **Successive halving** (for long runs): the grid is judged at rungs (:func:`halving_rungs`, placed after the
  LR's peak so no run is judged mid-warmup) on runs stopped there, and only the best third
  (:func:`survivors`) trains on; each rung is one sweep, so which runs survive does not depend on an order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lrlab.stats import compare

__all__ = ["GRID_PER_DECADE", "GridPoint", "Pruned", "TuneResult", "halving_rungs", "lr_grid", "rank_key",
           "refine_lrs", "survivor_count", "survivors", "tune_result", "widen", "within_noise"]

#: grid points per decade: a factor of 1.78 between neighbours
GRID_PER_DECADE = 4
#: Welch's p-value above which two grid points are not told apart
NOISE_P = 0.05
#: successive halving keeps the best ``1 / HALVING_ETA`` of the grid at each rung...
HALVING_ETA = 3
#: ...but never fewer points than this (the pick and its neighbours)
HALVING_MIN_KEEP = 3


def lr_grid(low: float, high: float, per_decade: int = GRID_PER_DECADE) -> list[float]:
    """The lattice LRs ``10 ** (k / per_decade)`` from the largest one <= ``low`` to the smallest one >= ``high``.

    Args:
        low, high: the bracket (LRs, ``0 < low <= high``).
        per_decade: grid points per factor of 10 (>= 1).

    >>> lr_grid(0.01, 0.1)
    [0.01, 0.0178, 0.0316, 0.0562, 0.1]
    >>> lr_grid(0.02, 0.05, per_decade=3)
    [0.01, 0.0215, 0.0464, 0.1]
    """
    if not (0 < low <= high < math.inf):
        raise ValueError(f"low={low!r}, high={high!r} is invalid: expected 0 < low <= high < inf")
    if per_decade < 1:
        raise ValueError(f"per_decade={per_decade!r} is invalid: expected an integer >= 1")
    first, last = math.floor(_lattice_index(low, per_decade)), math.ceil(_lattice_index(high, per_decade))
    return [float(f"{10 ** (k / per_decade):.3g}") for k in range(first, last + 1)]


def _lattice_index(lr: float, per_decade: int) -> float:
    """``log10(lr) * per_decade``, snapped to the integer when ``lr`` is a (rounded) lattice LR."""
    index = math.log10(lr) * per_decade
    return round(index) if abs(index - round(index)) < 0.01 else index


@dataclass(frozen=True)
class GridPoint:
    """One peak LR of the grid: each seed's final validation loss (``nan`` or ``inf`` where the seed diverged)
    and, where the task measures it, final validation accuracy (``None`` otherwise)."""

    lr: float
    losses: tuple[float, ...]
    accuracies: tuple[float | None, ...] = ()

    @property
    def finished(self) -> list[float]:
        """The losses of the seeds that did not diverge."""
        return [v for v in self.losses if math.isfinite(v)]

    @property
    def failed(self) -> int:
        """How many seeds diverged."""
        return len(self.losses) - len(self.finished)

    @property
    def mean(self) -> float:
        """Mean final validation loss of the finished seeds (``inf`` when none finished)."""
        return float(np.mean(self.finished)) if self.finished else math.inf

    @property
    def std(self) -> float:
        """Sample standard deviation of the finished seeds' losses (0 with fewer than two)."""
        return float(np.std(self.finished, ddof=1)) if len(self.finished) > 1 else 0.0

    @property
    def accuracy(self) -> float | None:
        """Mean final validation accuracy of the finished seeds, or ``None`` where the task has none."""
        values = [a for a, v in zip(self.accuracies, self.losses, strict=False) if a is not None and math.isfinite(v)]
        return float(np.mean(values)) if values else None


def rank_key(point: GridPoint) -> tuple[int, float]:
    """Sort key, lower is better: diverged seeds first (each one a failure), then the mean final loss."""
    return point.failed, point.mean


def within_noise(candidate: GridPoint, best: GridPoint) -> bool:
    """Whether ``candidate`` cannot be told from ``best``: no more failed seeds, and its mean loss is better,
    within one of the best's standard deviations, or Welch's test cannot separate them (p > 0.05)."""
    if candidate.failed > best.failed or not candidate.finished:
        return False
    if candidate.mean <= best.mean or abs(candidate.mean - best.mean) <= best.std:
        return True
    p = compare(candidate.finished, best.finished).p_value
    return math.isfinite(p) and p > NOISE_P


@dataclass(frozen=True)
class Pruned:
    """A grid LR successive halving stopped: the rung (``step``, in updates) and its seeds' losses there."""

    lr: float
    step: int
    val_loss_mean: float


@dataclass(frozen=True)
class TuneResult:
    """A tuned grid: the pick, the LRs within noise of it (``good_region``: lowest and highest), every point
    trained to the end in LR order, and the LRs successive halving stopped at a rung (``pruned``)."""

    peak_lr: float
    good_region: tuple[float, float]
    points: tuple[GridPoint, ...]
    pruned: tuple[Pruned, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: ``peak_lr``, ``good_region``, the per-LR table and the pruned LRs."""
        return {"peak_lr": self.peak_lr, "good_region": list(self.good_region), "at_edge": self.at_edge,
                "points": [{"lr": p.lr, "seeds": len(p.losses), "diverged": p.failed,
                            "val_loss_mean": _json_number(p.mean), "val_loss_std": _json_number(p.std),
                            "val_acc_mean": p.accuracy, "val_loss": [_json_number(v) for v in p.losses]}
                           for p in self.points],
                "pruned": [{"lr": p.lr, "step": p.step, "val_loss_mean": _json_number(p.val_loss_mean)}
                           for p in self.pruned]}

    @property
    def at_edge(self) -> bool:
        """Whether the pick is the grid's lowest or highest LR: the optimum may lie beyond it."""
        return len(self.points) > 1 and self.peak_lr in (self.points[0].lr, self.points[-1].lr)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TuneResult:
        """The result :meth:`to_dict` wrote (accuracies are kept as their mean only)."""
        points = tuple(GridPoint(float(row["lr"]), tuple(math.inf if v is None else float(v) for v in row["val_loss"]),
                                 (row["val_acc_mean"],) * len(row["val_loss"]))
                       for row in data["points"])
        pruned = tuple(Pruned(float(row["lr"]), int(row["step"]),
                              math.inf if row["val_loss_mean"] is None else float(row["val_loss_mean"]))
                       for row in data.get("pruned", ()))
        low, high = data["good_region"]
        return cls(float(data["peak_lr"]), (float(low), float(high)), points, pruned)

    def line(self) -> str:
        """``peak LR: X (good region A – B)``, the last line ``lrlab tune-lr`` prints."""
        low, high = self.good_region
        return f"peak LR: {self.peak_lr:.3g} (good region {low:.3g} – {high:.3g})"


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def tune_result(points: Sequence[GridPoint], pruned: Sequence[Pruned] = ()) -> TuneResult:
    """The pick and good region of a grid (at least one point trained to the end; ``pruned``: the LRs stopped at
    a rung, reported but never picked)."""
    if not points:
        raise ValueError("points=[] is invalid: expected at least one grid point")
    ordered = tuple(sorted(points, key=lambda p: p.lr))
    best = min(ordered, key=rank_key)
    good = [p.lr for p in ordered if p is best or within_noise(p, best)]
    return TuneResult(best.lr, (min(good), max(good)), ordered, tuple(sorted(pruned, key=lambda p: p.lr)))


def widen(points: Mapping[float, GridPoint], per_decade: int = GRID_PER_DECADE, low_bound: float = 1e-7,
          high_bound: float = 100.0) -> list[float]:
    """The LRs to add to a grid whose pick sits at its lowest or highest point: a decade of lattice points
    beyond that edge (inside ``[low_bound, high_bound]``), or ``[]`` when the pick is inside the grid.

    >>> flat = (1.0, 1.0)
    >>> widen({0.01: GridPoint(0.01, (0.5, 0.6)), 0.1: GridPoint(0.1, flat)})
    [0.001, 0.00178, 0.00316, 0.00562]
    """
    lrs = sorted(points)
    best = min(points.values(), key=rank_key).lr
    if best == lrs[0] and lrs[0] > low_bound:
        new = lr_grid(max(low_bound, lrs[0] / 10), lrs[0], per_decade)
    elif best == lrs[-1] and lrs[-1] < high_bound:
        new = lr_grid(lrs[-1], min(high_bound, lrs[-1] * 10), per_decade)
    else:
        return []
    return [lr for lr in new if lr not in points]


def refine_lrs(points: Mapping[float, GridPoint], per_decade: int = GRID_PER_DECADE) -> list[float]:
    """The LRs halfway (in log) between a grid's pick and its neighbours: the pick's neighbours on the lattice of
    ``2 * per_decade`` points per decade, less those the grid has.

    >>> grid = {0.01: GridPoint(0.01, (0.9,)), 0.0178: GridPoint(0.0178, (0.5,)), 0.0316: GridPoint(0.0316, (0.7,))}
    >>> refine_lrs(grid)
    [0.0133, 0.0237]
    """
    best = min(points.values(), key=rank_key).lr
    k = round(_lattice_index(best, 2 * per_decade))
    new = [float(f"{10 ** (j / (2 * per_decade)):.3g}") for j in (k - 1, k + 1)]
    return [lr for lr in new if lr not in points]


def halving_rungs(total_steps: int, peak_step: int, rungs: int = 2, eta: int = HALVING_ETA) -> list[int]:
    """Where successive halving judges a grid's runs (updates, increasing, each before ``total_steps``): at
    ``1 / eta ** j`` (j = ``rungs`` .. 1) of the updates after the LR's peak at ``peak_step``, so no run is
    judged before its LR has peaked (mid-warmup, or in OneCycle's rise).

    >>> halving_rungs(900, 0)
    [100, 300]
    >>> halving_rungs(1000, 300)
    [377, 533]
    """
    rest = total_steps - peak_step
    steps = sorted({peak_step + rest // eta ** j for j in range(rungs, 0, -1)})
    return [s for s in steps if peak_step < s < total_steps]


def survivors(points: Sequence[GridPoint], eta: int = HALVING_ETA, min_keep: int = HALVING_MIN_KEEP) -> list[float]:
    """The LRs a rung promotes, in LR order: the best ``ceil(len(points) / eta)`` by :func:`rank_key`, at least
    ``min_keep``.

    >>> survivors([GridPoint(lr, (loss,)) for lr, loss in [(0.1, 3.0), (0.2, 1.0), (0.4, 2.0), (0.8, 9.0)]], 2, 1)
    [0.2, 0.4]
    """
    return sorted(p.lr for p in sorted(points, key=rank_key)[:survivor_count(len(points), eta, min_keep)])


def survivor_count(n: int, eta: int = HALVING_ETA, min_keep: int = HALVING_MIN_KEEP) -> int:
    """How many of ``n`` grid LRs a rung promotes (:func:`survivors`); ``n`` or more means the rung stops none."""
    return max(min_keep, math.ceil(n / eta))

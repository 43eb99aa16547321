"""Schedules that rise and fall: cosine with warm restarts (SGDR), cyclic (CLR) and one-cycle.

All durations are in optimizer steps. Each class is a frozen dataclass called with a step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from lrlab.schedules.base import Schedule, scaled_power
from lrlab.schedules.checks import (
    check_choice,
    check_finite,
    check_int,
    check_nonneg,
    check_positive,
    check_range,
)

RESTART_SHAPES = ("cosine", "poly", "tanh")


@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017), or restarts of timm's poly/tanh.

        value(t) = min_lr + (init_lr * decay ** i - min_lr) * f(x),   x = t_i ** k / T_i ** k
        f(x) = (1 + cos(pi * x)) / 2                                (shape="cosine")
        f(x) = (1 - x) ** power                                     (shape="poly", timm's PolyLRScheduler)
        f(x) = (1 - tanh(lower + (upper - lower) * x)) / 2          (shape="tanh", timm's TanhLRScheduler)

    where cycle ``i`` (from 0) lasts ``T_i = period_steps * period_mult ** i`` steps (``period_steps`` and
    ``period_mult`` may be fractional, so a cycle may start between two steps) and ``t_i`` is the steps done
    in it. After ``max_cycles`` cycles (``None``: no limit) the value stays at ``min_lr``. ``k`` warps time in
    each cycle (k-decay, timm's ``k_decay``; 1: none).

    >>> s = CosineRestarts(1.0, 0.0, period_steps=10, period_mult=2.0)
    >>> [round(s(t), 6) for t in (0, 5, 10, 20, 30)]
    [1.0, 0.5, 1.0, 0.5, 1.0]
    >>> [round(CosineRestarts(1.0, 0.0, period_steps=2.5)(t), 6) for t in (0, 2, 3, 5)]
    [1.0, 0.095492, 0.904508, 1.0]
    >>> CosineRestarts(1.0, 0.0, period_steps=50 / 6)(25)  # cycle 3 starts at step 25 exactly
    1.0
    >>> [round(CosineRestarts(1.0, 0.0, period_steps=4, period_mult=1.5, shape="poly", power=2.0)(t), 4)
    ...  for t in (0, 2, 4, 32, 33)]  # cycle 4 starts at 32.5
    [1.0, 0.25, 1.0, 0.0014, 0.9512]
    """

    init_lr: float = 1.0
    min_lr: float = 0.0
    period_steps: float = 1
    period_mult: float = 1.0
    decay: float = 1.0
    max_cycles: int | None = None
    k: float = 1.0
    shape: str = "cosine"
    power: float = 1.0
    lower: float = -7.0
    upper: float = 3.0

    def __post_init__(self) -> None:
        check_choice("shape", self.shape, RESTART_SHAPES)
        check_nonneg("power", self.power)
        check_finite("lower", self.lower)
        check_finite("upper", self.upper)
        if self.upper <= self.lower:
            raise ValueError(f"upper={self.upper!r} is invalid: expected a number > lower={self.lower!r}")
        check_nonneg("init_lr", self.init_lr)
        check_nonneg("min_lr", self.min_lr)
        check_positive("period_steps", self.period_steps)
        check_positive("k", self.k)
        check_range("period_mult", self.period_mult, 1.0, 1e6)
        check_nonneg("decay", self.decay)
        if self.max_cycles is not None:
            check_int("max_cycles", self.max_cycles, 1)

    def _cycle_start(self, cycle: int) -> float:
        """The step at which ``cycle`` starts."""
        if self.period_mult == 1.0:
            return float(self.period_steps * cycle)
        return self.period_steps * (self.period_mult**cycle - 1.0) / (self.period_mult - 1.0)

    def cycle_at(self, step: int) -> tuple[int, float, float]:
        """``(cycle index, steps into the cycle, cycle length)`` at ``step``."""
        m, t0 = self.period_mult, self.period_steps
        cycle = int(step // t0) if m == 1.0 else int(math.log(1.0 + step * (m - 1.0) / t0, m))
        # the float division or log and the float cycle starts can be an ulp off at a boundary (25 // (50 / 6)
        # is 2, yet cycle 3 starts at step 25): settle it
        slack = 1e-9 * max(1.0, step)
        while self._cycle_start(cycle + 1) <= step + slack:
            cycle += 1
        while cycle > 0 and self._cycle_start(cycle) > step + slack:
            cycle -= 1
        start = self._cycle_start(cycle)
        return cycle, max(step - start, 0.0), t0 * m**cycle

    def value(self, step: int) -> float:
        cycle, into, length = self.cycle_at(step)
        if self.max_cycles is not None and cycle >= self.max_cycles:
            return self.min_lr
        peak = scaled_power(self.init_lr, self.decay, cycle)
        phase = into / length if self.k == 1 else (into / length) ** self.k
        if self.shape == "poly":
            return self.min_lr + (peak - self.min_lr) * (1.0 - phase) ** self.power
        if self.shape == "tanh":
            x = self.lower + (self.upper - self.lower) * phase
            return self.min_lr + (peak - self.min_lr) * (1.0 - math.tanh(x)) / 2.0
        return self.min_lr + (peak - self.min_lr) * (1.0 + math.cos(math.pi * phase)) / 2.0


CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


@dataclass(frozen=True)
class Cyclic(Schedule):
    """Cyclical learning rate (Smith 2017), torch's CyclicLR curve in closed form.

        value(t) = base_lr + (max_lr - base_lr) * height(x) * scale
        cycle = floor(1 + t / (up + down)),   x = 1 + t / (up + down) - cycle,   r = up / (up + down)
        height(x) = x / r while rising (x <= r), (1 - x) / (1 - r) while falling

    with ``up = step_size_up`` and ``down = step_size_down`` (default: ``up``). ``scale`` is 1 for
    ``mode="triangular"``, ``0.5 ** (cycle - 1)`` for ``triangular2`` and ``gamma ** t`` for ``exp_range``; a
    custom ``scale_fn(x)`` with ``scale_mode`` ``cycle`` (x = cycle) or ``iterations`` (x = t) replaces the
    mode. ``descending=True`` mirrors the curve, ``max_lr - (max_lr - base_lr) * height(x) * scale``: the
    momentum that CyclicLR cycles opposite to the LR.

    >>> s = Cyclic(0.0, 1.0, step_size_up=10)
    >>> [s(t) for t in (0, 5, 10, 15, 20)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    >>> [Cyclic(0.0, 1.0, step_size_up=10, mode="triangular2")(t) for t in (10, 30, 50)]
    [1.0, 0.5, 0.25]
    """

    base_lr: float = 0.001
    max_lr: float = 0.006
    step_size_up: int = 2000
    step_size_down: int | None = None
    mode: str = "triangular"
    gamma: float = 1.0
    scale_fn: Callable[[float], float] | None = None
    scale_mode: str = "cycle"
    descending: bool = False

    def __post_init__(self) -> None:
        check_nonneg("base_lr", self.base_lr)
        check_nonneg("max_lr", self.max_lr)
        check_int("step_size_up", self.step_size_up, 1)
        if self.step_size_down is not None:
            check_int("step_size_down", self.step_size_down, 0)
        check_choice("mode", self.mode, CYCLIC_MODES)
        check_positive("gamma", self.gamma)
        check_choice("scale_mode", self.scale_mode, ("cycle", "iterations"))
        if self.scale_fn is not None and not callable(self.scale_fn):
            raise ValueError(f"scale_fn={self.scale_fn!r} is invalid: expected a callable x -> scale")

    def _scale(self, cycle: int, step: int) -> float:
        if self.scale_fn is not None:
            return self.scale_fn(cycle if self.scale_mode == "cycle" else step)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 0.5 ** (cycle - 1)  # underflows to 0, never overflows
        return scaled_power(1.0, self.gamma, step)

    def value(self, step: int) -> float:
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        total = up + down
        ratio = up / total
        cycle = math.floor(1 + step / total)
        x = 1.0 + step / total - cycle
        height = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        span = (self.max_lr - self.base_lr) * height
        amplitude = span * self._scale(cycle, step) if span else 0.0  # never 0 * inf
        return self.max_lr - amplitude if self.descending else self.base_lr + amplitude


ANNEAL_STRATEGIES = ("cos", "linear")
T = TypeVar("T")  # a phase end: a value, or the name of a param group key


def one_cycle_phases(total_steps: int, pct_start: float, three_phase: bool, start: T, peak: T,
                     end: T) -> list[tuple[float, T, T]]:
    """The phases of the 1cycle policy as ``(last step, from, to)``; the first phase starts at step 0.

    ``start`` to ``peak`` up to step ``pct_start * total_steps - 1``, then ``peak`` to ``end`` at step
    ``total_steps - 1``; with ``three_phase``, ``peak`` back to ``start`` at step ``2 * pct_start * total_steps - 2``
    first, then ``start`` to ``end``. The LR goes initial, max, min; the momentum max, base, max. The ends may be
    values or, for torch's ``_schedule_phases``, param group keys.

    >>> one_cycle_phases(10, 0.3, False, "initial_lr", "max_lr", "min_lr")
    [(2.0, 'initial_lr', 'max_lr'), (9, 'max_lr', 'min_lr')]
    """
    warm_end = float(pct_start * total_steps) - 1
    last = total_steps - 1
    if three_phase:
        return [(warm_end, start, peak), (float(2 * pct_start * total_steps) - 2, peak, start), (last, start, end)]
    return [(warm_end, start, peak), (last, peak, end)]


def _phase_value(phases: list[tuple[float, float, float]], anneal_strategy: str, step: int) -> float:
    """Value at ``step`` of consecutive phases ``(end_step, start_value, end_value)``; the first starts at 0.

    A phase of zero length is taken as finished, and the last phase holds its end value after its end.
    """
    start_step = 0.0
    for i, (end_step, start_value, end_value) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            length = end_step - start_step
            pct = 1.0 if length <= 0 else min((step - start_step) / length, 1.0)
            if anneal_strategy == "cos":
                return end_value + (start_value - end_value) / 2.0 * (math.cos(math.pi * pct) + 1)
            return (end_value - start_value) * pct + start_value
        start_step = end_step
    raise AssertionError("unreachable: the last phase always answers")


def _check_one_cycle(total_steps: int, pct_start: float, anneal_strategy: str) -> None:
    check_int("total_steps", total_steps, 1)
    check_range("pct_start", pct_start, 0.0, 1.0)
    check_choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)


@dataclass(frozen=True)
class OneCycle(Schedule):
    """The 1cycle policy (Smith & Topin 2018), torch's OneCycleLR curve in closed form.

    The phases of :func:`one_cycle_phases`, from ``initial = max_lr / div_factor`` up to ``max_lr`` over the
    first ``pct_start`` of ``total_steps``, then down to ``initial / final_div_factor`` at step
    ``total_steps - 1`` (``three_phase``: back to ``initial`` first). In a phase from ``a`` to ``b``, ``p`` of
    the way through:

        value = b + (a - b) * (1 + cos(pi * p)) / 2   (anneal_strategy="cos"),   a + (b - a) * p   ("linear")

    Unlike torch it stays at the minimum from step ``total_steps`` on (torch climbs back up there, then
    raises), and a warm-up phase shorter than one step starts at the peak (torch divides by zero).

    >>> s = OneCycle(1.0, total_steps=100, pct_start=0.3, div_factor=10.0, final_div_factor=100.0)
    >>> [round(s(t), 6) for t in (0, 29, 99, 150)]
    [0.1, 1.0, 0.001, 0.001]
    """

    max_lr: float = 0.1
    total_steps: int = 1000
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False

    def __post_init__(self) -> None:
        check_nonneg("max_lr", self.max_lr)
        _check_one_cycle(self.total_steps, self.pct_start, self.anneal_strategy)
        check_positive("div_factor", self.div_factor)
        check_positive("final_div_factor", self.final_div_factor)

    def value(self, step: int) -> float:
        initial = self.max_lr / self.div_factor
        phases = one_cycle_phases(self.total_steps, self.pct_start, self.three_phase, initial, self.max_lr,
                                  initial / self.final_div_factor)
        return _phase_value(phases, self.anneal_strategy, step)


@dataclass(frozen=True)
class OneCycleMomentum(Schedule):
    """The momentum (or Adam beta1) that the 1cycle policy cycles opposite to the LR.

    The phases of :func:`one_cycle_phases` from ``max_momentum`` down to ``base_momentum`` while the LR rises,
    then back up to ``max_momentum`` (``three_phase``: it stays there in the third phase); each phase from
    ``a`` to ``b`` is annealed as in :class:`OneCycle`, with the same arguments:

        value = b + (a - b) * (1 + cos(pi * p)) / 2   (anneal_strategy="cos"),   a + (b - a) * p   ("linear")

    >>> s = OneCycleMomentum(total_steps=100, pct_start=0.3, base_momentum=0.85, max_momentum=0.95)
    >>> [round(s(t), 6) for t in (0, 29, 99)]
    [0.95, 0.85, 0.95]
    """

    total_steps: int = 1000
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    three_phase: bool = False

    def __post_init__(self) -> None:
        _check_one_cycle(self.total_steps, self.pct_start, self.anneal_strategy)
        check_range("base_momentum", self.base_momentum, 0.0, 1.0)
        check_range("max_momentum", self.max_momentum, 0.0, 1.0)

    def value(self, step: int) -> float:
        phases = one_cycle_phases(self.total_steps, self.pct_start, self.three_phase, self.max_momentum,
                                  self.base_momentum, self.max_momentum)
        return _phase_value(phases, self.anneal_strategy, step)

"""The `Schedule` base class and the combinators its operators build: product, scale and clamp.

A schedule is an immutable value: ``schedule(step) -> float`` where ``step`` is the number of optimizer
updates already done (0 for the first update). It keeps no state, so calling it in any order, any number of
times, gives the same curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from lrlab.schedules.checks import check_finite, check_nonneg


class Schedule:
    """Base class of every schedule: a frozen dataclass with ``__call__(step) -> float``.

    Subclasses implement :meth:`value`; ``__call__`` checks the step. ``a * b`` multiplies two schedules
    (:class:`Product`), ``a * 0.5`` scales one (:class:`Scale`), ``s.clamp(lo, hi)`` bounds one (:class:`Clamp`).

    >>> from lrlab.schedules import Cosine
    >>> s = (Cosine(1.0, 0.0, steps=10) * 0.1).clamp(0.01)
    >>> [round(s(t), 6) for t in (0, 5, 10)]
    [0.1, 0.05, 0.01]
    """

    def value(self, step: int) -> float:
        """The schedule's value after ``step`` optimizer updates (``step >= 0``)."""
        raise NotImplementedError

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step={step} is invalid: a schedule is defined for step >= 0")
        return float(self.value(step))

    def __mul__(self, other: Schedule | float) -> Schedule:
        if isinstance(other, Schedule):
            return product(self, other)
        return scale(self, float(other))

    __rmul__ = __mul__

    def clamp(self, min_value: float = 0.0, max_value: float = math.inf) -> Schedule:
        """This schedule bounded to ``[min_value, max_value]``."""
        return clamp(self, min_value, max_value)

    def params(self) -> dict[str, Any]:
        """The schedule's constructor arguments, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}  # type: ignore[arg-type]


@dataclass(frozen=True)
class Product(Schedule):
    """The pointwise product of two schedules: e.g. a schedule times a slowly decaying envelope.

        value(t) = left(t) * right(t)

    >>> from lrlab.schedules import Constant, Step
    >>> s = Product(Step(1.0, step_size=2, gamma=0.5), Constant(0.1))
    >>> [s(t) for t in (0, 2, 4)]
    [0.1, 0.05, 0.025]
    """

    left: Schedule
    right: Schedule

    def value(self, step: int) -> float:
        return self.left(step) * self.right(step)


@dataclass(frozen=True)
class Scale(Schedule):
    """A schedule times a constant ``factor >= 0``.

        value(t) = factor * schedule(t)

    >>> from lrlab.schedules import Step
    >>> s = Scale(Step(1.0, step_size=2, gamma=0.5), 4.0)
    >>> [s(t) for t in (0, 2, 4)]
    [4.0, 2.0, 1.0]
    """

    schedule: Schedule
    factor: float = 1.0

    def __post_init__(self) -> None:
        check_nonneg("factor", self.factor)

    def value(self, step: int) -> float:
        return self.factor * self.schedule(step)


@dataclass(frozen=True)
class Clamp(Schedule):
    """A schedule bounded to ``[min_value, max_value]``.

        value(t) = min(max(schedule(t), min_value), max_value)

    >>> from lrlab.schedules import Exponential
    >>> s = Clamp(Exponential(1.0, 0.5), min_value=0.2, max_value=0.8)
    >>> [s(t) for t in (0, 1, 2, 3)]
    [0.8, 0.5, 0.25, 0.2]
    """

    schedule: Schedule
    min_value: float = 0.0
    max_value: float = math.inf

    def __post_init__(self) -> None:
        check_nonneg("min_value", self.min_value)
        if not (isinstance(self.max_value, (int, float)) and self.max_value >= self.min_value):
            raise ValueError(f"max_value={self.max_value!r} is invalid: expected a number >= min_value")

    def value(self, step: int) -> float:
        return min(max(self.schedule(step), self.min_value), self.max_value)


def product(left: Schedule, right: Schedule) -> Product:
    """The pointwise product of two schedules (``left * right``)."""
    return Product(left, right)


def scale(schedule: Schedule, factor: float) -> Scale:
    """``schedule`` multiplied by a constant ``factor`` (``schedule * factor``)."""
    check_finite("factor", factor)
    return Scale(schedule, factor)


def clamp(schedule: Schedule, min_value: float = 0.0, max_value: float = math.inf) -> Clamp:
    """``schedule`` bounded to ``[min_value, max_value]`` (``schedule.clamp(min_value, max_value)``)."""
    return Clamp(schedule, min_value, max_value)


def scaled_power(scale: float, base: float, exponent: float) -> float:
    """``scale * base ** exponent``: ``inf`` where the power overflows a float (as torch's tensors give, where
    Python raises), and 0 when ``scale`` is 0 (never ``0 * inf = nan``)."""
    if scale == 0:
        return 0.0
    try:
        return scale * base**exponent
    except OverflowError:
        return math.copysign(math.inf, scale)

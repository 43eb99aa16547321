"""Ways to build a schedule from others in time: join (one after another) and warmup.

Time is re-based at every boundary: the second piece of a join sees step 0 at the boundary, and the
schedule after a warmup starts at its own step 0 when the warmup ends.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from lrlab.schedules.base import Schedule
from lrlab.schedules.checks import check_choice, check_int, check_range
from lrlab.schedules.decay import Anneal

WARMUP_SHAPES = ("linear", "cosine", "exponential", "rev-1-sqrt")


@dataclass(frozen=True)
class Join(Schedule):
    """One schedule after another, each starting at its own step 0 at its boundary.

        value(t) = schedules[i](t - boundaries[i - 1]),   for boundaries[i - 1] <= t < boundaries[i]

    (``boundaries[-1]`` read as 0, the last boundary's schedule going on forever).

    >>> from lrlab.schedules import Constant, Exponential
    >>> s = Join((Constant(1.0), Exponential(1.0, 0.5)), boundaries=(10,))
    >>> [s(t) for t in (0, 9, 10, 12)]
    [1.0, 1.0, 1.0, 0.25]
    """

    schedules: tuple[Schedule, ...]
    boundaries: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedules", tuple(self.schedules))
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        if not self.schedules or not all(isinstance(s, Schedule) for s in self.schedules):
            raise ValueError(f"schedules={self.schedules!r} is invalid: expected one or more schedules")
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(
                f"boundaries={list(self.boundaries)} is invalid: expected {len(self.schedules) - 1} "
                f"boundaries for {len(self.schedules)} schedules"
            )
        for b in self.boundaries:
            check_int("boundaries", b, 0)
        if list(self.boundaries) != sorted(self.boundaries):
            raise ValueError(f"boundaries={list(self.boundaries)} is invalid: expected non-decreasing steps")

    def value(self, step: int) -> float:
        i = bisect.bisect_right(self.boundaries, step)
        offset = self.boundaries[i - 1] if i else 0
        return self.schedules[i](step - offset)


@dataclass(frozen=True)
class Warmup(Schedule):
    """A ramp over ``steps`` steps up to ``schedule(0)``, then the schedule from its own step 0.

        value(t) = Anneal(start_factor * schedule(0), schedule(0), steps, shape)(t)   for t < steps
        value(t) = schedule(t - steps)                                                for t >= steps

    ``shape`` is ``linear``, ``cosine``, ``exponential`` (needs ``start_factor > 0``) or ``rev-1-sqrt``
    (``1 - sqrt(1 - x)``, HF's ``1-sqrt`` warmup); the ramp starts at 0 by default.

    >>> from lrlab.schedules import Constant
    >>> s = Warmup(Constant(1.0), steps=4)
    >>> [s(t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """

    schedule: Schedule
    steps: int = 0
    shape: str = "linear"
    start_factor: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise ValueError(f"schedule={self.schedule!r} is invalid: expected a Schedule")
        check_int("steps", self.steps, 0)
        check_choice("shape", self.shape, WARMUP_SHAPES)
        check_range("start_factor", self.start_factor, 0.0, 1.0)
        if self.shape == "exponential" and self.start_factor <= 0:
            raise ValueError(
                f"start_factor={self.start_factor!r} is invalid for shape='exponential': expected a number in (0, 1]"
            )

    def value(self, step: int) -> float:
        if step >= self.steps:
            return self.schedule(step - self.steps)
        target = self.schedule(0)
        if target == 0.0:
            return 0.0
        return Anneal(self.start_factor * target, target, self.steps, self.shape).value(step)


@dataclass(frozen=True)
class Shift(Schedule):
    """A schedule that starts ``steps`` steps into its own curve: a phase offset.

        value(t) = schedule(t + steps)

    ``warmup >> Shift(cosine, w)`` keeps the cosine's clock running through a ``w``-step warmup (timm's
    ``warmup_prefix=False``); ``Shift(s, 1)`` runs ``s`` one step ahead.

    >>> from lrlab.schedules import Cosine
    >>> s = Shift(Cosine(1.0, 0.0, steps=10), 5)
    >>> [round(s(t), 6) for t in (0, 5, 10)]
    [0.5, 0.0, 0.0]
    """

    schedule: Schedule
    steps: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise ValueError(f"schedule={self.schedule!r} is invalid: expected a Schedule")
        check_int("steps", self.steps, 0)

    def value(self, step: int) -> float:
        return self.schedule(step + self.steps)


def shift(schedule: Schedule, steps: int) -> Shift:
    """``schedule`` started ``steps`` steps into its curve (:class:`Shift`)."""
    return Shift(schedule, steps)


def join(schedules: list[Schedule] | tuple[Schedule, ...], boundaries: list[int] | tuple[int, ...]) -> Join:
    """One schedule after another; ``boundaries`` (steps) are where each next one starts (:class:`Join`)."""
    return Join(tuple(schedules), tuple(boundaries))


def warmup(schedule: Schedule, steps: int, shape: str = "linear", start_factor: float = 0.0) -> Warmup:
    """``schedule`` preceded by a ``steps``-long ramp of ``shape`` from ``start_factor * s(0)`` (:class:`Warmup`)."""
    return Warmup(schedule, steps, shape, start_factor)


def adam_warmup_steps(beta2: float) -> int:
    """The rule-of-thumb warmup length for Adam in steps (Ma & Yarats, 2021).

        steps = round(2 / (1 - beta2))

    >>> adam_warmup_steps(0.999), adam_warmup_steps(0.98)
    (2000, 100)
    """
    check_range("beta2", beta2, 0.0, 1.0, high_open=True)
    return round(2.0 / (1.0 - beta2))

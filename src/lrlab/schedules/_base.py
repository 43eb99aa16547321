"""The `Schedule` base class and the argument checks every schedule uses.

A schedule is an immutable value: ``schedule(step) -> float`` where ``step`` is the number of optimizer
updates already done (0 for the first update). It keeps no state, so calling it in any order, any number of
times, gives the same curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields
from typing import Any


class Schedule:
    """Base class of every schedule: a frozen dataclass with ``__call__(step) -> float``.

    Subclasses implement :meth:`value`; ``__call__`` checks the step. ``a * b`` multiplies two schedules,
    ``a * 0.5`` scales one, ``s.clamp(lo, hi)`` bounds one.
    """

    def value(self, step: int) -> float:
        """The schedule's value after ``step`` optimizer updates (``step >= 0``)."""
        raise NotImplementedError

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step={step} is invalid: a schedule is defined for step >= 0")
        return float(self.value(step))

    def __mul__(self, other: Schedule | float) -> Schedule:
        from lrlab.schedules.combinators import product, scale

        if isinstance(other, Schedule):
            return product(self, other)
        return scale(self, float(other))

    __rmul__ = __mul__

    def clamp(self, min_value: float = 0.0, max_value: float = math.inf) -> Schedule:
        """This schedule bounded to ``[min_value, max_value]``."""
        from lrlab.schedules.combinators import clamp

        return clamp(self, min_value, max_value)

    def params(self) -> dict[str, Any]:
        """The schedule's constructor arguments, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}  # type: ignore[arg-type]


def check_finite(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is invalid: expected a finite number")


def check_nonneg(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number >= 0."""
    check_finite(name, value)
    if value < 0:
        raise ValueError(f"{name}={value!r} is invalid: expected a number >= 0")


def check_positive(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number > 0."""
    check_finite(name, value)
    if value <= 0:
        raise ValueError(f"{name}={value!r} is invalid: expected a number > 0")


def check_range(name: str, value: float, low: float, high: float, *, low_open: bool = False,
                high_open: bool = False) -> None:
    """Raise ``ValueError`` unless ``low <= value <= high`` (ends excluded where ``*_open``)."""
    check_finite(name, value)
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name}={value!r} is invalid: expected a number in {left}{low}, {high}{right}")


def check_int(name: str, value: int, minimum: int = 0) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}={value!r} is invalid: expected an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value!r} is invalid: expected an integer >= {minimum}")


def check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is invalid: expected one of {', '.join(map(repr, allowed))}")


def scaled_power(scale: float, base: float, exponent: float) -> float:
    """``scale * base ** exponent``: ``inf`` where the power overflows a float (as torch's tensors give, where
    Python raises), and 0 when ``scale`` is 0 (never ``0 * inf = nan``)."""
    if scale == 0:
        return 0.0
    try:
        return scale * base**exponent
    except OverflowError:
        return math.copysign(math.inf, scale)

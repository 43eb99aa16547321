"""The argument checks every lrlab constructor uses, with lrlab's one error wording.

Each raises ``ValueError`` with one line naming the argument, its value and what is allowed:
``step_size=0 is invalid: expected an integer >= 1``. Pure Python (no torch import), shared by the schedules,
the controllers and the drop-in torch classes.

>>> check_int("step_size", 0, 1)
Traceback (most recent call last):
    ...
ValueError: step_size=0 is invalid: expected an integer >= 1
"""

from __future__ import annotations

import math
from collections.abc import Sequence


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

"""Named recipes built by composition: warmup + cosine, and warmup-stable-decay (WSD).

Each is a few lines of :mod:`lrlab.schedules.combinators`, not a class with flags. Durations are in steps.
"""

from __future__ import annotations

from lrlab.schedules.base import Schedule
from lrlab.schedules.checks import check_int
from lrlab.schedules.combinators import join, warmup
from lrlab.schedules.decay import Anneal, Constant, Cosine

WSD_DECAY_SHAPES = ("linear", "cosine", "1-sqrt", "power", "exp-ratio")


def warmup_cosine(peak_lr: float, total_steps: int, warmup_steps: int, min_lr: float = 0.0) -> Schedule:
    """Linear warmup from 0 to ``peak_lr`` over ``warmup_steps``, then cosine to ``min_lr`` at ``total_steps``.

        value(t) = peak_lr * t / w                                                  for t < w = warmup_steps
        value(t) = min_lr + (peak_lr - min_lr) * (1 + cos(pi * (t - w) / (total_steps - w))) / 2   after

    >>> s = warmup_cosine(1.0, total_steps=110, warmup_steps=10)
    >>> [round(s(t), 6) for t in (0, 5, 10, 60, 110)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    check_int("total_steps", total_steps, 1)
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps={warmup_steps!r} is invalid: expected 0 <= warmup_steps < total_steps")
    return warmup(Cosine(peak_lr, min_lr, total_steps - warmup_steps), warmup_steps)


def wsd(peak_lr: float, total_steps: int, decay_steps: int, warmup_steps: int = 0, min_lr: float = 0.0,
        decay_shape: str = "1-sqrt", decay_power: float = 0.5, decay_ratio: float = 0.1) -> Schedule:
    """Warmup-stable-decay: linear warmup, ``peak_lr`` held, then a cooldown to ``min_lr`` ending at ``total_steps``.

        value(t) = peak_lr * t / w                                         for t < w = warmup_steps
        value(t) = peak_lr                                                 for w <= t < s = total_steps - decay_steps
        value(t) = Anneal(peak_lr, min_lr, decay_steps, decay_shape)(t - s)   after

    ``decay_shape`` is ``1-sqrt`` (Hägele et al., 2024), ``linear``, ``cosine``, ``power`` (``1 - x **
    decay_power`` of the way down) or ``exp-ratio`` (timm's ``exp``, with ``decay_ratio``), the shapes of
    :class:`~lrlab.schedules.Anneal`; ``decay_steps`` is the cooldown's length in steps.

    >>> s = wsd(1.0, total_steps=100, decay_steps=20, warmup_steps=10)
    >>> [round(s(t), 6) for t in (0, 5, 10, 79, 85, 100)]
    [0.0, 0.5, 1.0, 1.0, 0.5, 0.0]
    """
    check_int("total_steps", total_steps, 1)
    check_int("decay_steps", decay_steps, 0)
    check_int("warmup_steps", warmup_steps, 0)
    if decay_shape not in WSD_DECAY_SHAPES:
        raise ValueError(f"decay_shape={decay_shape!r} is invalid: expected one of {', '.join(WSD_DECAY_SHAPES)}")
    stable_steps = total_steps - warmup_steps - decay_steps
    if stable_steps < 0:
        raise ValueError(
            f"warmup_steps={warmup_steps} + decay_steps={decay_steps} is invalid: "
            f"expected at most total_steps={total_steps}"
        )
    body = join([Constant(peak_lr), Anneal(peak_lr, min_lr, decay_steps, decay_shape, decay_power, decay_ratio)],
                [stable_steps])
    return warmup(body, warmup_steps)

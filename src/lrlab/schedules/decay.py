"""Monotone and single-phase schedules: constant, step, exponential, annealing ramps, cosine, and friends.

Every class here is a frozen dataclass: construct it with its arguments (durations in optimizer steps), then
call it with a step. Values are whatever the caller makes of them: absolute learning rates, or factors of a
base LR when the torch adapter runs with ``relative=True``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from lrlab.schedules.base import Schedule, scaled_power
from lrlab.schedules.checks import check_choice, check_finite, check_int, check_nonneg, check_positive

ANNEAL_SHAPES = ("linear", "cosine", "exponential", "1-sqrt", "rev-1-sqrt", "power", "exp-ratio")


def anneal_fraction(shape: str, frac: float, power: float = 1.0, ratio: float = 0.1) -> float:
    """How far (0 to 1) a ramp of the given shape has gone after ``frac`` (0 to 1) of its duration."""
    if shape == "linear":
        return frac
    if shape == "cosine":
        return (1.0 - math.cos(math.pi * frac)) / 2.0
    if shape == "1-sqrt":
        return math.sqrt(frac)
    if shape == "rev-1-sqrt":
        return 1.0 - math.sqrt(1.0 - frac)
    if shape == "power":
        return frac**power
    if shape == "exp-ratio":
        return 1.0 - (ratio**frac - ratio) / (1.0 - ratio)
    raise ValueError(f"shape={shape!r} has no fraction form")


@dataclass(frozen=True)
class Constant(Schedule):
    """The same value at every step.

        value(t) = lr

    >>> Constant(0.1)(1000)
    0.1
    """

    lr: float = 1.0

    def __post_init__(self) -> None:
        check_nonneg("lr", self.lr)

    def value(self, step: int) -> float:
        return self.lr


@dataclass(frozen=True)
class Step(Schedule):
    """Decay by ``gamma`` every ``step_size`` steps (torch's StepLR).

        value(t) = init_lr * gamma ** (t // step_size)

    >>> s = Step(1.0, step_size=10, gamma=0.5)
    >>> [s(t) for t in (0, 9, 10, 25)]
    [1.0, 1.0, 0.5, 0.25]
    """

    init_lr: float = 1.0
    step_size: int = 1
    gamma: float = 0.1

    def __post_init__(self) -> None:
        check_nonneg("init_lr", self.init_lr)
        check_int("step_size", self.step_size, 1)
        check_nonneg("gamma", self.gamma)

    def value(self, step: int) -> float:
        return scaled_power(self.init_lr, self.gamma, step // self.step_size)


@dataclass(frozen=True)
class MultiStep(Schedule):
    """Decay by ``gamma`` at each milestone step (torch's MultiStepLR).

        value(t) = init_lr * gamma ** n(t),   n(t) = the number of milestones <= t

    A milestone listed twice counts twice, as in torch.

    >>> s = MultiStep(1.0, milestones=(3, 3, 5), gamma=0.5)
    >>> [s(t) for t in (2, 3, 5)]
    [1.0, 0.25, 0.125]
    """

    init_lr: float = 1.0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def __post_init__(self) -> None:
        check_nonneg("init_lr", self.init_lr)
        for m in self.milestones:
            check_int("milestones", m, 0)
        object.__setattr__(self, "milestones", tuple(sorted(self.milestones)))
        check_nonneg("gamma", self.gamma)

    def value(self, step: int) -> float:
        return scaled_power(self.init_lr, self.gamma, bisect.bisect_right(self.milestones, step))


@dataclass(frozen=True)
class Exponential(Schedule):
    """Decay by ``gamma`` every step (torch's ExponentialLR, without its drift).

        value(t) = init_lr * gamma ** t

    >>> s = Exponential(1.0, gamma=0.5)
    >>> [s(t) for t in (0, 1, 3)]
    [1.0, 0.5, 0.125]
    """

    init_lr: float = 1.0
    gamma: float = 0.99

    def __post_init__(self) -> None:
        check_nonneg("init_lr", self.init_lr)
        check_positive("gamma", self.gamma)

    def value(self, step: int) -> float:
        return scaled_power(self.init_lr, self.gamma, step)


@dataclass(frozen=True)
class Anneal(Schedule):
    """A ramp from ``start_lr`` to ``end_lr`` over ``steps`` steps, then ``end_lr``.

        value(t) = start_lr + (end_lr - start_lr) * f(x),   x = min(t, steps) / steps

    with ``f(x) = x`` for ``shape="linear"``, ``(1 - cos(pi * x)) / 2`` for ``cosine`` (flat at both ends),
    ``sqrt(x)`` for ``1-sqrt`` (the WSD cooldown, ``1 - sqrt(x)`` of the way down), ``1 - sqrt(1 - x)`` for
    ``rev-1-sqrt`` (its mirror in time, HF's ``1-sqrt`` warmup), ``x ** power`` for ``power`` (timm's WSD
    ``1 - x ** p`` cooldown) and ``(1 - ratio ** x) / (1 - ratio)`` for ``exp-ratio`` (timm's WSD ``exp``
    cooldown, ``ratio`` in (0, 1)); ``exponential`` is geometric, ``start_lr * (end_lr / start_lr) ** x``
    (both ends > 0). ``steps`` may be fractional.

    >>> s = Anneal(0.0, 1.0, steps=4, shape="linear")
    >>> [s(t) for t in (0, 1, 2, 4, 10)]
    [0.0, 0.25, 0.5, 1.0, 1.0]
    >>> round(Anneal(1e-3, 1e-1, steps=2, shape="exponential")(1), 6)
    0.01
    >>> Anneal(1.0, 0.0, steps=4, shape="power", power=2.0)(2), Anneal(0.0, 1.0, steps=4, shape="rev-1-sqrt")(3)
    (0.75, 0.5)
    """

    start_lr: float = 0.0
    end_lr: float = 1.0
    steps: float = 1
    shape: str = "linear"
    power: float = 1.0
    ratio: float = 0.1

    def __post_init__(self) -> None:
        check_nonneg("start_lr", self.start_lr)
        check_nonneg("end_lr", self.end_lr)
        check_nonneg("steps", self.steps)
        check_choice("shape", self.shape, ANNEAL_SHAPES)
        check_positive("power", self.power)
        if not 0 < self.ratio < 1:
            raise ValueError(f"ratio={self.ratio!r} is invalid: expected a number in (0, 1)")
        if self.shape == "exponential" and (self.start_lr <= 0 or self.end_lr <= 0):
            raise ValueError(
                f"start_lr={self.start_lr!r}, end_lr={self.end_lr!r} are invalid for shape='exponential': "
                "expected both > 0 (use a start factor > 0 or another shape)"
            )

    def value(self, step: int) -> float:
        if step >= self.steps:
            return self.end_lr
        frac = step / self.steps
        if self.shape == "exponential":
            return self.start_lr * (self.end_lr / self.start_lr) ** frac
        fraction = anneal_fraction(self.shape, frac, self.power, self.ratio)
        return self.start_lr + (self.end_lr - self.start_lr) * fraction


@dataclass(frozen=True)
class Polynomial(Schedule):
    """Polynomial decay from ``init_lr`` to ``end_lr`` at step ``steps`` (torch's PolynomialLR, with an end).

        value(t) = end_lr + (init_lr - end_lr) * (1 - min(t, steps) ** k / steps ** k) ** power

    ``steps`` may be fractional; ``k`` warps time (k-decay, Zhang et al. 2020; timm's ``k_decay``): ``k > 1``
    holds the LR high for longer, ``k = 1`` is the plain ``1 - t / steps``.

    >>> s = Polynomial(1.0, 0.0, steps=4, power=2.0)
    >>> [s(t) for t in (0, 2, 4, 8)]
    [1.0, 0.25, 0.0, 0.0]
    >>> Polynomial(1.0, 0.0, steps=4, k=2.0)(2)
    0.75
    """

    init_lr: float = 1.0
    end_lr: float = 0.0
    steps: float = 1
    power: float = 1.0
    k: float = 1.0

    def __post_init__(self) -> None:
        check_nonneg("init_lr", self.init_lr)
        check_nonneg("end_lr", self.end_lr)
        check_positive("steps", self.steps)
        check_nonneg("power", self.power)
        check_positive("k", self.k)

    def value(self, step: int) -> float:
        t = min(step, self.steps)
        remaining = 1.0 - (t / self.steps) ** self.k
        return self.end_lr + (self.init_lr - self.end_lr) * remaining**self.power


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half-cosine from ``init_lr`` down to ``min_lr`` over ``steps`` steps, then ``min_lr``.

        value(t) = min_lr + (init_lr - min_lr) * ((1 + cos(pi * t ** k / steps ** k)) / 2) ** exponent

    for ``t <= steps``. With ``cyclic=True`` the cosine wave goes on past ``steps`` (back up to ``init_lr`` at
    ``2 * steps``), as torch's CosineAnnealingLR does. ``steps`` may be fractional (a wave of any period);
    ``k`` warps time (k-decay, timm's ``k_decay``) and ``exponent`` raises the cosine factor to a power
    (optax's ``exponent``); both are 1 in the plain cosine.

    >>> s = Cosine(1.0, 0.0, steps=10)
    >>> [round(s(t), 6) for t in (0, 5, 10, 20)]
    [1.0, 0.5, 0.0, 0.0]
    >>> round(Cosine(1.0, 0.0, steps=10, cyclic=True)(20), 6)
    1.0
    >>> round(Cosine(1.0, 0.0, steps=10, exponent=2.0)(5), 6), round(Cosine(1.0, 0.0, steps=10, k=2.0)(5), 6)
    (0.25, 0.853553)
    """

    init_lr: float = 1.0
    min_lr: float = 0.0
    steps: float = 1
    cyclic: bool = False
    exponent: float = 1.0
    k: float = 1.0

    def __post_init__(self) -> None:
        check_nonneg("init_lr", self.init_lr)
        check_nonneg("min_lr", self.min_lr)
        check_positive("steps", self.steps)
        check_positive("exponent", self.exponent)
        check_positive("k", self.k)
        if self.cyclic and self.k != 1:
            raise ValueError(f"k={self.k!r} is invalid with cyclic=True: expected 1 (a warp needs an end)")

    def value(self, step: int) -> float:
        if step >= self.steps and not self.cyclic:
            return self.min_lr
        if self.k == 1 and self.exponent == 1:  # the plain cosine in its usual order of operations, bit for bit
            return self.min_lr + (self.init_lr - self.min_lr) * (1.0 + math.cos(math.pi * step / self.steps)) / 2.0
        phase = (step / self.steps) ** self.k
        factor = (1.0 + math.cos(math.pi * phase)) / 2.0
        return self.min_lr + (self.init_lr - self.min_lr) * factor**self.exponent


@dataclass(frozen=True)
class InverseSqrt(Schedule):
    """The Transformer's ``1 / sqrt(step)`` decay.

        value(t) = init_lr * sqrt(timescale / (t + timescale))

    After a warmup of ``w`` steps joined in front, ``timescale=w`` gives Vaswani et al.'s ``peak * sqrt(w / t)``
    at absolute step ``t``.

    >>> s = InverseSqrt(1.0, timescale=100)
    >>> [round(s(t), 6) for t in (0, 300, 9900)]
    [1.0, 0.5, 0.1]
    """

    init_lr: float = 1.0
    timescale: float = 1000.0

    def __post_init__(self) -> None:
        check_nonneg("init_lr", self.init_lr)
        check_positive("timescale", self.timescale)

    def value(self, step: int) -> float:
        return self.init_lr * math.sqrt(self.timescale / (step + self.timescale))


@dataclass(frozen=True)
class Tanh(Schedule):
    """Hyperbolic-tangent decay (Hsueh et al., 2019) from about ``init_lr`` to about ``min_lr`` over ``steps``.

        value(t) = min_lr + (init_lr - min_lr) * (1 - tanh(lower + (upper - lower) * min(t, steps) / steps)) / 2

    >>> s = Tanh(1.0, 0.0, steps=100)
    >>> [round(s(t), 4) for t in (0, 50, 100)]
    [1.0, 0.9526, 0.0025]
    """

    init_lr: float = 1.0
    min_lr: float = 0.0
    steps: int = 1
    lower: float = -6.0
    upper: float = 3.0

    def __post_init__(self) -> None:
        check_nonneg("init_lr", self.init_lr)
        check_nonneg("min_lr", self.min_lr)
        check_int("steps", self.steps, 1)
        check_finite("lower", self.lower)
        check_finite("upper", self.upper)
        if self.upper <= self.lower:
            raise ValueError(f"upper={self.upper!r} is invalid: expected a number > lower={self.lower!r}")

    def value(self, step: int) -> float:
        x = self.lower + (self.upper - self.lower) * min(step, self.steps) / self.steps
        return self.min_lr + (self.init_lr - self.min_lr) * (1.0 - math.tanh(x)) / 2.0


@dataclass(frozen=True)
class Function(Schedule):
    """A user function of the step times ``init_lr`` (torch's LambdaLR).

        value(t) = init_lr * fn(t)

    Picklable when ``fn`` is a module-level function; a lambda works but cannot be pickled.

    >>> s = Function(lambda t: 1 / (t + 1), init_lr=2.0)
    >>> [s(t) for t in (0, 1, 3)]
    [2.0, 1.0, 0.5]
    """

    fn: Callable[[int], float]
    init_lr: float = 1.0

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ValueError(f"fn={self.fn!r} is invalid: expected a callable step -> value")
        check_finite("init_lr", self.init_lr)

    def value(self, step: int) -> float:
        return self.init_lr * self.fn(step)


@dataclass(frozen=True)
class Multiplicative(Schedule):
    """The running product of a user factor (torch's MultiplicativeLR).

        value(t) = init_lr * fn(1) * fn(2) * ... * fn(t)   (init_lr at t = 0)

    The product is exact for any step asked in any order; prefix products are cached internally.

    >>> s = Multiplicative(lambda t: 0.5, init_lr=1.0)
    >>> [s(t) for t in (0, 1, 3)]
    [1.0, 0.5, 0.125]
    """

    fn: Callable[[int], float]
    init_lr: float = 1.0
    _prefix: list[float] = field(default_factory=lambda: [1.0], init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ValueError(f"fn={self.fn!r} is invalid: expected a callable step -> factor")
        check_finite("init_lr", self.init_lr)

    def value(self, step: int) -> float:
        prefix = self._prefix
        while len(prefix) <= step:
            prefix.append(prefix[-1] * self.fn(len(prefix)))
        return self.init_lr * prefix[step]

    def __getstate__(self) -> dict:
        return {"fn": self.fn, "init_lr": self.init_lr}

    def __setstate__(self, state: dict) -> None:
        object.__setattr__(self, "fn", state["fn"])
        object.__setattr__(self, "init_lr", state["init_lr"])
        object.__setattr__(self, "_prefix", [1.0])

"""optax's schedule functions in lrlab: same names and arguments, returning lrlab schedules.

Each function returns a :class:`Spelled` schedule: an lrlab :class:`~lrlab.schedules.Schedule` built from the
spec it carries (``schedule.spec``, also :func:`to_spec`). Convention: ``schedule(t)`` equals optax's
``schedule(t)``, the value for the update made after ``t`` updates (optax's ``count``, 0 for the first).

Values are absolute (optax's ``init_value``/``peak_value``), so they must be >= 0 here; optax's fallbacks
are kept (``transition_steps <= 0`` or ``decay_rate == 0``: a constant; ``transition_begin < 0``: 0).
:func:`join_schedules` and :func:`sgdr_schedule` join schedules of this module (each on its own clock, cut at
its boundary, as optax does). Torch-free: drive an optimizer with ``lrlab.ScheduledLR(optimizer, schedule)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrlab.schedules import Schedule
from lrlab.spec import Horizon, build

NAMES = ("constant_schedule", "linear_schedule", "polynomial_schedule", "exponential_decay",
         "cosine_decay_schedule", "warmup_cosine_decay_schedule", "warmup_constant_schedule",
         "warmup_exponential_decay_schedule", "piecewise_constant_schedule", "piecewise_interpolate_schedule",
         "join_schedules", "sgdr_schedule", "cosine_onecycle_schedule", "linear_onecycle_schedule")
_FOREVER = Horizon(total_steps=10**9)


@dataclass(frozen=True)
class Spelled(Schedule):
    """An lrlab schedule built from its spec: ``value(t) = build(spec)(t)``, the spec kept as its spelling.

    >>> s = Spelled("linear(start_lr=0.0, end_lr=1.0, steps=4)")
    >>> [s(t) for t in (0, 2, 4, 9)]
    [0.0, 0.5, 1.0, 1.0]
    """

    spec: str
    schedule: Schedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", build(self.spec, _FOREVER).lr)

    def value(self, step: int) -> float:
        return self.schedule(step)


def _f(x: Any) -> str:
    return repr(float(x))


def _chain(*pieces: str | None) -> str:
    """``piece >> piece >> ...``, leaving out the pieces that are None (those of 0 steps)."""
    return " >> ".join(p for p in pieces if p)


def _cut(spec: str, steps: int) -> str | None:
    """``spec`` on its own clock, cut after ``steps`` steps (None for 0 steps)."""
    return f"cut({spec}, steps={steps})" if steps > 0 else None


def _held(value: float, begin: int, then: str) -> str:
    """``then`` after holding ``value`` for ``begin`` steps (optax's ``transition_begin``; < 0 read as 0)."""
    return _chain(f"constant(lr={_f(value)}, steps={int(begin)})" if begin > 0 else None, then)


def constant_schedule(value: float) -> Spelled:
    """optax's ``constant_schedule``: ``value`` at every step."""
    return Spelled(f"constant(lr={_f(value)})")


def polynomial_schedule(init_value: float, end_value: float, power: float, transition_steps: int,
                        transition_begin: int = 0) -> Spelled:
    """optax's ``polynomial_schedule``: ``(I - E) * (1 - clip(t - B, 0, T) / T) ** power + E``.

    >>> polynomial_schedule(1.0, 0.0, 2.0, 4, transition_begin=2).spec
    'constant(lr=1.0, steps=2) >> polynomial(init_lr=1.0, min_lr=0.0, power=2.0, steps=4)'
    """
    if transition_steps <= 0:
        return constant_schedule(init_value)
    poly = (f"polynomial(init_lr={_f(init_value)}, min_lr={_f(end_value)}, power={_f(power)}, "
            f"steps={int(transition_steps)})")
    return Spelled(_held(init_value, transition_begin, poly))


def linear_schedule(init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0) -> Spelled:
    """optax's ``linear_schedule``: ``I + clip(t - B, 0, T) / T * (E - I)``."""
    if transition_steps <= 0:
        return constant_schedule(init_value)
    line = f"linear(start_lr={_f(init_value)}, end_lr={_f(end_value)}, steps={int(transition_steps)})"
    return Spelled(_held(init_value, transition_begin, line))


def _exponential(init_value: float, transition_steps: int, decay_rate: float, transition_begin: int,
                 staircase: bool, end_value: float | None) -> str:
    if transition_steps <= 0 or decay_rate == 0:
        return f"constant(lr={_f(init_value)})"
    if staircase:  # I * rate ** floor((t - B) / T)
        decay = f"step(init_lr={_f(init_value)}, every_steps={int(transition_steps)}, gamma={_f(decay_rate)})"
    else:  # I * rate ** ((t - B) / T), one factor per step
        decay = f"exponential(init_lr={_f(init_value)}, gamma={_f(decay_rate ** (1.0 / transition_steps))})"
    spec = _held(init_value, transition_begin, decay)
    if end_value is None:
        return spec
    bound = "min" if decay_rate < 1 else "max"  # optax clips the whole curve, the held start included
    return f"clamp({spec}, {bound}={_f(end_value)})"


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float, transition_begin: int = 0,
                      staircase: bool = False, end_value: float | None = None) -> Spelled:
    """optax's ``exponential_decay``: ``I * rate ** ((t - B) / T)`` from step ``B`` (``staircase``: the exponent
    floored), bounded by ``end_value`` (below when ``rate < 1``, above otherwise).

    >>> exponential_decay(1.0, 10, 0.5, staircase=True, end_value=0.2).spec
    'clamp(step(init_lr=1.0, every_steps=10, gamma=0.5), min=0.2)'
    """
    return Spelled(_exponential(init_value, transition_steps, decay_rate, transition_begin, staircase, end_value))


def _cosine(init_value: float, decay_steps: int, alpha: float, exponent: float) -> str:
    if not decay_steps > 0:
        raise ValueError(f"decay_steps={decay_steps!r} is invalid: expected a whole number of steps > 0")
    return (f"cosine(init_lr={_f(init_value)}, min_lr={_f(alpha * init_value)}, steps={int(decay_steps)}"
            + (f", exponent={_f(exponent)})" if exponent != 1 else ")"))


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0) -> Spelled:
    """optax's ``cosine_decay_schedule``: ``I * ((1 - alpha) * c ** exponent + alpha)``,
    ``c = (1 + cos(pi * min(t, T) / T)) / 2``.

    >>> cosine_decay_schedule(1.0, 100, alpha=0.1, exponent=2.0).spec
    'cosine(init_lr=1.0, min_lr=0.1, steps=100, exponent=2.0)'
    """
    return Spelled(_cosine(init_value, decay_steps, alpha, exponent))


def _ramp(init_value: float, peak_value: float, warmup_steps: int) -> str | None:
    """optax's linear warmup before a join boundary at ``warmup_steps`` (None: no warmup)."""
    if warmup_steps <= 0:
        return None
    return f"linear(start_lr={_f(init_value)}, end_lr={_f(peak_value)}, steps={int(warmup_steps)})"


def _warmup_cosine(init_value: float, peak_value: float, warmup_steps: int, decay_steps: int,
                   end_value: float = 0.0, exponent: float = 1.0) -> str:
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    cosine = _cosine(peak_value, decay_steps - warmup_steps, alpha, exponent)
    return _chain(_ramp(init_value, peak_value, warmup_steps), cosine)


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int, decay_steps: int,
                                 end_value: float = 0.0, exponent: float = 1.0) -> Spelled:
    """optax's ``warmup_cosine_decay_schedule``: a linear ramp from ``I`` to ``P`` over ``warmup_steps``, then
    :func:`cosine_decay_schedule` from ``P`` to ``end_value`` over ``decay_steps - warmup_steps``.

    >>> warmup_cosine_decay_schedule(0.0, 1.0, 10, 100).spec
    'linear(start_lr=0.0, end_lr=1.0, steps=10) >> cosine(init_lr=1.0, min_lr=0.0, steps=90)'
    """
    return Spelled(_warmup_cosine(init_value, peak_value, warmup_steps, decay_steps, end_value, exponent))


def warmup_constant_schedule(init_value: float, peak_value: float, warmup_steps: int) -> Spelled:
    """optax's ``warmup_constant_schedule``: a linear ramp from ``I`` to ``P`` over ``warmup_steps``, then ``P``."""
    return linear_schedule(init_value, peak_value, warmup_steps)


def warmup_exponential_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                      transition_steps: int, decay_rate: float, transition_begin: int = 0,
                                      staircase: bool = False, end_value: float | None = None) -> Spelled:
    """optax's ``warmup_exponential_decay_schedule``: a linear ramp from ``I`` to ``P`` over ``warmup_steps``,
    then :func:`exponential_decay` from ``P`` (its clock restarting at the warmup's end)."""
    decay = _exponential(peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value)
    return Spelled(_chain(_ramp(init_value, peak_value, warmup_steps), decay))


def _boundaries(name: str, boundaries_and_scales: dict[int, float] | None) -> list[tuple[int, float]]:
    items = sorted((boundaries_and_scales or {}).items())
    for boundary, scale in items:
        if not scale >= 0:
            raise ValueError(f"boundaries_and_scales={boundaries_and_scales!r} is invalid for {name}: "
                             "expected scales >= 0")
        if int(boundary) != boundary:
            raise ValueError(f"boundaries_and_scales={boundaries_and_scales!r} is invalid for {name}: "
                             "expected whole steps as boundaries")
    return [(int(b), float(s)) for b, s in items]


def piecewise_constant_schedule(init_value: float, boundaries_and_scales: dict[int, float] | None = None) -> Spelled:
    """optax's ``piecewise_constant_schedule``: ``I`` times every scale whose boundary is ``<= t``.

    >>> piecewise_constant_schedule(1.0, {10: 0.5, 20: 0.5}).spec
    'constant(lr=1.0, steps=10) >> constant(lr=0.5, steps=10) >> constant(lr=0.25)'
    """
    value, start, pieces = float(init_value), 0, []
    for boundary, scale in _boundaries("piecewise_constant_schedule", boundaries_and_scales):
        boundary = max(boundary, 0)  # a boundary before step 0 scales from the start
        pieces.append(f"constant(lr={_f(value)}, steps={boundary - start})" if boundary > start else None)
        value, start = value * scale, boundary
    return Spelled(_chain(*pieces, f"constant(lr={_f(value)})"))


def piecewise_interpolate_schedule(interpolate_type: str, init_value: float,
                                   boundaries_and_scales: dict[int, float] | None = None) -> Spelled:
    """optax's ``piecewise_interpolate_schedule``: between consecutive boundaries, a linear or cosine
    interpolation between the running products of the scales (``I`` at step 0), then the last product.

    >>> piecewise_interpolate_schedule("linear", 1.0, {4: 0.1}).spec
    'linear(start_lr=1.0, end_lr=0.1, steps=4) >> constant(lr=0.1)'
    """
    if interpolate_type not in ("linear", "cosine"):
        raise ValueError(f"interpolate_type={interpolate_type!r} is invalid: expected 'linear' or 'cosine'")
    value, start, pieces = float(init_value), 0, []
    for boundary, scale in _boundaries("piecewise_interpolate_schedule", boundaries_and_scales):
        if boundary < 0:
            raise ValueError(f"boundaries_and_scales={boundaries_and_scales!r} is invalid: expected boundaries >= 0")
        end = value * scale
        length = boundary - start
        if length and interpolate_type == "linear":
            pieces.append(f"linear(start_lr={_f(value)}, end_lr={_f(end)}, steps={length})")
        elif length:  # optax's end + (start - end) / 2 * (cos(pi * pct) + 1)
            pieces.append(f"cosine(init_lr={_f(value)}, min_lr={_f(end)}, steps={length})")
        value, start = end, boundary
    return Spelled(_chain(*pieces, f"constant(lr={_f(value)})"))


def join_schedules(schedules: Sequence[Spelled], boundaries: Sequence[int]) -> Spelled:
    """optax's ``join_schedules``: ``schedules[i](t - boundaries[i - 1])`` from ``boundaries[i - 1]`` on, each
    schedule on its own clock and cut at the next boundary (a cosine cut before its end stays cut).

    >>> join_schedules([constant_schedule(1.0), cosine_decay_schedule(1.0, 10)], [5]).spec
    'cut(constant(lr=1.0), steps=5) >> cosine(init_lr=1.0, min_lr=0.0, steps=10)'
    """
    schedules, boundaries = list(schedules), [int(b) for b in boundaries]
    if len(boundaries) != len(schedules) - 1 or not schedules:
        raise ValueError(f"boundaries={boundaries!r} is invalid: expected {len(schedules) - 1} boundaries for "
                         f"{len(schedules)} schedules")
    if any(not isinstance(s, Spelled) for s in schedules):
        raise ValueError("schedules is invalid: expected schedules made by lrlab.compat.optax's functions")
    if boundaries != sorted(boundaries) or (boundaries and boundaries[0] < 0):
        raise ValueError(f"boundaries={boundaries!r} is invalid: expected non-decreasing steps >= 0")
    starts = [0, *boundaries]
    pieces = [_cut(s.spec, end - begin) for s, begin, end in zip(schedules, starts, boundaries, strict=False)]
    return Spelled(_chain(*pieces, schedules[-1].spec))


def sgdr_schedule(cosine_kwargs: Iterable[dict[str, Any]]) -> Spelled:
    """optax's ``sgdr_schedule``: :func:`warmup_cosine_decay_schedule` cycles one after another, each lasting
    its ``decay_steps``."""
    cycles = [dict(kwargs) for kwargs in cosine_kwargs]
    if not cycles:
        raise ValueError("cosine_kwargs=[] is invalid: expected one or more cycles")
    pieces = [_cut(_warmup_cosine(**kw), int(kw["decay_steps"])) for kw in cycles[:-1]]
    return Spelled(_chain(*pieces, _warmup_cosine(**cycles[-1])))


def cosine_onecycle_schedule(transition_steps: int, peak_value: float, pct_start: float = 0.3,
                             div_factor: float = 25.0, final_div_factor: float = 1e4) -> Spelled:
    """optax's ``cosine_onecycle_schedule``: cosine up from ``P / div_factor`` to ``P`` at step
    ``int(pct_start * T)``, then down to ``P / (div_factor * final_div_factor)`` at step ``T``."""
    if transition_steps <= 0:
        raise ValueError(f"transition_steps={transition_steps!r} is invalid: expected a number of steps > 0")
    return piecewise_interpolate_schedule("cosine", peak_value / div_factor, {
        int(pct_start * transition_steps): div_factor,
        int(transition_steps): 1.0 / (div_factor * final_div_factor)})


def linear_onecycle_schedule(transition_steps: int, peak_value: float, pct_start: float = 0.3,
                             pct_final: float = 0.85, div_factor: float = 25.0,
                             final_div_factor: float = 1e4) -> Spelled:
    """optax's ``linear_onecycle_schedule``: linear up from ``P / div_factor`` to ``P`` at step
    ``int(pct_start * T)``, back down to ``P / div_factor`` at ``int(pct_final * T)``, then to
    ``P / (div_factor * final_div_factor)`` at ``T``."""
    if transition_steps <= 0:
        raise ValueError(f"transition_steps={transition_steps!r} is invalid: expected a number of steps > 0")
    return piecewise_interpolate_schedule("linear", peak_value / div_factor, {
        int(pct_start * transition_steps): div_factor,
        int(pct_final * transition_steps): 1.0 / div_factor,
        transition_steps: 1.0 / final_div_factor})


def to_spec(name: str, *args: Any, **kwargs: Any) -> str:
    """The lrlab spec of optax's schedule function ``name`` called with these arguments.

    >>> to_spec("cosine_decay_schedule", 0.1, decay_steps=1000)
    'cosine(init_lr=0.1, min_lr=0.0, steps=1000)'
    """
    if name not in NAMES:
        raise ValueError(f"name={name!r} is invalid: expected one of {', '.join(NAMES)}")
    return globals()[name](*args, **kwargs).spec

"""Hugging Face transformers' LR schedulers (``transformers.get_scheduler`` and its functions) in lrlab.

Each function takes transformers' arguments and returns a :class:`~lrlab.adapter.ScheduledLR` whose LR
sequence is transformers' own (a ``LambdaLR`` multiplying each group's initial LR by a factor): the factor of
update ``t`` (0 for the first update, i.e. after ``t`` calls of ``scheduler.step()``) is the same.
:func:`to_spec` prints the lrlab spec behind each, in units of the optimizer's LR (``lr`` scales it).

Differences kept on purpose: ``polynomial`` with ``num_training_steps == num_warmup_steps`` (a division by
zero in transformers) raises here; ``greedy``'s ``verbose`` prints nothing.
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer

from lrlab.adapter import ScheduledLR
from lrlab.spec import Horizon, build, format_value

NAMES = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
         "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
         "warmup_stable_decay", "greedy")
_WARMUP_SHAPES = {"linear": "linear", "cosine": "cosine", "1-sqrt": "rev-1-sqrt"}


def _decaying(name: str, w: int, total: int | None) -> int:
    if total is None:
        raise ValueError(f"num_training_steps=None is invalid for {name}: expected the number of training steps")
    return max(1, total - w)


def _cosine(lr: float, length: int, num_cycles: float, min_lr: float = 0.0) -> str:
    cycles = abs(float(num_cycles))
    if cycles == 0:
        return f"constant(lr={lr!r})"
    extra = ", cyclic=true" if cycles == 0.5 else f", cycles={cycles!r}"
    floor = f", min_lr={min_lr!r}" if min_lr else ""
    return f"cosine(init_lr={lr!r}{floor}, steps={length}{extra})"


def _chain(*pieces: str | None) -> str:
    return " >> ".join(p for p in pieces if p)


def to_spec(name: str, num_warmup_steps: int = 0, num_training_steps: int | None = None, *, lr: float = 1.0,
            optimizer_lr: float | None = None, **kwargs: Any) -> str:
    """The lrlab spec of transformers' scheduler ``name`` with its arguments (``scheduler_specific_kwargs``).

    LRs in the spec are ``lr`` times transformers' factor: ``lr=1`` (default) gives the factors, the
    optimizer's LR gives absolute values. ``optimizer_lr`` is ``optimizer.defaults["lr"]``, which
    ``polynomial`` (its ``lr_end``) and ``cosine_with_min_lr`` (its ``min_lr``) need.

    >>> to_spec("cosine", 100, 1000)
    'warmup(steps=100) >> cosine(init_lr=1.0, steps=900, cyclic=true)'
    """
    w = int(num_warmup_steps or 0)
    warm = f"warmup(steps={w})" if w else None
    if name == "constant":
        return f"constant(lr={lr!r})"
    if name == "constant_with_warmup":
        return _chain(warm, f"constant(lr={lr!r})")
    if name in ("reduce_lr_on_plateau", "greedy"):
        args = ", ".join(f"{k}={format_value(tuple(v) if isinstance(v, list) else v)}" for k, v in kwargs.items()
                         if k != "verbose")
        return f"constant(lr={lr!r}) * {'plateau' if name == 'reduce_lr_on_plateau' else 'greedy'}({args})"
    if name == "linear":
        length = _decaying(name, w, num_training_steps)
        if num_training_steps is not None and num_training_steps <= w:
            raise ValueError(f"num_training_steps={num_training_steps} is invalid for linear: expected > "
                             f"num_warmup_steps={w}")
        return _chain(warm, f"linear(start_lr={lr!r}, end_lr=0.0, steps={length})")
    if name in ("cosine", "cosine_with_min_lr"):
        length = _decaying(name, w, num_training_steps)
        rate = _min_lr_rate(name, kwargs, optimizer_lr) if name == "cosine_with_min_lr" else 0.0
        return _chain(warm, _cosine(lr, length, kwargs.get("num_cycles", 0.5), rate * lr))
    if name == "cosine_with_restarts":
        length = _decaying(name, w, num_training_steps)
        cycles = float(kwargs.get("num_cycles", 1))
        if cycles <= 0:
            return _chain(warm, f"cut(constant(lr={lr!r}), steps={length})", "constant(lr=0.0)")
        return _chain(warm, f"sgdr(init_lr={lr!r}, cycles={cycles!r}, steps={length})")
    if name == "polynomial":
        length = _decaying(name, w, num_training_steps)
        if num_training_steps is not None and num_training_steps <= w:
            raise ValueError(f"num_training_steps={num_training_steps} is invalid for polynomial: expected > "
                             f"num_warmup_steps={w} (transformers divides by zero there)")
        if optimizer_lr is None:
            raise ValueError("optimizer_lr=None is invalid for polynomial: expected the optimizer's LR")
        end = float(kwargs.get("lr_end", 1e-7)) / optimizer_lr * lr
        power = float(kwargs.get("power", 1.0))
        return _chain(warm, f"polynomial(init_lr={lr!r}, min_lr={end!r}, power={power!r}, steps={length})")
    if name == "inverse_sqrt":
        timescale = kwargs.get("timescale") or w or 10_000
        return _chain(warm, f"inverse_sqrt(init_lr={lr!r}, timescale_steps={int(timescale)})")
    if name == "cosine_warmup_with_min_lr":
        length = _decaying(name, w, num_training_steps)
        rate = _min_lr_rate(name, kwargs, optimizer_lr)
        ramp = None
        if w:
            start = kwargs.get("warmup_lr_rate")
            ramp = (f"cut(shift(linear(start_lr=0.0, end_lr={lr!r}, steps={w}), by_steps=1), steps={w})"
                    if start is None else
                    f"cut(linear(start_lr={float(start) * lr!r}, end_lr={lr!r}, steps={max(1, w - 1)}), steps={w})")
        return _chain(ramp, f"shift({_cosine(lr, length, kwargs.get('num_cycles', 0.5), rate * lr)}, by_steps=1)")
    if name == "warmup_stable_decay":
        return _wsd_spec(w, num_training_steps, lr, **kwargs)
    raise ValueError(f"name={name!r} is invalid: expected one of {', '.join(NAMES)}")


def _min_lr_rate(name: str, kwargs: dict[str, Any], optimizer_lr: float | None) -> float:
    min_lr, rate = kwargs.get("min_lr"), kwargs.get("min_lr_rate")
    if (min_lr is None) == (rate is None):
        raise ValueError(f"min_lr={min_lr!r}, min_lr_rate={rate!r} are invalid for {name}: expected exactly one")
    if min_lr is not None:
        if optimizer_lr is None:
            raise ValueError(f"optimizer_lr=None is invalid for {name} with min_lr: expected the optimizer's LR")
        return float(min_lr) / optimizer_lr
    return float(rate)


def _wsd_spec(w: int, total: int | None, lr: float, num_decay_steps: int, num_stable_steps: int | None = None,
              warmup_type: str = "linear", decay_type: str = "cosine", min_lr_ratio: float = 0.0,
              num_cycles: float = 0.5) -> str:
    if num_stable_steps is None:
        if total is None:
            raise ValueError("num_training_steps=None and num_stable_steps=None are invalid for warmup_stable_decay: "
                             "expected one of them")
        num_stable_steps = total - w - num_decay_steps
    r, d = float(min_lr_ratio), int(num_decay_steps)
    floor = r * lr
    ramp = None
    if w:
        start = f", start={r!r}" if r else ""
        ramp = f"warmup(steps={w}, shape={_WARMUP_SHAPES[warmup_type]}{start})"
    # a warmup ramps up to the start of the piece after it: the peak, even with no stable phase
    stable = f"cut(constant(lr={lr!r}), steps={max(num_stable_steps, 0)})" if num_stable_steps > 0 or w else None
    decay = None
    if d and decay_type == "linear":
        decay = f"linear(start_lr={lr!r}, end_lr={floor!r}, steps={d})"
    elif d and decay_type == "1-sqrt":
        decay = f"wsd(peak_lr={lr!r}, min_lr={floor!r}, decay_steps={d}, steps={d})"
    elif d and decay_type == "cosine":
        decay = f"cut({_cosine(lr, d, num_cycles, floor)}, steps={d})"
    return _chain(ramp, stable, decay, f"constant(lr={floor!r})")


def _scheduler(optimizer: Optimizer, spec: str) -> ScheduledLR:
    """A relative scheduler (each group's initial LR times the spec's factor), like transformers' LambdaLR;
    a controller's bounds (``min_lr``, ``max_lr``) are absolute LRs, as in transformers."""
    plan = build(spec, Horizon(total_steps=10**9))
    return ScheduledLR(optimizer, plan.lr, relative=True, controller=plan.new_controller())


def get_scheduler(name: str, optimizer: Optimizer, num_warmup_steps: int | None = None,
                  num_training_steps: int | None = None,
                  scheduler_specific_kwargs: dict[str, Any] | None = None) -> ScheduledLR:
    """transformers' ``get_scheduler``: the scheduler ``name`` for ``optimizer``, as a :class:`ScheduledLR`."""
    name = str(getattr(name, "value", name))
    kwargs = dict(scheduler_specific_kwargs or {})
    if name not in ("constant", "reduce_lr_on_plateau", "greedy") and num_warmup_steps is None:
        raise ValueError(f"num_warmup_steps=None is invalid for {name}: expected a number of steps")
    spec = to_spec(name, num_warmup_steps or 0, num_training_steps, optimizer_lr=optimizer.defaults["lr"], **kwargs)
    return _scheduler(optimizer, spec)


def get_constant_schedule(optimizer: Optimizer) -> ScheduledLR:
    """transformers' ``get_constant_schedule``."""
    return get_scheduler("constant", optimizer)


def get_reduce_on_plateau_schedule(optimizer: Optimizer, **kwargs: Any) -> ScheduledLR:
    """transformers' ``get_reduce_on_plateau_schedule``: ReduceLROnPlateau (``scheduler.step(metric)``)."""
    return get_scheduler("reduce_lr_on_plateau", optimizer, scheduler_specific_kwargs=kwargs)


def get_greedy_schedule(optimizer: Optimizer, **kwargs: Any) -> ScheduledLR:
    """transformers' ``get_greedy_schedule``: GreedyLR (``scheduler.step(metric)``), a spec's ``greedy(...)``."""
    return get_scheduler("greedy", optimizer, scheduler_specific_kwargs=kwargs)


def get_constant_schedule_with_warmup(optimizer: Optimizer, num_warmup_steps: int) -> ScheduledLR:
    """transformers' ``get_constant_schedule_with_warmup``."""
    return get_scheduler("constant_with_warmup", optimizer, num_warmup_steps)


def get_linear_schedule_with_warmup(optimizer: Optimizer, num_warmup_steps: int,
                                    num_training_steps: int) -> ScheduledLR:
    """transformers' ``get_linear_schedule_with_warmup``."""
    return get_scheduler("linear", optimizer, num_warmup_steps, num_training_steps)


def get_cosine_schedule_with_warmup(optimizer: Optimizer, num_warmup_steps: int, num_training_steps: int,
                                    num_cycles: float = 0.5) -> ScheduledLR:
    """transformers' ``get_cosine_schedule_with_warmup``."""
    return get_scheduler("cosine", optimizer, num_warmup_steps, num_training_steps, {"num_cycles": num_cycles})


def get_cosine_with_hard_restarts_schedule_with_warmup(optimizer: Optimizer, num_warmup_steps: int,
                                                       num_training_steps: int, num_cycles: int = 1) -> ScheduledLR:
    """transformers' ``get_cosine_with_hard_restarts_schedule_with_warmup``."""
    return get_scheduler("cosine_with_restarts", optimizer, num_warmup_steps, num_training_steps,
                         {"num_cycles": num_cycles})


def get_polynomial_decay_schedule_with_warmup(optimizer: Optimizer, num_warmup_steps: int, num_training_steps: int,
                                              lr_end: float = 1e-7, power: float = 1.0) -> ScheduledLR:
    """transformers' ``get_polynomial_decay_schedule_with_warmup``."""
    if not optimizer.defaults["lr"] > lr_end:
        raise ValueError(f"lr_end={lr_end!r} is invalid: expected less than the optimizer's lr "
                         f"{optimizer.defaults['lr']!r}")
    return get_scheduler("polynomial", optimizer, num_warmup_steps, num_training_steps,
                         {"lr_end": lr_end, "power": power})


def get_inverse_sqrt_schedule(optimizer: Optimizer, num_warmup_steps: int,
                              timescale: int | None = None) -> ScheduledLR:
    """transformers' ``get_inverse_sqrt_schedule``."""
    return get_scheduler("inverse_sqrt", optimizer, num_warmup_steps, None, {"timescale": timescale})


def get_cosine_with_min_lr_schedule_with_warmup(optimizer: Optimizer, num_warmup_steps: int,
                                                num_training_steps: int, num_cycles: float = 0.5,
                                                min_lr: float | None = None,
                                                min_lr_rate: float | None = None) -> ScheduledLR:
    """transformers' ``get_cosine_with_min_lr_schedule_with_warmup``."""
    return get_scheduler("cosine_with_min_lr", optimizer, num_warmup_steps, num_training_steps,
                         {"num_cycles": num_cycles, "min_lr": min_lr, "min_lr_rate": min_lr_rate})


def get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
        optimizer: Optimizer, num_warmup_steps: int, num_training_steps: int, num_cycles: float = 0.5,
        min_lr: float | None = None, min_lr_rate: float | None = None,
        warmup_lr_rate: float | None = None) -> ScheduledLR:
    """transformers' ``get_cosine_with_min_lr_schedule_with_warmup_lr_rate`` (``cosine_warmup_with_min_lr``)."""
    return get_scheduler("cosine_warmup_with_min_lr", optimizer, num_warmup_steps, num_training_steps,
                         {"num_cycles": num_cycles, "min_lr": min_lr, "min_lr_rate": min_lr_rate,
                          "warmup_lr_rate": warmup_lr_rate})


def get_wsd_schedule(optimizer: Optimizer, num_warmup_steps: int, num_decay_steps: int,
                     num_training_steps: int | None = None, num_stable_steps: int | None = None,
                     warmup_type: str = "linear", decay_type: str = "cosine", min_lr_ratio: float = 0.0,
                     num_cycles: float = 0.5) -> ScheduledLR:
    """transformers' ``get_wsd_schedule`` (``warmup_stable_decay``)."""
    return get_scheduler("warmup_stable_decay", optimizer, num_warmup_steps, num_training_steps,
                         {"num_decay_steps": num_decay_steps, "num_stable_steps": num_stable_steps,
                          "warmup_type": warmup_type, "decay_type": decay_type, "min_lr_ratio": min_lr_ratio,
                          "num_cycles": num_cycles})

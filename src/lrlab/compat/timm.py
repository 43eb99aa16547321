"""timm's LR schedulers (``timm.scheduler``) in lrlab: same names, arguments and ``step``/``step_update`` calls.

timm's schedulers are closed-form in ``t``, the epoch (``step(epoch)``, ``t_in_epochs=True``) or the update
count (``step_update(num_updates)``, ``t_in_epochs=False``) that the training loop passes in; each param group's
LR is then the value at ``t``. Here that value is an lrlab schedule built from the spec :func:`to_spec` prints,
one per param group (timm's ``base_values``). Before the first ``step`` the LR is the value at ``t = 0``
(``warmup_lr_init`` with a warmup), as in timm. LR noise (``noise_range_t``) is not reproduced.
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer

from lrlab.schedules import Schedule
from lrlab.spec import Horizon, build

_FOREVER = Horizon(total_steps=10**9)


def to_spec(t_initial: int, lr: float = 1.0, lr_min: float = 0.0, cycle_mul: float = 1.0, cycle_decay: float = 1.0,
            cycle_limit: int = 1, warmup_t: int = 0, warmup_lr_init: float = 0.0, warmup_prefix: bool = False,
            k_decay: float = 1.0) -> str:
    """The lrlab spec of timm's ``CosineLRScheduler`` for a param group of LR ``lr`` (``t`` counted in steps).

    >>> to_spec(100, lr=0.1, warmup_t=5, warmup_lr_init=1e-4)
    'linear(start_lr=0.0001, end_lr=0.1, steps=5) >> shift(sgdr(init_lr=0.1, min_lr=0.0, period_steps=100, \
mult=1.0, decay=1.0, max_cycles=1, k=1.0), by_steps=5)'
    """
    if cycle_mul < 1:
        raise ValueError(f"cycle_mul={cycle_mul!r} is invalid here: expected a number >= 1")
    if int(cycle_limit) < 1:
        raise ValueError(f"cycle_limit={cycle_limit!r} is invalid: expected an integer >= 1")
    cosine = (f"sgdr(init_lr={float(lr)!r}, min_lr={float(lr_min)!r}, period_steps={int(t_initial)}, "
              f"mult={float(cycle_mul)!r}, decay={float(cycle_decay)!r}, max_cycles={int(cycle_limit)}, "
              f"k={float(k_decay)!r})")
    if not warmup_t:
        return cosine
    ramp = f"linear(start_lr={float(warmup_lr_init)!r}, end_lr={float(lr)!r}, steps={int(warmup_t)})"
    return f"{ramp} >> {cosine if warmup_prefix else f'shift({cosine}, by_steps={int(warmup_t)})'}"


class _Scheduler:
    """timm's ``Scheduler`` contract: ``step(epoch)`` / ``step_update(num_updates)`` set each group's LR.

    ``specs`` holds one spec per param group; a ``plateau(...)`` in them is one controller for all groups.
    """

    def __init__(self, optimizer: Optimizer, specs: list[str], t_in_epochs: bool) -> None:
        self.optimizer, self.specs, self.t_in_epochs = optimizer, specs, t_in_epochs
        plans = [build(spec, _FOREVER) for spec in specs]
        self.schedules: list[Schedule] = [plan.lr for plan in plans]
        self.controller = plans[0].new_controller() if plans else None
        if self.controller is not None:
            self.controller.bind(len(plans))
        self._set(0)

    def _set(self, t: int, metric: float | None = None) -> None:
        values = [schedule(t) for schedule in self.schedules]
        if self.controller is not None:
            if metric is not None:
                self.controller.observe(metric, t, values)
            values = [v * scale for v, scale in zip(values, self.controller.scales, strict=True)]
        for group, value in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = value * group["lr_scale"] if "lr_scale" in group else value

    def step(self, epoch: int, metric: float | None = None) -> None:
        """At the end of epoch ``epoch - 1``: the LRs for epoch ``epoch`` (when ``t_in_epochs``)."""
        if self.t_in_epochs:
            self._set(epoch, metric)

    def step_update(self, num_updates: int, metric: float | None = None) -> None:
        """After ``num_updates`` optimizer updates: the LRs for the next one (when not ``t_in_epochs``)."""
        if not self.t_in_epochs:
            self._set(num_updates, metric)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"t_in_epochs": self.t_in_epochs}
        if self.controller is not None:
            state["controller"] = self.controller.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t_in_epochs = bool(state["t_in_epochs"])
        if self.controller is not None and "controller" in state:
            self.controller.load_state_dict(state["controller"])


def _cycle_length(t_initial: int, cycle_mul: float, cycles: int, warmup_t: int, warmup_prefix: bool) -> int:
    """timm's ``get_cycle_length``: the ``t`` at which ``cycles`` cycles end (with the warmup if it is a prefix)."""
    cycles = max(1, cycles)
    if cycle_mul == 1.0:
        t = t_initial * cycles
    else:
        t = math.floor(-t_initial * (cycle_mul**cycles - 1) / (1 - cycle_mul))
    return t + warmup_t if warmup_prefix else t


class _CycleScheduler(_Scheduler):
    """A scheduler of ``cycle_limit`` cycles (cosine, poly, tanh), with timm's ``get_cycle_length``."""

    def __init__(self, optimizer: Optimizer, specs: list[str], t_in_epochs: bool, t_initial: int, cycle_mul: float,
                 cycle_limit: int, warmup_t: int, warmup_prefix: bool) -> None:
        super().__init__(optimizer, specs, t_in_epochs)
        self._cycles = (t_initial, cycle_mul, cycle_limit, warmup_t, warmup_prefix)

    def get_cycle_length(self, cycles: int = 0) -> int:
        """The ``t`` at which ``cycles`` cycles end (0: ``cycle_limit``), the warmup included if it is a prefix."""
        t_initial, cycle_mul, cycle_limit, warmup_t, warmup_prefix = self._cycles
        return _cycle_length(t_initial, cycle_mul, cycles or cycle_limit, warmup_t, warmup_prefix)


def _base_values(optimizer: Optimizer) -> list[float]:
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return [float(group["initial_lr"]) for group in optimizer.param_groups]


class CosineLRScheduler(_CycleScheduler):
    """timm's ``CosineLRScheduler``: warmup, cosine with restarts (``cycle_mul``, ``cycle_decay``,
    ``cycle_limit``) and k-decay; ``warmup_prefix=False`` (timm's default) keeps the cosine's clock running
    through the warmup (lrlab's ``shift``)."""

    def __init__(self, optimizer: Optimizer, t_initial: int, lr_min: float = 0.0, cycle_mul: float = 1.0,
                 cycle_decay: float = 1.0, cycle_limit: int = 1, warmup_t: int = 0, warmup_lr_init: float = 0.0,
                 warmup_prefix: bool = False, t_in_epochs: bool = True, noise_range_t: Any = None,
                 k_decay: float = 1.0, **unused: Any) -> None:
        _no_noise(noise_range_t)
        specs = [to_spec(t_initial, lr, lr_min, cycle_mul, cycle_decay, cycle_limit, warmup_t, warmup_lr_init,
                         warmup_prefix, k_decay) for lr in _base_values(optimizer)]
        super().__init__(optimizer, specs, t_in_epochs, t_initial, cycle_mul, cycle_limit, warmup_t, warmup_prefix)


def _f(x: Any) -> str:
    return repr(float(x))


def _timm_chain(curve: str, lr: float, warmup_t: int, warmup_lr_init: float, warmup_prefix: bool,
                ramp_to_curve: bool = False) -> str:
    """timm's warmup in front of ``curve`` (a spec in the scheduler's own ``t``).

    Without a warmup, update 0 is the optimizer's LR (timm sets it at construction; its loops never call
    ``step(0)``), whatever ``curve(0)`` is. With one, a linear ramp from ``warmup_lr_init`` over ``warmup_t``
    to ``lr`` (``ramp_to_curve`` without ``warmup_prefix``: to the curve's value at ``warmup_t``, as timm's tanh), then:
    on its own clock from 0 (``warmup_prefix``) or at ``t`` (its clock ran through the warmup: ``shift``).
    """
    w = int(warmup_t)
    if not w:
        if build(curve, _FOREVER).lr(0) == lr:
            return curve
        return f"constant(lr={_f(lr)}, steps=1) >> shift({curve}, by_steps=1)"
    after = curve if warmup_prefix else f"shift({curve}, by_steps={w})"
    target = build(after, _FOREVER).lr(0) if ramp_to_curve and not warmup_prefix else lr
    return f"linear(start_lr={_f(warmup_lr_init)}, end_lr={_f(target)}, steps={w}) >> {after}"


def _whole(name: str, value: float) -> int:
    if not float(value).is_integer() or value < 1:
        raise ValueError(f"{name}={value!r} is invalid here: expected a whole number of steps >= 1")
    return int(value)


def _restarts(t_initial: int, lr: float, lr_min: float, cycle_mul: float, cycle_decay: float, cycle_limit: int,
              shape: str) -> str:
    """``cycle_limit`` cycles of ``shape`` (cycle ``i``: ``t_initial * cycle_mul ** i`` steps, fractional or not,
    peak ``lr * cycle_decay ** i``), then ``lr_min``: timm's cycle arithmetic, as lrlab's ``sgdr``."""
    if cycle_mul < 1:
        raise ValueError(f"cycle_mul={cycle_mul!r} is invalid here: expected a number >= 1")
    if int(cycle_limit) < 1:  # timm: no cycle is ever inside the limit
        return f"constant(lr={_f(lr_min)})"
    return (f"sgdr(init_lr={_f(lr)}, min_lr={_f(lr_min)}, period_steps={_whole('t_initial', t_initial)}, "
            f"mult={_f(cycle_mul)}, decay={_f(cycle_decay)}, max_cycles={int(cycle_limit)}, {shape})")


def step_spec(decay_t: int, lr: float = 1.0, decay_rate: float = 1.0, warmup_t: int = 0,
              warmup_lr_init: float = 0.0, warmup_prefix: bool = True) -> str:
    """The lrlab spec of timm's ``StepLRScheduler`` for a param group of LR ``lr``: ``lr * rate ** (t // decay_t)``.

    >>> step_spec(30, lr=0.1, decay_rate=0.5)
    'step(init_lr=0.1, every_steps=30, gamma=0.5)'
    """
    curve = f"step(init_lr={_f(lr)}, every_steps={_whole('decay_t', decay_t)}, gamma={_f(decay_rate)})"
    return _timm_chain(curve, lr, warmup_t, warmup_lr_init, warmup_prefix)


def multistep_spec(decay_t: list[int], lr: float = 1.0, decay_rate: float = 1.0, warmup_t: int = 0,
                   warmup_lr_init: float = 0.0, warmup_prefix: bool = True) -> str:
    """The lrlab spec of timm's ``MultiStepLRScheduler``: each milestone ``m`` applies from ``t = m - 1``, one
    update early, as timm counts milestones ``<= t + 1``.

    >>> multistep_spec([30, 60], lr=0.1)
    'multistep(init_lr=0.1, milestones_steps=[29, 59], gamma=1.0)'
    """
    milestones = [int(m) for m in decay_t]
    if milestones != sorted(milestones):
        raise ValueError(f"decay_t={list(decay_t)!r} is invalid: expected milestones in increasing order")
    if not milestones:
        return _timm_chain(f"constant(lr={_f(lr)})", lr, warmup_t, warmup_lr_init, warmup_prefix)
    early = ", ".join(str(max(m - 1, 0)) for m in milestones)
    curve = f"multistep(init_lr={_f(lr)}, milestones_steps=[{early}], gamma={_f(decay_rate)})"
    return _timm_chain(curve, lr, warmup_t, warmup_lr_init, warmup_prefix)


def poly_spec(t_initial: int, lr: float = 1.0, power: float = 0.5, lr_min: float = 0.0, cycle_mul: float = 1.0,
              cycle_decay: float = 1.0, cycle_limit: int = 1, warmup_t: int = 0, warmup_lr_init: float = 0.0,
              warmup_prefix: bool = False, k_decay: float = 1.0) -> str:
    """The lrlab spec of timm's ``PolyLRScheduler``: in cycle ``i`` of ``T_i = t_initial * cycle_mul ** i`` steps
    (fractional or not), ``lr_min + (lr * cycle_decay**i - lr_min) * (1 - t_i**k / T_i**k) ** power``; ``lr_min``
    after ``cycle_limit`` cycles.

    >>> poly_spec(10, lr=0.1, power=2.0)
    'sgdr(init_lr=0.1, min_lr=0.0, period_steps=10, mult=1.0, decay=1.0, max_cycles=1, k=1.0, shape=poly, power=2.0)'
    """
    curve = _restarts(t_initial, lr, lr_min, cycle_mul, cycle_decay, cycle_limit,
                      f"k={_f(k_decay)}, shape=poly, power={_f(power)}")
    return _timm_chain(curve, lr, warmup_t, warmup_lr_init, warmup_prefix)


def tanh_spec(t_initial: int, lr: float = 1.0, lb: float = -7.0, ub: float = 3.0, lr_min: float = 0.0,
              cycle_mul: float = 1.0, cycle_decay: float = 1.0, cycle_limit: int = 1, warmup_t: int = 0,
              warmup_lr_init: float = 0.0, warmup_prefix: bool = False) -> str:
    """The lrlab spec of timm's ``TanhLRScheduler``: in cycle ``i`` of ``T_i = t_initial * cycle_mul ** i`` steps
    (fractional or not), ``lr_min + (lr * cycle_decay**i - lr_min) * (1 - tanh(lb + (ub - lb) * t_i / T_i)) / 2``.
    Update 0 is ``lr`` itself without a warmup; a warmup ramps to the curve's value at its end unless
    ``warmup_prefix``.

    >>> tanh_spec(10, lr=0.1)
    'constant(lr=0.1, steps=1) >> shift(sgdr(init_lr=0.1, min_lr=0.0, period_steps=10, mult=1.0, decay=1.0, \
max_cycles=1, shape=tanh, lower=-7.0, upper=3.0), by_steps=1)'
    """
    curve = _restarts(t_initial, lr, lr_min, cycle_mul, cycle_decay, cycle_limit,
                      f"shape=tanh, lower={_f(lb)}, upper={_f(ub)}")
    return _timm_chain(curve, lr, warmup_t, warmup_lr_init, warmup_prefix, ramp_to_curve=True)


def plateau_spec(lr: float = 1.0, decay_rate: float = 0.1, patience_t: int = 10, threshold: float = 1e-4,
                 cooldown_t: int = 0, warmup_t: int = 0, warmup_lr_init: float = 0.0, lr_min: float = 0.0,
                 mode: str = "max") -> str:
    """The lrlab spec of timm's ``PlateauLRScheduler``: the warmup ramp, then ReduceLROnPlateau. timm ignores
    the metric of every ``step(epoch)`` with ``epoch <= warmup_t``, so the plateau starts one epoch later.

    >>> plateau_spec(0.1, warmup_t=2)
    'linear(start_lr=0.0, end_lr=0.1, steps=2) >> constant(lr=0.1, steps=1) >> constant(lr=0.1) * \
plateau(mode=max, factor=0.1, patience=10, threshold=0.0001, cooldown=0, min_lr=0.0)'
    """
    w = int(warmup_t)
    ramp = f"linear(start_lr={_f(warmup_lr_init)}, end_lr={_f(lr)}, steps={w}) >> " if w else ""
    return (f"{ramp}constant(lr={_f(lr)}, steps=1) >> constant(lr={_f(lr)}) * plateau(mode={mode}, "
            f"factor={_f(decay_rate)}, patience={int(patience_t)}, threshold={_f(threshold)}, "
            f"cooldown={int(cooldown_t)}, min_lr={_f(lr_min)})")


def _no_noise(noise_range_t: Any) -> None:
    if noise_range_t is not None:
        raise ValueError(f"noise_range_t={noise_range_t!r} is invalid here: LR noise is not reproduced")


class StepLRScheduler(_Scheduler):
    """timm's ``StepLRScheduler`` (:func:`step_spec` per param group)."""

    def __init__(self, optimizer: Optimizer, decay_t: int, decay_rate: float = 1.0, warmup_t: int = 0,
                 warmup_lr_init: float = 0.0, warmup_prefix: bool = True, t_in_epochs: bool = True,
                 noise_range_t: Any = None, **unused: Any) -> None:
        _no_noise(noise_range_t)
        super().__init__(optimizer, [step_spec(decay_t, lr, decay_rate, warmup_t, warmup_lr_init, warmup_prefix)
                                     for lr in _base_values(optimizer)], t_in_epochs)


class MultiStepLRScheduler(_Scheduler):
    """timm's ``MultiStepLRScheduler`` (:func:`multistep_spec` per param group)."""

    def __init__(self, optimizer: Optimizer, decay_t: list[int], decay_rate: float = 1.0, warmup_t: int = 0,
                 warmup_lr_init: float = 0.0, warmup_prefix: bool = True, t_in_epochs: bool = True,
                 noise_range_t: Any = None, **unused: Any) -> None:
        _no_noise(noise_range_t)
        super().__init__(optimizer, [multistep_spec(decay_t, lr, decay_rate, warmup_t, warmup_lr_init, warmup_prefix)
                                     for lr in _base_values(optimizer)], t_in_epochs)


class PolyLRScheduler(_CycleScheduler):
    """timm's ``PolyLRScheduler`` (:func:`poly_spec` per param group)."""

    def __init__(self, optimizer: Optimizer, t_initial: int, power: float = 0.5, lr_min: float = 0.0,
                 cycle_mul: float = 1.0, cycle_decay: float = 1.0, cycle_limit: int = 1, warmup_t: int = 0,
                 warmup_lr_init: float = 0.0, warmup_prefix: bool = False, t_in_epochs: bool = True,
                 noise_range_t: Any = None, k_decay: float = 1.0, **unused: Any) -> None:
        _no_noise(noise_range_t)
        specs = [poly_spec(t_initial, lr, power, lr_min, cycle_mul, cycle_decay, cycle_limit, warmup_t,
                           warmup_lr_init, warmup_prefix, k_decay) for lr in _base_values(optimizer)]
        super().__init__(optimizer, specs, t_in_epochs, t_initial, cycle_mul, cycle_limit, warmup_t, warmup_prefix)


class TanhLRScheduler(_CycleScheduler):
    """timm's ``TanhLRScheduler`` (:func:`tanh_spec` per param group)."""

    def __init__(self, optimizer: Optimizer, t_initial: int, lb: float = -7.0, ub: float = 3.0, lr_min: float = 0.0,
                 cycle_mul: float = 1.0, cycle_decay: float = 1.0, cycle_limit: int = 1, warmup_t: int = 0,
                 warmup_lr_init: float = 0.0, warmup_prefix: bool = False, t_in_epochs: bool = True,
                 noise_range_t: Any = None, **unused: Any) -> None:
        _no_noise(noise_range_t)
        specs = [tanh_spec(t_initial, lr, lb, ub, lr_min, cycle_mul, cycle_decay, cycle_limit, warmup_t,
                           warmup_lr_init, warmup_prefix) for lr in _base_values(optimizer)]
        super().__init__(optimizer, specs, t_in_epochs, t_initial, cycle_mul, cycle_limit, warmup_t, warmup_prefix)


class PlateauLRScheduler(_Scheduler):
    """timm's ``PlateauLRScheduler`` (:func:`plateau_spec` per param group; one controller): ``step(epoch,
    metric)`` once per epoch, ``step_update`` does nothing."""

    def __init__(self, optimizer: Optimizer, decay_rate: float = 0.1, patience_t: int = 10, threshold: float = 1e-4,
                 cooldown_t: int = 0, warmup_t: int = 0, warmup_lr_init: float = 0.0, lr_min: float = 0.0,
                 mode: str = "max", noise_range_t: Any = None, **unused: Any) -> None:
        _no_noise(noise_range_t)
        specs = [plateau_spec(lr, decay_rate, patience_t, threshold, cooldown_t, warmup_t, warmup_lr_init, lr_min,
                              mode) for lr in _base_values(optimizer)]
        super().__init__(optimizer, specs, t_in_epochs=True)


_WSD_SHAPES = {"linear": "linear", "1-sqrt": "1-sqrt", "cosine": "cosine", "power": "power", "exp": "exp-ratio"}


def wsd_spec(t_initial: int, decay_t: int, lr: float = 1.0, lr_min: float = 0.0, stable_fn: str = "constant",
             stable_timescale: float | None = None, decay_fn: str = "1-sqrt", decay_power: float = 0.5,
             decay_ratio: float = 0.1, warmup_t: int = 0, warmup_lr_init: float = 0.0) -> str:
    """The lrlab spec of timm's ``WSDLRScheduler``: a linear warmup (always a prefix), then ``t_initial`` steps of
    ``lr_min + (lr * stable(t_s) - lr_min) * decay(frac)`` whose last ``decay_t`` are the cooldown, then ``lr_min``.

    ``stable_fn="rsqrt"`` (``(1 + t_s / timescale) ** -0.5``) is reproduced with ``lr_min = 0`` (then the LR is a
    product, ``inverse_sqrt(...) * wsd(...)``); ``power`` stable functions and callable decays are not.

    >>> wsd_spec(100, 20, lr=0.1, warmup_t=5)
    'linear(start_lr=0.0, end_lr=0.1, steps=5) >> wsd(peak_lr=0.1, min_lr=0.0, decay_steps=20, shape=1-sqrt, \
steps=100) >> constant(lr=0.0)'
    """
    t_initial, decay_t = _whole("t_initial", t_initial), _whole("decay_t", decay_t)
    if decay_t > t_initial:
        raise ValueError(f"decay_t={decay_t} is invalid: expected at most t_initial={t_initial}")
    if callable(decay_fn) or decay_fn not in _WSD_SHAPES:
        raise ValueError(f"decay_fn={decay_fn!r} is invalid here: expected one of {', '.join(_WSD_SHAPES)}")
    shape = _WSD_SHAPES[decay_fn]
    extra = (f", power={_f(decay_power)}" if shape == "power" else
             f", ratio={_f(decay_ratio)}" if shape == "exp-ratio" else "")
    if stable_fn == "constant":
        curve = (f"wsd(peak_lr={_f(lr)}, min_lr={_f(lr_min)}, decay_steps={decay_t}, shape={shape}{extra}, "
                 f"steps={t_initial})")
    elif stable_fn == "rsqrt" and lr_min == 0:
        timescale = _whole("stable_timescale", warmup_t if stable_timescale is None else stable_timescale)
        curve = (f"inverse_sqrt(init_lr={_f(lr)}, timescale_steps={timescale}) * wsd(peak_lr=1.0, min_lr=0.0, "
                 f"decay_steps={decay_t}, shape={shape}{extra}, steps={t_initial})")
    else:
        raise ValueError(f"stable_fn={stable_fn!r} is invalid here with lr_min={lr_min!r}: expected 'constant', or "
                         "'rsqrt' with lr_min=0 (timm's floor at lr_min inside a decaying stable phase is not "
                         "reproduced)")
    return _timm_chain(f"{curve} >> constant(lr={_f(lr_min)})", lr, warmup_t, warmup_lr_init, warmup_prefix=True)


class WSDLRScheduler(_Scheduler):
    """timm's ``WSDLRScheduler`` (:func:`wsd_spec` per param group)."""

    def __init__(self, optimizer: Optimizer, t_initial: int, decay_t: int, lr_min: float = 0.0,
                 stable_fn: str = "constant", stable_timescale: float | None = None, stable_power: float = 0.5,
                 decay_fn: str = "1-sqrt", decay_power: float = 0.5, decay_ratio: float = 0.1, warmup_t: int = 0,
                 warmup_lr_init: float = 0.0, t_in_epochs: bool = True, noise_range_t: Any = None,
                 **unused: Any) -> None:
        _no_noise(noise_range_t)
        if stable_fn == "power":
            raise ValueError(f"stable_fn='power' (stable_power={stable_power!r}) is invalid here: expected "
                             "'constant' or 'rsqrt'")
        specs = [wsd_spec(t_initial, decay_t, lr, lr_min, stable_fn, stable_timescale, decay_fn, decay_power,
                          decay_ratio, warmup_t, warmup_lr_init) for lr in _base_values(optimizer)]
        super().__init__(optimizer, specs, t_in_epochs)
        self.warmup_t, self.t_initial = warmup_t, t_initial

    def get_cycle_length(self, cycles: int = 0) -> int:
        """``warmup_t + t_initial``: where ``lr_min`` is reached."""
        return self.warmup_t + self.t_initial


#: the names ``create_scheduler_v2`` accepts
SCHEDULERS = ("cosine", "tanh", "step", "constant", "multistep", "plateau", "poly", "wsd", "rsqrt", "none")


def create_scheduler_v2(optimizer: Optimizer, sched: str = "cosine", num_epochs: int = 300,
                        decay_epochs: float | None = None, decay_milestones: Any = (90, 180, 270),
                        cooldown_epochs: int = 0, patience_epochs: int = 10, decay_rate: float = 0.1,
                        min_lr: float = 0.0, warmup_lr: float = 1e-5, warmup_epochs: int = 0,
                        warmup_prefix: bool = False, noise: Any = None, noise_pct: float = 0.67, noise_std: float = 1.0,
                        noise_seed: int = 42, cycle_mul: float = 1.0, cycle_decay: float = 0.1, cycle_limit: int = 1,
                        k_decay: float = 1.0, decay_fn: str | None = None, stable_timescale: float | None = None,
                        plateau_mode: str = "max", step_on_epochs: bool = True,
                        updates_per_epoch: int = 0) -> tuple[_Scheduler | None, int]:
    """timm's ``create_scheduler_v2``: ``(scheduler, num_epochs)`` for the scheduler named ``sched`` (one of
    :data:`SCHEDULERS`), with timm's defaults and its epochs-to-updates conversion (``step_on_epochs=False``);
    ``num_epochs`` is the epochs to train, cycles, warmup prefix and cooldown included. ``'none'``: no scheduler."""
    if sched not in SCHEDULERS:
        raise ValueError(f"sched={sched!r} is invalid: expected one of {', '.join(SCHEDULERS)}")
    if noise is not None:
        raise ValueError(f"noise={noise!r} is invalid here: LR noise is not reproduced")
    if decay_epochs is None:
        decay_epochs = 0.2 if sched in ("wsd", "rsqrt") else 90
    t_initial, warmup_t, decay_t, cooldown_t, timescale_t = (num_epochs, warmup_epochs, decay_epochs,
                                                             cooldown_epochs, stable_timescale)
    milestones = list(decay_milestones)
    if not step_on_epochs:
        if updates_per_epoch <= 0:
            raise ValueError(f"updates_per_epoch={updates_per_epoch!r} is invalid with step_on_epochs=False: "
                             "expected the number of updates per epoch")
        t_initial, warmup_t, decay_t = (t_initial * updates_per_epoch, warmup_t * updates_per_epoch,
                                        decay_t * updates_per_epoch)
        milestones = [d * updates_per_epoch for d in milestones]
        cooldown_t *= updates_per_epoch
        timescale_t = None if timescale_t is None else timescale_t * updates_per_epoch
    warmup = dict(warmup_lr_init=warmup_lr, warmup_t=warmup_t, warmup_prefix=warmup_prefix)
    cycles = dict(cycle_mul=cycle_mul, cycle_decay=cycle_decay, cycle_limit=cycle_limit)
    scheduler: _Scheduler | None = None
    if sched == "cosine":
        scheduler = CosineLRScheduler(optimizer, t_initial, lr_min=min_lr, t_in_epochs=step_on_epochs, **cycles,
                                      **warmup, k_decay=k_decay)
    elif sched == "tanh":
        scheduler = TanhLRScheduler(optimizer, t_initial, lr_min=min_lr, t_in_epochs=step_on_epochs, **cycles,
                                    **warmup)
    elif sched in ("step", "constant"):
        every, rate = (decay_t, decay_rate) if sched == "step" else (1, 1.0)
        scheduler = StepLRScheduler(optimizer, every, rate, t_in_epochs=step_on_epochs, **warmup)
    elif sched == "multistep":
        scheduler = MultiStepLRScheduler(optimizer, milestones, decay_rate, t_in_epochs=step_on_epochs, **warmup)
    elif sched == "plateau":
        if not step_on_epochs:
            raise ValueError("step_on_epochs=False is invalid for sched='plateau': expected True (per epoch)")
        scheduler = PlateauLRScheduler(optimizer, decay_rate, patience_epochs, cooldown_t=0, warmup_t=warmup_t,
                                       warmup_lr_init=warmup_lr, lr_min=min_lr, mode=plateau_mode)
    elif sched == "poly":
        scheduler = PolyLRScheduler(optimizer, t_initial, power=decay_rate, lr_min=min_lr,
                                    t_in_epochs=step_on_epochs, k_decay=k_decay, **cycles, **warmup)
    elif sched in ("wsd", "rsqrt"):
        t_sched = t_initial if warmup_prefix else t_initial - warmup_t
        if 0 < decay_epochs < 1:
            decay_t = decay_epochs * t_sched
        decay_t = round(decay_t)
        if not 0 < decay_t <= t_sched:
            raise ValueError(f"decay_epochs={decay_epochs!r} is invalid for {sched}: expected 0 < decay <= "
                             f"{t_sched}, the stable + decay length")
        scheduler = WSDLRScheduler(optimizer, t_sched, decay_t, lr_min=min_lr,
                                   stable_fn="rsqrt" if sched == "rsqrt" else "constant", stable_timescale=timescale_t,
                                   decay_fn=decay_fn or ("linear" if sched == "rsqrt" else "1-sqrt"),
                                   t_in_epochs=step_on_epochs, warmup_t=warmup_t, warmup_lr_init=warmup_lr)
    if isinstance(scheduler, (_CycleScheduler, WSDLRScheduler)):
        total = scheduler.get_cycle_length() + cooldown_t
        num_epochs = total if step_on_epochs else total // updates_per_epoch
    elif warmup_prefix:
        num_epochs += warmup_epochs
    return scheduler, num_epochs

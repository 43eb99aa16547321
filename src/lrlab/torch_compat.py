"""Drop-in replacements for ``torch.optim.lr_scheduler``'s classes, computed in closed form.

Every class here has torch's name and constructor arguments (names, order, defaults) and gives the same LR
(and momentum) sequence as torch's class, to float rounding. Each is a thin constructor on top of
:class:`~lrlab.adapter.ScheduledLR`: it checks its arguments, then builds one pure schedule per param group
(:mod:`lrlab.schedules`, absolute LR values), momentum schedules for ``cycle_momentum``, or a
:class:`~lrlab.controllers.Plateau` controller for :class:`ReduceLROnPlateau`. The schedules are exposed as
``scheduler.schedules`` (one per group), ``scheduler.momentum_schedules`` and ``scheduler.controller``, so
:class:`SequentialLR` and :class:`ChainedScheduler` compose their children's *schedules* instead of stepping
stateful children. Consequences:

- the LR after ``t`` steps is a formula of ``t``: no drift over millions of steps, and ``state_dict()`` is
  the step count plus plateau state (plain numbers, loadable with ``torch.load(weights_only=True)``);
- ``step(metrics=None)``: the optional argument is a metric for a plateau controller. Torch's deprecated
  ``step(epoch)`` is not supported (use ``last_epoch`` or ``load_state_dict`` to resume).

Where torch is wrong, lrlab does the right thing (each difference is tested in ``tests/test_torch_compat.py``):

- :class:`OneCycleLR` stays at its minimum from step ``total_steps`` on (torch climbs back up at
  ``total_steps``, then raises), and a warm-up phase of zero steps (``pct_start * total_steps == 1``) starts
  at the peak (torch raises ``ZeroDivisionError``);
- :class:`ConstantLR` accepts ``factor=0`` (torch divides by zero at ``total_iters``) and ``total_iters=0``
  means no step at the factor (torch applies the factor forever);
- :class:`SequentialLR` accepts :class:`ReduceLROnPlateau` children, resumes correctly from ``last_epoch``
  and nests (torch: wrong curve, and nested composites are off by a step or raise);
- :class:`ChainedScheduler` accepts any child, ReduceLROnPlateau included: its LR is always the product of
  the children's factors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from torch.optim import Optimizer

from lrlab.adapter import ScheduledLR, initial_lrs, momentum_key
from lrlab.controllers import Plateau
from lrlab.schedules import (
    Anneal,
    Constant,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    Function,
    Join,
    Multiplicative,
    MultiStep,
    OneCycle,
    OneCycleMomentum,
    Polynomial,
    Schedule,
    Step,
)
from lrlab.schedules._base import check_choice, check_int, check_nonneg, check_positive, check_range
from lrlab.schedules.cyclic import ANNEAL_STRATEGIES, CYCLIC_MODES

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]


# --- argument checks shared by the classes ---------------------------------------------------------------

def _num_groups(optimizer: Optimizer) -> int:
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer={type(optimizer).__name__} is invalid: expected a torch.optim.Optimizer")
    return len(optimizer.param_groups)


def _base_lrs(optimizer: Optimizer, last_epoch: int) -> list[float]:
    """Each group's ``initial_lr`` (set from its ``lr`` when starting fresh, as torch does)."""
    _num_groups(optimizer)
    check_int("last_epoch", last_epoch, -1)
    return initial_lrs(optimizer, last_epoch)


def _per_group(name: str, value: float | Sequence[float], num_groups: int,
               check: Callable[[str, float], None] = check_nonneg) -> list[float]:
    """A number for every group, from one number or a list of one per group (torch's ``float or list``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_groups:
            raise ValueError(f"{name}={list(value)!r} is invalid: expected a number or a list of {num_groups} "
                             "numbers (one per param group)")
        values = list(value)
    else:
        values = [value] * num_groups
    for v in values:
        check(name, v)
    return [float(v) for v in values]


def _per_group_fns(name: str, value: Callable[[int], float] | Sequence[Callable[[int], float]],
                   num_groups: int) -> list[Callable[[int], float]]:
    fns = list(value) if isinstance(value, (list, tuple)) else [value] * num_groups
    if len(fns) != num_groups or not all(callable(f) for f in fns):
        raise ValueError(f"{name}={value!r} is invalid: expected a callable epoch -> factor, or a list of "
                         f"{num_groups} callables (one per param group)")
    return fns


def _check_steps(name: str, values: Iterable[int], minimum: int = 0) -> list[int]:
    """A list of integer steps ``>= minimum``."""
    steps = list(values) if isinstance(values, Iterable) else [values]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in steps):
        raise ValueError(f"{name}={steps!r} is invalid: expected a list of integers >= {minimum}")
    return steps


def _check_momentum(optimizer: Optimizer, cycle_momentum: bool) -> None:
    if cycle_momentum and "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(f"cycle_momentum=True is invalid for {type(optimizer).__name__}: expected an optimizer "
                         "with `momentum` or `betas` (or cycle_momentum=False)")


def _start_momentum(optimizer: Optimizer, base_momentums: list[float], max_momentums: list[float]) -> None:
    """Set the group keys torch's CyclicLR/OneCycleLR set: momentum (or beta1) at its max, and both bounds."""
    key = momentum_key(optimizer)
    for group, low, high in zip(optimizer.param_groups, base_momentums, max_momentums, strict=True):
        if key == "betas":
            group["betas"] = (high, *group["betas"][1:])
        else:
            group["momentum"] = high
        group["max_momentum"] = high
        group["base_momentum"] = low


# --- closed-form schedulers ------------------------------------------------------------------------------

class StepLR(ScheduledLR):
    """Decay each group's LR by ``gamma`` every ``step_size`` steps: ``base_lr * gamma ** (t // step_size)``.

    Same sequence as ``torch.optim.lr_scheduler.StepLR``. Example: ``step_size=2, gamma=0.1`` and base LR 1
    give 1, 1, 0.1, 0.1, 0.01, ...
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        check_int("step_size", step_size, 1)
        check_nonneg("gamma", gamma)
        bases = _base_lrs(optimizer, last_epoch)
        super().__init__(optimizer, [Step(b, step_size, gamma) for b in bases], last_epoch=last_epoch)


class MultiStepLR(ScheduledLR):
    """Decay each group's LR by ``gamma`` at each milestone: ``base_lr * gamma ** #{m in milestones: m <= t}``.

    Same sequence as ``torch.optim.lr_scheduler.MultiStepLR``; a milestone listed twice counts twice, and the
    milestones need not be sorted.
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        steps = tuple(_check_steps("milestones", milestones))
        check_nonneg("gamma", gamma)
        bases = _base_lrs(optimizer, last_epoch)
        super().__init__(optimizer, [MultiStep(b, steps, gamma) for b in bases], last_epoch=last_epoch)


class ConstantLR(ScheduledLR):
    """``base_lr * factor`` for the first ``total_iters`` steps, then ``base_lr``.

    Same sequence as ``torch.optim.lr_scheduler.ConstantLR``, except where torch fails: ``factor=0`` works
    (torch divides by zero at ``total_iters``), and ``total_iters=0`` gives ``base_lr`` from the start
    (torch applies the factor forever, against its own closed form).
    """

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        check_range("factor", factor, 0.0, 1.0)
        check_int("total_iters", total_iters, 0)
        bases = _base_lrs(optimizer, last_epoch)
        schedules = [Join((Constant(b * factor), Constant(b)), (total_iters,)) for b in bases]
        super().__init__(optimizer, schedules, last_epoch=last_epoch)


class LinearLR(ScheduledLR):
    """Ramp each group's LR linearly from ``base_lr * start_factor`` to ``base_lr * end_factor`` in ``total_iters``.

    ``base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)``: the same
    sequence as ``torch.optim.lr_scheduler.LinearLR``.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        check_range("start_factor", start_factor, 0.0, 1.0, low_open=True)
        check_range("end_factor", end_factor, 0.0, 1.0)
        check_int("total_iters", total_iters, 1)
        bases = _base_lrs(optimizer, last_epoch)
        schedules = [Anneal(b * start_factor, b * end_factor, total_iters, "linear") for b in bases]
        super().__init__(optimizer, schedules, last_epoch=last_epoch)


class ExponentialLR(ScheduledLR):
    """``base_lr * gamma ** t``: the same sequence as ``torch.optim.lr_scheduler.ExponentialLR``, without its drift."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        check_positive("gamma", gamma)
        bases = _base_lrs(optimizer, last_epoch)
        super().__init__(optimizer, [Exponential(b, gamma) for b in bases], last_epoch=last_epoch)


class PolynomialLR(ScheduledLR):
    """``base_lr * (1 - min(t, total_iters) / total_iters) ** power``: 0 from ``total_iters`` on.

    Same sequence as ``torch.optim.lr_scheduler.PolynomialLR``.
    """

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        check_int("total_iters", total_iters, 1)
        check_nonneg("power", power)
        bases = _base_lrs(optimizer, last_epoch)
        schedules = [Polynomial(b, 0.0, total_iters, power) for b in bases]
        super().__init__(optimizer, schedules, last_epoch=last_epoch)


class CosineAnnealingLR(ScheduledLR):
    """``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``, a cosine wave of period ``2 * T_max``.

    Same sequence as ``torch.optim.lr_scheduler.CosineAnnealingLR``, which (computed recursively) keeps
    following the cosine back up after ``T_max``; lrlab computes the closed form, so it does not drift.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        check_int("T_max", T_max, 1)
        check_nonneg("eta_min", eta_min)
        bases = _base_lrs(optimizer, last_epoch)
        schedules = [Cosine(b, eta_min, T_max, cyclic=True) for b in bases]
        super().__init__(optimizer, schedules, last_epoch=last_epoch)


class CosineAnnealingWarmRestarts(ScheduledLR):
    """Cosine annealing with warm restarts (SGDR): cycle ``i`` lasts ``T_0 * T_mult ** i`` steps.

    Within a cycle, ``eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``. Same sequence as
    ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` stepped without arguments; its fractional
    ``step(epoch)`` is not supported.
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        check_int("T_0", T_0, 1)
        check_int("T_mult", T_mult, 1)
        check_nonneg("eta_min", eta_min)
        bases = _base_lrs(optimizer, last_epoch)
        schedules = [CosineRestarts(b, eta_min, T_0, float(T_mult)) for b in bases]
        super().__init__(optimizer, schedules, last_epoch=last_epoch)


class CyclicLR(ScheduledLR):
    """Cyclical learning rate (Smith 2017) between ``base_lr`` and ``max_lr``; momentum cycles the other way.

    With ``cycle = floor(1 + t / (up + down))`` and ``x`` the position in the cycle, the LR is
    ``base_lr + (max_lr - base_lr) * height(x) * scale``, where ``height`` rises 0 to 1 over ``step_size_up``
    steps and falls back over ``step_size_down``, and ``scale`` is 1 (``triangular``), ``1 / 2 ** (cycle - 1)``
    (``triangular2``), ``gamma ** t`` (``exp_range``) or ``scale_fn(cycle or t)``. With ``cycle_momentum`` the
    momentum (or Adam's beta1) is ``max_momentum - (max_momentum - base_momentum) * height(x) * scale``.
    Same sequence and param group keys as ``torch.optim.lr_scheduler.CyclicLR``; ``scale_fn`` must be a pure
    function (it is not saved in ``state_dict``).
    """

    def __init__(self, optimizer: Optimizer, base_lr: float | list[float], max_lr: float | list[float],
                 step_size_up: int = 2000, step_size_down: int | None = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Callable[[float], float] | None = None, scale_mode: str = "cycle",
                 cycle_momentum: bool = True, base_momentum: float | list[float] = 0.8,
                 max_momentum: float | list[float] = 0.9, last_epoch: int = -1) -> None:
        n = _num_groups(optimizer)
        check_int("last_epoch", last_epoch, -1)
        base_lrs = _per_group("base_lr", base_lr, n)
        max_lrs = _per_group("max_lr", max_lr, n)
        check_int("step_size_up", step_size_up, 1)
        if step_size_down is not None:
            check_int("step_size_down", step_size_down, 0)
        if scale_fn is None:
            check_choice("mode", mode, CYCLIC_MODES)
        elif not callable(scale_fn):
            raise ValueError(f"scale_fn={scale_fn!r} is invalid: expected None or a callable x -> scale")
        check_positive("gamma", gamma)
        check_choice("scale_mode", scale_mode, ("cycle", "iterations"))
        _check_momentum(optimizer, cycle_momentum)
        base_ms = _per_group("base_momentum", base_momentum, n)
        max_ms = _per_group("max_momentum", max_momentum, n)

        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = lr
            if cycle_momentum:
                _start_momentum(optimizer, base_ms, max_ms)
        shape = {"step_size_up": step_size_up, "step_size_down": step_size_down, "gamma": gamma,
                 "mode": mode if scale_fn is None else "triangular", "scale_fn": scale_fn, "scale_mode": scale_mode}
        schedules = [Cyclic(lo, hi, **shape) for lo, hi in zip(base_lrs, max_lrs, strict=True)]
        momentum = [Cyclic(lo, hi, **shape, descending=True) for lo, hi in zip(base_ms, max_ms, strict=True)]
        super().__init__(optimizer, schedules, momentum=momentum if cycle_momentum else None, last_epoch=last_epoch)
        self.base_lrs = base_lrs  # as torch: the cycle's lower bounds, not the groups' initial_lr


class OneCycleLR(ScheduledLR):
    """The 1cycle policy (Smith & Topin 2018): warm up to ``max_lr``, then anneal far below the start.

    The LR rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start * total_steps`` steps,
    then anneals (``cos`` or ``linear``) to ``max_lr / div_factor / final_div_factor`` at step
    ``total_steps - 1``; ``three_phase`` comes back to the initial LR first. Momentum (or Adam's beta1)
    cycles between ``max_momentum`` and ``base_momentum`` the other way. Same sequence and param group keys
    (``initial_lr``, ``max_lr``, ``min_lr``, ``max_momentum``, ``base_momentum``) as
    ``torch.optim.lr_scheduler.OneCycleLR`` for steps ``0 .. total_steps - 1``. Differences: from step
    ``total_steps`` on the LR stays at its minimum (torch climbs back up at ``total_steps``, then raises),
    and when ``pct_start * total_steps == 1`` the warm-up has zero steps and step 0 is at the peak (torch
    raises ``ZeroDivisionError``).
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85, max_momentum: float | list[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        n = _num_groups(optimizer)
        check_int("last_epoch", last_epoch, -1)
        max_lrs = _per_group("max_lr", max_lr, n)
        if total_steps is not None:
            check_int("total_steps", total_steps, 1)
        elif epochs is None or steps_per_epoch is None:
            raise ValueError("total_steps=None is invalid: expected an integer >= 1, or both epochs and "
                             "steps_per_epoch")
        else:
            check_int("epochs", epochs, 1)
            check_int("steps_per_epoch", steps_per_epoch, 1)
            total_steps = epochs * steps_per_epoch
        check_range("pct_start", pct_start, 0.0, 1.0)
        check_choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)
        check_positive("div_factor", div_factor)
        check_positive("final_div_factor", final_div_factor)
        _check_momentum(optimizer, cycle_momentum)
        in_unit = lambda name, value: check_range(name, value, 0.0, 1.0)  # noqa: E731
        base_ms = _per_group("base_momentum", base_momentum, n, in_unit)
        max_ms = _per_group("max_momentum", max_momentum, n, in_unit)

        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs, strict=True):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
            if cycle_momentum:
                _start_momentum(optimizer, base_ms, max_ms)
        phases = {"total_steps": total_steps, "pct_start": pct_start, "anneal_strategy": anneal_strategy,
                  "three_phase": three_phase}
        schedules = [OneCycle(peak, div_factor=div_factor, final_div_factor=final_div_factor, **phases)
                     for peak in max_lrs]
        momentum = [OneCycleMomentum(base_momentum=lo, max_momentum=hi, **phases)
                    for lo, hi in zip(base_ms, max_ms, strict=True)]
        super().__init__(optimizer, schedules, momentum=momentum if cycle_momentum else None, last_epoch=last_epoch)
        self.total_steps = total_steps


class ReduceLROnPlateau(ScheduledLR):
    """Cut each group's LR by ``factor`` once a metric stops improving for ``patience`` calls of ``step(metrics)``.

    A :class:`~lrlab.controllers.Plateau` controller on a constant schedule (each group's ``initial_lr``,
    which is its ``lr`` unless a scheduler set it before): the LR is ``initial_lr * scale``, and
    ``step(metrics)`` updates ``scale`` with torch's rules (``mode``, ``threshold``/``threshold_mode``
    compared to the best value so far, ``cooldown``, ``min_lr`` floor per group, cuts smaller than ``eps``
    skipped). Same sequence as ``torch.optim.lr_scheduler.ReduceLROnPlateau``, including torch's ``rel``
    threshold for negative metrics. Unlike torch it can be a child of :class:`SequentialLR` and
    :class:`ChainedScheduler`, and ``step()`` without a metric only counts a step.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | list[float] = 0, eps: float = 1e-8) -> None:
        n = _num_groups(optimizer)
        controller = Plateau(mode, factor, patience, threshold, threshold_mode, cooldown,
                             list(min_lr) if isinstance(min_lr, (list, tuple)) else min_lr, eps)
        controller.bind(n)
        bases = _base_lrs(optimizer, -1)
        super().__init__(optimizer, [Constant(b) for b in bases], controller=controller)

    @property
    def best(self) -> float:
        """The best metric seen so far."""
        return self._plateau.best

    @property
    def num_bad_epochs(self) -> int:
        """Observations since the last improvement (reset by a cut and during cooldown)."""
        return self._plateau.num_bad_epochs

    @property
    def cooldown_counter(self) -> int:
        """Observations left before bad epochs count again."""
        return self._plateau.cooldown_counter

    @property
    def in_cooldown(self) -> bool:
        """Whether the controller is cooling down after a cut."""
        return self._plateau.cooldown_counter > 0

    @property
    def _plateau(self) -> Plateau:
        assert self.controller is not None
        return self.controller


class LambdaLR(ScheduledLR):
    """``base_lr * lr_lambda(t)`` per group: the same sequence as ``torch.optim.lr_scheduler.LambdaLR``.

    ``lr_lambda`` (one callable, or one per group) must be a pure function of the step. It is not saved in
    ``state_dict`` (torch saves the ``__dict__`` of callable objects; lrlab's state stays plain numbers, so
    ``torch.load(weights_only=True)`` can read it).
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        self.lr_lambdas = _per_group_fns("lr_lambda", lr_lambda, _num_groups(optimizer))
        bases = _base_lrs(optimizer, last_epoch)
        schedules = [Function(fn, b) for fn, b in zip(self.lr_lambdas, bases, strict=True)]
        super().__init__(optimizer, schedules, last_epoch=last_epoch)


class MultiplicativeLR(ScheduledLR):
    """``base_lr * lr_lambda(1) * ... * lr_lambda(t)`` per group (``MultiplicativeLR``), as a prefix product.

    Same sequence as ``torch.optim.lr_scheduler.MultiplicativeLR``; ``lr_lambda`` must be a pure function of
    the step and is not saved in ``state_dict`` (see :class:`LambdaLR`).
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        self.lr_lambdas = _per_group_fns("lr_lambda", lr_lambda, _num_groups(optimizer))
        bases = _base_lrs(optimizer, last_epoch)
        schedules = [Multiplicative(fn, b) for fn, b in zip(self.lr_lambdas, bases, strict=True)]
        super().__init__(optimizer, schedules, last_epoch=last_epoch)


# --- composites: children's schedules composed, plateau controllers routed -------------------------------

def _absolute_schedules(child: ScheduledLR) -> list[Schedule]:
    """A child's per-group schedules as absolute LRs (a ``relative=True`` child's factors times its base LRs)."""
    if child.relative:
        return [s * b for s, b in zip(child.schedules, child.base_lrs, strict=True)]
    return list(child.schedules)


class _PlateauLeaf:
    """A child's :class:`Plateau`, seen at the child's own steps with the child's own schedule."""

    def __init__(self, plateau: Plateau, schedules: list[Schedule]) -> None:
        self.plateau, self.schedules = plateau, schedules

    def scales_at(self, step: int) -> list[float]:
        return list(self.plateau.scales)

    def observe(self, metric: float, step: int) -> bool:
        return self.plateau.observe(metric, step, [s(step) for s in self.schedules])

    def state_dict(self) -> Any:
        return self.plateau.state_dict()

    def load_state_dict(self, state: Any) -> None:
        self.plateau.load_state_dict(state)


class _PlateauSegments:
    """The controllers of a :class:`SequentialLR`'s children: the one whose segment holds the step is active."""

    def __init__(self, parts: list[Any], milestones: list[int], num_groups: int) -> None:
        self.parts, self.milestones, self.num_groups = parts, milestones, num_groups

    def _active(self, step: int) -> tuple[Any, int]:
        i = sum(m <= step for m in self.milestones)
        return self.parts[i], step - (self.milestones[i - 1] if i else 0)

    def scales_at(self, step: int) -> list[float]:
        part, local = self._active(step)
        return [1.0] * self.num_groups if part is None else part.scales_at(local)

    def observe(self, metric: float, step: int) -> bool:
        part, local = self._active(step)
        return False if part is None else part.observe(metric, local)

    def state_dict(self) -> Any:
        return [None if p is None else p.state_dict() for p in self.parts]

    def load_state_dict(self, state: Any) -> None:
        for part, s in zip(self.parts, state, strict=True):
            if part is not None:
                part.load_state_dict(s)


class _PlateauProduct:
    """The controllers of a :class:`ChainedScheduler`'s children: all observe, their scales multiply."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts

    def scales_at(self, step: int) -> list[float]:
        scales = self.parts[0].scales_at(step)
        for part in self.parts[1:]:
            scales = [a * b for a, b in zip(scales, part.scales_at(step), strict=True)]
        return scales

    def observe(self, metric: float, step: int) -> bool:
        return any([part.observe(metric, step) for part in self.parts])  # every part observes

    def state_dict(self) -> Any:
        return [p.state_dict() for p in self.parts]

    def load_state_dict(self, state: Any) -> None:
        for part, s in zip(self.parts, state, strict=True):
            part.load_state_dict(s)


def _plateaus_of(child: ScheduledLR) -> Any:
    """The child's controllers as a node (``scales_at``/``observe``/``state_dict``), or None if it has none."""
    if isinstance(child, _ComposedLR):
        return child.plateaus
    if child.controller is not None:
        return _PlateauLeaf(child.controller, _absolute_schedules(child))
    return None


def _check_children(schedulers: Sequence[ScheduledLR], optimizer: Optimizer | None) -> Optimizer:
    """Check the children of a composite; return their (common) optimizer."""
    if not isinstance(schedulers, (list, tuple)) or not schedulers:
        raise ValueError(f"schedulers={schedulers!r} is invalid: expected a non-empty list of schedulers")
    for i, child in enumerate(schedulers):
        if not isinstance(child, ScheduledLR):
            raise ValueError(f"schedulers[{i}]={type(child).__name__} is invalid: expected an lrlab scheduler "
                             "(lrlab.torch_compat or ScheduledLR); torch's own cannot be composed in closed form")
    optimizer = schedulers[0].optimizer if optimizer is None else optimizer
    _num_groups(optimizer)
    for i, child in enumerate(schedulers):
        if child.optimizer is not optimizer:
            raise ValueError(f"schedulers[{i}]={type(child).__name__} is invalid: expected a scheduler of the same "
                             "optimizer as the others")
    return optimizer


class _ComposedLR(ScheduledLR):
    """A :class:`ScheduledLR` whose LR is ``schedule(t) * plateaus.scales_at(t)``, plateaus being the children's."""

    def __init__(self, optimizer: Optimizer, schedules: list[Schedule], momentum: list[Schedule] | None,
                 plateaus: Any, last_epoch: int) -> None:
        self.plateaus = plateaus
        super().__init__(optimizer, schedules, momentum=momentum, last_epoch=last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The LR of each group at the current step: the composed schedule times the active controllers' scales."""
        lrs = self.uncontrolled_lrs()
        if self.plateaus is not None:
            lrs = [lr * s for lr, s in zip(lrs, self.plateaus.scales_at(self.last_epoch), strict=True)]
        return lrs

    def observe(self, metric: Any) -> bool:
        """Feed one metric to the children's controllers (see the class docstring); return whether one cut."""
        if self.plateaus is None:
            raise ValueError(f"metrics were given but no child of this {type(self).__name__} has a controller "
                             "(e.g. ReduceLROnPlateau)")
        reduced = self.plateaus.observe(float(metric), max(self.last_epoch, 0))
        if reduced:
            self._apply()
        return reduced

    def state_dict(self) -> dict[str, Any]:
        """The step count and the children's controller states (plain numbers)."""
        state = super().state_dict()
        state["plateaus"] = None if self.plateaus is None else self.plateaus.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` and set the optimizer's LRs for the restored step."""
        if self.plateaus is not None and state_dict.get("plateaus") is not None:
            self.plateaus.load_state_dict(state_dict["plateaus"])
        super().load_state_dict(state_dict)


def _sequential_momentum(optimizer: Optimizer, children: Sequence[ScheduledLR],
                         milestones: list[int]) -> list[Schedule] | None:
    """Per group, the children's momentum schedules joined; a child without one holds the last value."""
    if all(c.momentum_schedules is None for c in children):
        return None
    key = momentum_key(optimizer)
    starts, ends = [0, *milestones], [*milestones, None]
    joined = []
    for g, group in enumerate(optimizer.param_groups):
        held = float(group["betas"][0] if key == "betas" else group["momentum"])
        pieces: list[Schedule] = []
        for child, start, end in zip(children, starts, ends, strict=True):
            if child.momentum_schedules is None:
                pieces.append(Constant(held))
                continue
            pieces.append(child.momentum_schedules[g])
            if end is not None and end > start:
                held = pieces[-1](end - start - 1)
        joined.append(Join(tuple(pieces), tuple(milestones)))
    return joined


class SequentialLR(_ComposedLR):
    """One child after another: child ``i`` drives the LR from ``milestones[i - 1]``, from its own step 0.

    Per group the LR is ``Join(children's schedules, milestones)``: at step ``t`` in segment ``i``,
    ``child_i(t - milestones[i - 1])``. This is what torch's SequentialLR does for closed-form children;
    the same sequence as torch for children StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR,
    PolynomialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, LambdaLR, CyclicLR, and also
    MultiplicativeLR or OneCycleLR as first child. Elsewhere torch's recursion gives other values (a
    MultiplicativeLR child continues from the previous segment's LR; OneCycleLR overwrites ``initial_lr``,
    from which torch restarts the first child); lrlab keeps each child's own curve. The children were
    constructed (and wrote the LRs): construction resets the LRs for the composite's step.

    Momentum: if a child schedules momentum (CyclicLR, OneCycleLR with ``cycle_momentum``), it drives it in
    its segment; a segment whose child does not keeps the last value, as torch does.

    Differences from torch: ``last_epoch`` resumes at the right step (torch restarts the first child and then
    resumes the active one from its step 0); a SequentialLR or ChainedScheduler child works at any position
    (torch shifts it by one step as first child and raises ``NotImplementedError`` elsewhere); and
    ReduceLROnPlateau children are accepted (torch rejects them): in its segment the LR is the child's base
    LR times its controller's scale. ``step(metrics)`` feeds the metric to the controller of the child whose
    segment holds the current step (``last_epoch``, the step whose LR was just used), then steps; in a
    segment whose child has no controller the metric is ignored (so ``step(val_loss)`` can be called every
    epoch, warmup included). It raises ``ValueError`` if no child has a controller.
    """

    def __init__(self, optimizer: Optimizer, schedulers: list[ScheduledLR], milestones: list[int],
                 last_epoch: int = -1) -> None:
        optimizer = _check_children(schedulers, optimizer)
        milestones = _check_steps("milestones", milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones={milestones!r} is invalid: expected {len(schedulers) - 1} milestones for "
                             f"{len(schedulers)} schedulers")
        if milestones != sorted(milestones):
            raise ValueError(f"milestones={milestones!r} is invalid: expected non-decreasing steps")
        check_int("last_epoch", last_epoch, -1)
        n = len(optimizer.param_groups)
        per_child = [_absolute_schedules(c) for c in schedulers]
        schedules = [Join(tuple(s[g] for s in per_child), tuple(milestones)) for g in range(n)]
        parts = [_plateaus_of(c) for c in schedulers]
        plateaus = _PlateauSegments(parts, milestones, n) if any(p is not None for p in parts) else None
        self._schedulers, self._milestones = list(schedulers), milestones
        momentum = _sequential_momentum(optimizer, schedulers, milestones)
        super().__init__(optimizer, schedules, momentum, plateaus, last_epoch)


class ChainedScheduler(_ComposedLR):
    """All children at once: per group, ``base_lr * prod_i(child_i(t) / child_i.base_lr)``.

    ``base_lr`` is the group's ``initial_lr``. This is what torch's ChainedScheduler computes when each child
    multiplies the LR by a ratio of its own closed form: the same sequence as torch for children StepLR,
    MultiStepLR, ExponentialLR, ConstantLR (``total_iters >= 1``), LinearLR, PolynomialLR, MultiplicativeLR,
    and CosineAnnealingLR with ``eta_min=0`` up to step ``T_max`` (after it torch adds an unscaled
    ``base_lr * (1 - cos(pi / T_max)) / 2``). For children whose torch recursion is not a ratio
    (LambdaLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR, CosineAnnealingLR with ``eta_min > 0``)
    torch's result depends on the order of the children; lrlab's is always the product of factors.
    Momentum follows the last child that schedules it (as the last such child's ``step`` wins in torch).

    ReduceLROnPlateau children are accepted (torch rejects them): their scale multiplies the LR, and their
    ``min_lr`` bounds their own factor (``base_lr * scale >= min_lr``). ``step(metrics)`` feeds the metric to
    every child with a controller, then steps; it raises ``ValueError`` if no child has one.
    """

    def __init__(self, schedulers: Sequence[ScheduledLR], optimizer: Optimizer | None = None) -> None:
        optimizer = _check_children(schedulers, optimizer)
        bases = _base_lrs(optimizer, -1)
        schedules = []
        for g, base in enumerate(bases):
            chain: Schedule = Constant(0.0)
            if base != 0.0:
                chain = Constant(base)
                for i, child in enumerate(schedulers):
                    child_base = child.base_lrs[g]
                    if child_base == 0.0:
                        raise ValueError(f"schedulers[{i}]={type(child).__name__} is invalid: its base LR in "
                                         f"param group {g} is 0, so its factor (value / base LR) is undefined")
                    chain = chain * (_absolute_schedules(child)[g] * (1.0 / child_base))
            schedules.append(chain)
        parts = [p for p in map(_plateaus_of, schedulers) if p is not None]
        with_momentum = [c for c in schedulers if c.momentum_schedules is not None]
        momentum = with_momentum[-1].momentum_schedules if with_momentum else None
        self._schedulers = list(schedulers)
        super().__init__(optimizer, schedules, momentum, _PlateauProduct(parts) if parts else None, -1)


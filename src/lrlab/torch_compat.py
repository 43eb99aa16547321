"""Drop-in replacements for ``torch.optim.lr_scheduler``'s classes, computed in closed form.

Every class here has torch's name, constructor arguments (names, order, defaults), public attributes and
``state_dict`` keys, and gives the same LR (and momentum) sequence as torch's class, to float rounding. A
class keeps torch's hyper-parameters as attributes and computes the LR of step ``t`` from them with a pure
schedule of :mod:`lrlab.schedules` (``scheduler.schedules``, one per param group, absolute LR values), so
there is no recursion and no drift; ``scheduler.controller`` is the :class:`~lrlab.controllers.Plateau` of
:class:`ReduceLROnPlateau`. :class:`SequentialLR` and :class:`ChainedScheduler` compose their children's
*schedules* and set their children's ``last_epoch``/``get_last_lr()`` as torch's stepping would.

Around the sequence, the API behaves as torch's (the README's "Differences from torch" table lists the rest):

- several schedulers stepped on one optimizer multiply their factors, in any order: the LR of a group is the
  first scheduler's LR times ``lr_i(t_i) / base_lr_i`` of each other one, as torch's chainable classes give.
  Where torch's class does not scale the LR by a ratio (LambdaLR, CyclicLR, OneCycleLR,
  CosineAnnealingWarmRestarts, CosineAnnealingLR with ``eta_min > 0`` or past ``T_max``) torch's result
  depends on the stepping order; lrlab keeps the product and warns once per optimizer;
- ``step(epoch)`` is torch's deprecated form (same warning): the LR is the closed form at ``epoch``;
  :class:`CosineAnnealingWarmRestarts` takes fractional epochs;
- a tensor ``group["lr"]`` stays a tensor (filled in place), and 0-d tensors are accepted wherever torch
  takes a number;
- the order warnings (``lr_scheduler.step()`` before ``optimizer.step()``, ``optimizer.step()`` overridden)
  are torch's.

Where torch is wrong, lrlab does the right thing (each difference is tested in ``tests/test_torch_compat.py``):
:class:`OneCycleLR` stays at its minimum from ``total_steps`` on and accepts a zero-step warm-up;
:class:`ConstantLR` accepts ``factor=0`` and ``total_iters=0``; :class:`SequentialLR` resumes from
``last_epoch``, nests, and accepts :class:`ReduceLROnPlateau` children, as :class:`ChainedScheduler` does.
"""

from __future__ import annotations

import math
import types
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, SupportsFloat

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import EPOCH_DEPRECATION_WARNING, LRScheduler, _initial_mode

from lrlab.adapter import ScheduledLR
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
from lrlab.schedules.checks import check_choice, check_finite, check_int, check_nonneg, check_positive, check_range
from lrlab.schedules.cyclic import ANNEAL_STRATEGIES, CYCLIC_MODES, one_cycle_phases

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


class ArgumentTypeError(ValueError, TypeError):
    """An argument of the wrong type: a ``ValueError`` as lrlab's checks raise, and the ``TypeError`` torch raises."""


# --- argument checks shared by the classes ---------------------------------------------------------------

def _num_groups(optimizer: Optimizer) -> int:
    if not isinstance(optimizer, Optimizer):
        raise ArgumentTypeError(f"optimizer={type(optimizer).__name__} is invalid: expected a torch.optim.Optimizer")
    return len(optimizer.param_groups)


def _number(value: Any) -> Any:
    """A 0-d tensor as a Python float (torch accepts them for every number); anything else unchanged."""
    return float(value) if isinstance(value, Tensor) and value.dim() == 0 else value


def _per_group(name: str, value: Any, num_groups: int,
               check: Callable[[str, float], None] = check_nonneg) -> list[float]:
    """A number for every group, from one number or a list of one per group (torch's ``float or list``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_groups:
            raise ValueError(f"{name}={list(value)!r} is invalid: expected a number or a list of {num_groups} "
                             "numbers (one per param group)")
        values = [_number(v) for v in value]
    else:
        values = [_number(value)] * num_groups
    for v in values:
        check(name, v)
    return [float(v) for v in values]


def _per_group_fns(name: str, value: Any, num_groups: int) -> list[Callable[[int], float]]:
    fns = list(value) if isinstance(value, (list, tuple)) else [value] * num_groups
    if len(fns) != num_groups or not all(callable(f) for f in fns):
        raise ArgumentTypeError(f"{name}={value!r} is invalid: expected a callable epoch -> factor, or a list of "
                                f"{num_groups} callables (one per param group): {name} should be a function")
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


# --- writing into param groups, as torch does ------------------------------------------------------------

def _set(group: dict[str, Any], key: str, value: float) -> None:
    """``group[key] = value``, filling a tensor in place (torch keeps tensor LRs tensors)."""
    if isinstance(group.get(key), Tensor):
        group[key].fill_(value)
    else:
        group[key] = value


def _set_momentum(group: dict[str, Any], value: float) -> None:
    if "betas" in group:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


def _copies(optimizer: Optimizer, key: str) -> list[Any]:
    """Every group's ``key``, tensors cloned (torch's ``get_last_lr`` never aliases the groups)."""
    return [g[key].clone() if isinstance(g[key], Tensor) else g[key] for g in optimizer.param_groups]


def _warn_order(scheduler: LRScheduler) -> None:
    """Torch's two warnings at the first ``step()``: called before ``optimizer.step()``, or that step replaced."""
    if scheduler._step_count != 1:
        return
    if not hasattr(scheduler.optimizer.step, "_wrapped_by_lr_sched"):
        warnings.warn("Seems like `optimizer.step()` has been overridden after learning rate scheduler "
                      "initialization. Please, make sure to call `optimizer.step()` before `lr_scheduler.step()`. "
                      "See more details at https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate",
                      UserWarning, stacklevel=3)
    elif not getattr(scheduler.optimizer, "_opt_called", False):
        warnings.warn("Detected call of `lr_scheduler.step()` before `optimizer.step()`. In PyTorch 1.1.0 and "
                      "later, you should call them in the opposite order: `optimizer.step()` before "
                      "`lr_scheduler.step()`.  Failure to do this will result in PyTorch skipping the first value "
                      "of the learning rate schedule. See more details at "
                      "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate",
                      UserWarning, stacklevel=3)


# --- schedulers sharing one optimizer: their factors multiply --------------------------------------------

class _Drivers:
    """The lrlab schedulers driving one optimizer (weak references, construction order)."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[_DropIn]] = []
        self.warned = False

    def live(self) -> list[_DropIn]:
        self.refs = [r for r in self.refs if r() is not None]
        return [s for s in (r() for r in self.refs) if s is not None]


_DRIVERS: weakref.WeakKeyDictionary[Optimizer, _Drivers] = weakref.WeakKeyDictionary()


def _drivers(optimizer: Optimizer) -> _Drivers:
    return _DRIVERS.setdefault(optimizer, _Drivers())


def _chain(drivers: Sequence[_DropIn], unscaled: _DropIn | None = None) -> list[float]:
    """Each group's LR: the first driver's LR times every other driver's factor (``unscaled``: no controller)."""
    lrs = drivers[0].lr_values(drivers[0] is not unscaled)
    for d in drivers[1:]:
        values, bases = d.lr_values(d is not unscaled), d.chain_bases()
        lrs = [lr * (v / b if b else 0.0) for lr, v, b in zip(lrs, values, bases, strict=True)]
    return lrs


def _write(stepped: _DropIn) -> None:
    """Write the optimizer's LRs (all its drivers' product) and ``stepped``'s momentum; record its last LR."""
    if stepped._driven_by is not None:  # a composite's child: the composite writes
        return
    entry = _drivers(stepped.optimizer)
    drivers = entry.live() or [stepped]
    if len(drivers) > 1 and not entry.warned:
        odd = [type(d).__name__ for d in drivers if not d.torch_scales_by_ratio()]
        if odd:
            entry.warned = True
            names = ", ".join(type(d).__name__ for d in drivers)
            warnings.warn(f"{names} drive the same optimizer: lrlab multiplies their factors (LR = first LR x "
                          f"lr_i / base_lr_i of each other one), but torch's {', '.join(odd)} does not scale the LR "
                          "by a ratio, so torch's LRs would depend on the stepping order and differ from these. "
                          "Compose with lrlab's SequentialLR or ChainedScheduler to say what you mean.",
                          UserWarning, stacklevel=4)
    for group, lr in zip(stepped.optimizer.param_groups, _chain(drivers), strict=True):
        _set(group, "lr", lr)
    momentum = stepped.momentum_schedules
    if momentum is not None:
        for group, s in zip(stepped.optimizer.param_groups, momentum, strict=True):
            _set_momentum(group, s(stepped.last_epoch))
    stepped._last_lr = _copies(stepped.optimizer, "lr")


# --- the base of every drop-in class ---------------------------------------------------------------------

_NOT_STATE = frozenset({"optimizer", "_driven_by", "_cache", "_chain_base_lrs"})


class _DropIn(ScheduledLR):
    """A drop-in class: torch's attributes and state, LRs from ``schedules`` (built from the attributes)."""

    relative = False
    controller: Plateau | None = None
    _driven_by: Any = None  # weak reference to the composite that drives this scheduler

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        _num_groups(optimizer)
        check_int("last_epoch", last_epoch, -1)
        _drivers(optimizer).refs.append(weakref.ref(self))
        LRScheduler.__init__(self, optimizer, last_epoch)  # initial_lr, base_lrs, optimizer.step patch, first step

    def _schedule(self, group: int, base: float) -> Schedule:
        raise NotImplementedError

    @property
    def schedules(self) -> list[Schedule]:  # type: ignore[override]
        """One absolute LR schedule per param group, built from the current hyper-parameters."""
        return [self._schedule(g, float(b)) for g, b in enumerate(self.base_lrs)]

    @property
    def momentum_schedules(self) -> list[Schedule] | None:  # type: ignore[override]
        """One momentum (or beta1) schedule per group, or None if this class leaves momentum alone."""
        return None

    def lr_values(self, scaled: bool = True) -> list[float]:
        """This scheduler's own LR per group at ``last_epoch`` (``scaled``: times the controller's scales)."""
        lrs = [s(self.last_epoch) for s in self.schedules]
        if scaled and self.controller is not None:
            lrs = [lr * scale for lr, scale in zip(lrs, self.controller.scales, strict=True)]
        return lrs

    def chain_bases(self) -> list[float]:
        """The LR per group that this scheduler's factor is relative to when it shares the optimizer."""
        return [float(b) for b in self.base_lrs]

    def torch_scales_by_ratio(self) -> bool:
        """Whether torch's class multiplies the LR by ``lr(t) / lr(t - 1)`` now (then products match torch)."""
        return True

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """This scheduler's LR per group at the current step, in closed form (see :meth:`get_last_lr`)."""
        return self.lr_values()

    def _initial_step(self) -> None:
        self._step_count = 0
        with _initial_mode(self):
            self._advance(None)

    def step(self, epoch: int | None = None) -> None:  # type: ignore[override]
        """Advance one step (call after ``optimizer.step()``); ``epoch``: torch's deprecated jump to that step."""
        self._check_not_driven()
        _warn_order(self)
        self._advance(epoch)

    def _check_not_driven(self) -> None:
        if self._driven_by is not None and self._driven_by() is None:  # its composite is gone: drive again
            self._driven_by = None
            _drivers(self.optimizer).refs.append(weakref.ref(self))
        if self._driven_by is not None:
            raise ValueError(f"{type(self).__name__}.step() is invalid here: expected a step of the "
                             f"{type(self._driven_by()).__name__} that drives it")

    def _advance(self, epoch: Any) -> None:
        self._step_count += 1
        self._get_lr_called_within_step = False
        if epoch is None:
            self.last_epoch += 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=4)
            self._seek(epoch)
        _write(self)

    def _seek(self, epoch: Any) -> None:
        """Jump to ``epoch`` (``step(epoch)``): the closed form at that step."""
        check_int("epoch", epoch, 0)
        self.seek_step(epoch)

    def seek_step(self, step: int) -> None:
        """Set the step count (the LR of ``step`` is the closed form there); used by composites for children."""
        self.last_epoch = step

    def observe(self, metric: SupportsFloat) -> bool:
        """Feed the controller one metric (ReduceLROnPlateau); the new LR takes effect at once."""
        raise ValueError(f"metrics were given but {type(self).__name__} has no controller (e.g. ReduceLROnPlateau)")

    def state_dict(self) -> dict[str, Any]:
        """Torch's state: every attribute but the optimizer (plain numbers, lists, tensors for tensor LRs)."""
        return {k: v for k, v in self.__dict__.items() if k not in _NOT_STATE}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from this class's or torch's ``state_dict``.

        As in torch, the optimizer's LRs are left alone (they come back with the optimizer's own state); the
        next :meth:`step` writes the closed form of the restored step's successor.
        """
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in _NOT_STATE})


# --- closed-form schedulers ------------------------------------------------------------------------------

class StepLR(_DropIn):
    """Decay each group's LR by ``gamma`` every ``step_size`` steps: ``base_lr * gamma ** (t // step_size)``.

    Example: ``step_size=2, gamma=0.1`` and base LR 1 give 1, 1, 0.1, 0.1, 0.01, ...
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        check_int("step_size", step_size, 1)
        check_nonneg("gamma", gamma)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Step(base, self.step_size, self.gamma)


class MultiStepLR(_DropIn):
    """Decay each group's LR by ``gamma`` at each milestone: ``base_lr * gamma ** #{m in milestones: m <= t}``.

    A milestone listed twice counts twice, and the milestones need not be sorted (``milestones`` keeps
    torch's ``Counter`` of them).
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        from collections import Counter

        self.milestones = Counter(_check_steps("milestones", milestones))
        check_nonneg("gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return MultiStep(base, tuple(sorted(self.milestones.elements())), self.gamma)


class ConstantLR(_DropIn):
    """``base_lr * factor`` for the first ``total_iters`` steps, then ``base_lr``.

    Unlike torch: ``factor=0`` works (torch divides by zero at ``total_iters``), and ``total_iters=0`` gives
    ``base_lr`` from the start (torch applies the factor forever, against its own closed form).
    """

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        check_range("factor", factor, 0.0, 1.0)
        check_int("total_iters", total_iters, 0)
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Join((Constant(base * self.factor), Constant(base)), (self.total_iters,))


class LinearLR(_DropIn):
    """Ramp each group's LR linearly from ``base_lr * start_factor`` to ``base_lr * end_factor`` in ``total_iters``.

    ``base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)``.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        check_range("start_factor", start_factor, 0.0, 1.0, low_open=True)
        check_range("end_factor", end_factor, 0.0, 1.0)
        check_int("total_iters", total_iters, 1)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Anneal(base * self.start_factor, base * self.end_factor, self.total_iters, "linear")


class ExponentialLR(_DropIn):
    """``base_lr * gamma ** t``, without torch's drift."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        check_positive("gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Exponential(base, self.gamma)


class PolynomialLR(_DropIn):
    """``base_lr * (1 - min(t, total_iters) / total_iters) ** power``: 0 from ``total_iters`` on."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        check_int("total_iters", total_iters, 1)
        check_nonneg("power", power)
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Polynomial(base, 0.0, self.total_iters, self.power)


class CosineAnnealingLR(_DropIn):
    """``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``, a cosine wave of period ``2 * T_max``.

    Torch computes it recursively and keeps following the cosine back up after ``T_max``; lrlab computes the
    closed form, so it does not drift.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        check_int("T_max", T_max, 1)
        check_nonneg("eta_min", eta_min)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Cosine(base, self.eta_min, self.T_max, cyclic=True)

    def torch_scales_by_ratio(self) -> bool:
        """Torch's recursion is a ratio of cosines only with ``eta_min=0``, up to ``T_max``."""
        return self.eta_min == 0 and self.last_epoch <= self.T_max


class CosineAnnealingWarmRestarts(_DropIn):
    """Cosine annealing with warm restarts (SGDR): cycle ``i`` lasts ``T_0 * T_mult ** i`` epochs.

    ``eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``, with ``T_cur`` the epochs since the
    last restart and ``T_i`` the current cycle's length. ``step()`` adds one to ``T_cur``; ``step(epoch)``
    (torch's way to step within an epoch, e.g. ``step(epoch + i / iters)``) sets ``T_cur``/``T_i`` for that
    fractional epoch. As in torch, neither form warns.
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        check_int("T_0", T_0, 1)
        check_int("T_mult", T_mult, 1)
        check_nonneg("eta_min", eta_min)
        self.T_0, self.T_i, self.T_mult, self.eta_min, self.T_cur = T_0, T_0, T_mult, eta_min, last_epoch
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return CosineRestarts(base, self.eta_min, self.T_0, float(self.T_mult))

    def lr_values(self, scaled: bool = True) -> list[float]:
        """The LR per group from ``T_cur`` and ``T_i``."""
        cosine = (1.0 + math.cos(math.pi * self.T_cur / self.T_i)) / 2.0
        return [self.eta_min + (float(b) - self.eta_min) * cosine for b in self.base_lrs]

    def torch_scales_by_ratio(self) -> bool:
        """Torch's class sets the LR from ``base_lrs``: it does not scale what another scheduler wrote."""
        return False

    def step(self, epoch: float | None = None) -> None:  # type: ignore[override]
        """One epoch more (``T_cur + 1``), or torch's ``step(epoch)`` at a (fractional) epoch."""
        self._check_not_driven()
        self._step_count += 1
        self._get_lr_called_within_step = False
        if epoch is None and self.last_epoch >= 0:
            self.last_epoch += 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur %= self.T_i
                self.T_i *= self.T_mult
        else:
            self.seek_step(0 if epoch is None else epoch)
        _write(self)

    def _initial_step(self) -> None:
        self._step_count = 0
        self._get_lr_called_within_step = False
        with _initial_mode(self):
            self._step_count += 1
            self.seek_step(self.last_epoch + 1)  # closed form, also when resuming from last_epoch
            _write(self)

    def seek_step(self, step: float) -> None:
        """Set ``T_cur``/``T_i`` for a (fractional) epoch ``>= 0`` and ``last_epoch = floor(epoch)``."""
        step = _number(step)
        if step == -1:  # before the first step (a SequentialLR child before its segment)
            self.T_cur, self.T_i, self.last_epoch = -1, self.T_0, -1
            return
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step >= 0 or math.isinf(step):
            raise ValueError(f"epoch={step!r} is invalid: expected a number >= 0")
        _, self.T_cur, length = self._schedule(0, 1.0).cycle_at(step)  # type: ignore[attr-defined]
        self.T_i = int(length) if float(length).is_integer() else length
        if isinstance(step, int):
            self.T_cur = int(self.T_cur)
        self.last_epoch = math.floor(step)


class LambdaLR(_DropIn):
    """``base_lr * lr_lambda(t)`` per group; ``lr_lambda`` (one callable, or one per group) is a function of ``t``.

    Its ``state_dict`` holds torch's ``lr_lambdas``: None for a function, the ``__dict__`` of a callable object.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        self.lr_lambdas = _per_group_fns("lr_lambda", lr_lambda, _num_groups(optimizer))
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Function(self.lr_lambdas[group], base)

    def torch_scales_by_ratio(self) -> bool:
        """Torch's class sets ``base_lr * lr_lambda(t)``: it does not scale what another scheduler wrote."""
        return False

    def state_dict(self) -> dict[str, Any]:
        """Torch's state; ``lr_lambdas``: None for a plain function, a copy of a callable object's ``__dict__``."""
        state = super().state_dict()
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state (this class's or torch's); a callable object's ``__dict__`` is updated in place."""
        state = {k: v for k, v in state_dict.items() if k != "lr_lambdas"}
        for fn, saved in zip(self.lr_lambdas, state_dict.get("lr_lambdas", []), strict=False):
            if saved is not None:
                fn.__dict__.update(saved)
        super().load_state_dict(state)


class MultiplicativeLR(LambdaLR):
    """``base_lr * lr_lambda(1) * ... * lr_lambda(t)`` per group, as a prefix product.

    ``step(epoch)`` sets the LR to that product at ``epoch`` and warns: torch multiplies the current LR by
    ``lr_lambda(epoch)`` once instead.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        self._cache: dict[tuple[int, float], Multiplicative] = {}
        super().__init__(optimizer, lr_lambda, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        fn = self.lr_lambdas[group]
        cached = self._cache.get((group, base))
        if cached is None or cached.fn is not fn:  # the prefix products are kept between steps
            cached = self._cache[group, base] = Multiplicative(fn, base)
        return cached

    def torch_scales_by_ratio(self) -> bool:
        """Torch's class multiplies the LR by ``lr_lambda(t)``."""
        return True

    def _seek(self, epoch: Any) -> None:
        warnings.warn("MultiplicativeLR.step(epoch): lrlab sets the LR to base_lr * lr_lambda(1) * ... * "
                      "lr_lambda(epoch); torch multiplies the current LR by lr_lambda(epoch) once instead",
                      UserWarning, stacklevel=5)
        super()._seek(epoch)


def _triangular_scale(x: float) -> float:
    return 1.0


def _triangular2_scale(x: float) -> float:
    return 1.0 / (2.0 ** (x - 1))


def _exp_range_scale(gamma: float, x: float) -> float:
    return gamma**x


class CyclicLR(_DropIn):
    """Cyclical learning rate (Smith 2017) between ``base_lr`` and ``max_lr``; momentum cycles the other way.

    With ``cycle = floor(1 + t / (up + down))`` and ``x`` the position in the cycle, the LR is
    ``base_lr + (max_lr - base_lr) * height(x) * scale``, where ``height`` rises 0 to 1 over ``step_size_up``
    steps and falls back over ``step_size_down``, and ``scale`` is 1 (``triangular``), ``1 / 2 ** (cycle - 1)``
    (``triangular2``), ``gamma ** t`` (``exp_range``) or ``scale_fn(cycle or t)``. With ``cycle_momentum`` the
    momentum (or Adam's beta1) is ``max_momentum - (max_momentum - base_momentum) * height(x) * scale``.
    Same param group keys and attributes as torch's (``base_lrs`` are the cycle's lower bounds); ``scale_fn``
    must be a pure function.
    """

    def __init__(self, optimizer: Optimizer, base_lr: float | list[float], max_lr: float | list[float],
                 step_size_up: int = 2000, step_size_down: int | None = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Callable[[float], float] | None = None, scale_mode: str = "cycle",
                 cycle_momentum: bool = True, base_momentum: float | list[float] = 0.8,
                 max_momentum: float | list[float] = 0.9, last_epoch: int = -1) -> None:
        n = _num_groups(optimizer)
        check_int("last_epoch", last_epoch, -1)
        base_lrs = _per_group("base_lr", base_lr, n)
        self.max_lrs = _per_group("max_lr", max_lr, n)
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
        down = step_size_up if step_size_down is None else step_size_down
        self.total_size = float(step_size_up + down)
        self.step_ratio = step_size_up / self.total_size
        self.mode, self.gamma, self._scale_fn_custom = mode, gamma, scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else ("iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                _set(group, "lr", lr)
        if cycle_momentum:
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group("base_momentum", base_momentum, n, check_finite)
            self.max_momentums = _per_group("max_momentum", max_momentum, n, check_finite)
            if last_epoch == -1:
                for group, low, high in zip(optimizer.param_groups, self.base_momentums, self.max_momentums,
                                            strict=True):
                    _set_momentum(group, high)
                    group["max_momentum"], group["base_momentum"] = high, low
        self._cycle_lows = base_lrs
        super().__init__(optimizer, last_epoch)

    def _initial_step(self) -> None:
        self._chain_base_lrs = [float(b) for b in self.base_lrs]  # the groups' initial_lr
        self.base_lrs = self.__dict__.pop("_cycle_lows")  # as torch: the cycle's lower bounds
        super()._initial_step()

    @property
    def _scale_fn_ref(self) -> Callable[[float], float]:
        if self.mode == "triangular2":
            return _triangular2_scale
        if self.mode == "exp_range":
            return partial(_exp_range_scale, self.gamma)
        return _triangular_scale

    def scale_fn(self, x: float) -> float:
        """The amplitude scale at ``x`` (the cycle, or the step for ``scale_mode="iterations"``)."""
        return (self._scale_fn_custom or self._scale_fn_ref)(x)

    def _shape(self) -> dict[str, Any]:
        up = round(self.total_size * self.step_ratio)
        return {"step_size_up": up, "step_size_down": round(self.total_size) - up, "gamma": self.gamma,
                "mode": self.mode if self._scale_fn_custom is None else "triangular",
                "scale_fn": self._scale_fn_custom, "scale_mode": self.scale_mode}

    def _schedule(self, group: int, base: float) -> Schedule:
        return Cyclic(base, float(self.max_lrs[group]), **self._shape())

    @property
    def momentum_schedules(self) -> list[Schedule] | None:  # type: ignore[override]
        """The momentum cycles (max to base and back), if ``cycle_momentum``."""
        if not self.cycle_momentum:
            return None
        return [Cyclic(float(lo), float(hi), **self._shape(), descending=True)
                for lo, hi in zip(self.base_momentums, self.max_momentums, strict=True)]

    def chain_bases(self) -> list[float]:
        """The groups' ``initial_lr``: beside another scheduler, the cycle's LR is relative to it."""
        return list(self.__dict__.get("_chain_base_lrs", self.base_lrs))

    def torch_scales_by_ratio(self) -> bool:
        """Torch's class sets the cycle's LR: it does not scale what another scheduler wrote."""
        return False

    def state_dict(self) -> dict[str, Any]:
        """Torch's state; ``_scale_fn_custom``: None for a function, a copy of a callable object's ``__dict__``."""
        state = super().state_dict()
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = None if fn is None or isinstance(fn, types.FunctionType) else fn.__dict__.copy()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state (this class's or torch's); a callable ``scale_fn`` object is updated in place."""
        state = {k: v for k, v in state_dict.items() if k != "_scale_fn_custom"}
        saved = state_dict.get("_scale_fn_custom")
        if saved is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(saved)
        super().load_state_dict(state)


class OneCycleLR(_DropIn):
    """The 1cycle policy (Smith & Topin 2018): warm up to ``max_lr``, then anneal far below the start.

    The LR rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start * total_steps`` steps,
    then anneals (``cos`` or ``linear``) to ``max_lr / div_factor / final_div_factor`` at step
    ``total_steps - 1``; ``three_phase`` comes back to the initial LR first. Momentum (or Adam's beta1)
    cycles between ``max_momentum`` and ``base_momentum`` the other way. Same param group keys (``initial_lr``,
    ``max_lr``, ``min_lr``, ``max_momentum``, ``base_momentum``) and state as torch's. Differences: from step
    ``total_steps`` on the LR stays at its minimum (torch climbs back up at ``total_steps``, then raises), and
    when ``pct_start * total_steps == 1`` the warm-up has zero steps and step 0 is at the peak (torch raises
    ``ZeroDivisionError``).
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
        self.total_steps, self._anneal_func_type = total_steps, anneal_strategy
        self._schedule_phases = self._phases(pct_start, total_steps, three_phase)
        self._pct_start, self._div_factor, self._final_div_factor = pct_start, div_factor, final_div_factor
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs, strict=True):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = "betas" in optimizer.defaults
            if last_epoch == -1:
                for group, low, high in zip(optimizer.param_groups, base_ms, max_ms, strict=True):
                    _set_momentum(group, high)
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _phases(pct_start: float, total_steps: int, three_phase: bool) -> list[dict[str, Any]]:
        """Torch's ``_schedule_phases``: each phase's last step and the group keys it goes between."""
        lr = one_cycle_phases(total_steps, pct_start, three_phase, "initial_lr", "max_lr", "min_lr")
        m = one_cycle_phases(total_steps, pct_start, three_phase, "max_momentum", "base_momentum", "max_momentum")
        return [{"end_step": end, "start_lr": a, "end_lr": b, "start_momentum": c, "end_momentum": d}
                for (end, a, b), (_, c, d) in zip(lr, m, strict=True)]

    @staticmethod
    def _annealing_cos(start: float, end: float, pct: float) -> float:
        """Cosine from ``start`` (``pct=0``) to ``end`` (``pct=1``)."""
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    @staticmethod
    def _annealing_linear(start: float, end: float, pct: float) -> float:
        """Straight line from ``start`` (``pct=0``) to ``end`` (``pct=1``)."""
        return (end - start) * pct + start

    def _shape(self) -> dict[str, Any]:
        return {"total_steps": self.total_steps, "pct_start": self._pct_start,
                "anneal_strategy": self._anneal_func_type, "three_phase": len(self._schedule_phases) == 3}

    def _schedule(self, group: int, base: float) -> Schedule:
        peak = float(self.optimizer.param_groups[group]["max_lr"])
        return OneCycle(peak, div_factor=self._div_factor, final_div_factor=self._final_div_factor, **self._shape())

    @property
    def momentum_schedules(self) -> list[Schedule] | None:  # type: ignore[override]
        """The momentum cycle (max, down to base, back up) per group, if ``cycle_momentum``."""
        if not self.cycle_momentum:
            return None
        return [OneCycleMomentum(base_momentum=float(g["base_momentum"]), max_momentum=float(g["max_momentum"]),
                                 **self._shape()) for g in self.optimizer.param_groups]

    def torch_scales_by_ratio(self) -> bool:
        """Torch's class sets the cycle's LR: it does not scale what another scheduler wrote."""
        return False

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state (this class's or torch's, whose 1cycle shape is read from its phases and groups)."""
        state = dict(state_dict)
        legacy = state.pop("anneal_func", None)
        if legacy is not None:  # torch before 2.1 saved the function
            state["_anneal_func_type"] = "linear" if legacy is OneCycleLR._annealing_linear else "cos"
        if "_pct_start" not in state and "_schedule_phases" in state:
            group = self.optimizer.param_groups[0]
            state["_pct_start"] = (state["_schedule_phases"][0]["end_step"] + 1) / state["total_steps"]
            state["_div_factor"] = float(group["max_lr"]) / float(group["initial_lr"])
            state["_final_div_factor"] = float(group["initial_lr"]) / float(group["min_lr"])
        super().load_state_dict(state)


class ReduceLROnPlateau(_DropIn):
    """Cut each group's LR by ``factor`` once a metric stops improving for ``patience`` calls of ``step(metrics)``.

    A :class:`~lrlab.controllers.Plateau` controller (``scheduler.controller``) on a constant schedule (each
    group's ``initial_lr``): the LR is ``initial_lr * scale``, and ``step(metrics)`` updates ``scale`` with
    torch's rules (``mode``, ``threshold``/``threshold_mode`` against the best value so far, ``cooldown``,
    ``min_lrs`` floor per group, cuts smaller than ``eps`` skipped). Torch's attributes (``mode factor patience
    threshold threshold_mode cooldown min_lrs eps best num_bad_epochs cooldown_counter mode_worse``) read and
    write the controller. A param group added to the optimizer joins with scale 1 and, for a scalar
    ``min_lr``, that floor (with a list, append the new group's floor to ``min_lrs``, as in torch). Unlike
    torch it can be a child of :class:`SequentialLR` and :class:`ChainedScheduler`.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | list[float] = 0, eps: float = 1e-8) -> None:
        n = _num_groups(optimizer)
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else _number(min_lr)
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [self.default_min_lr] * n
        self.controller = Plateau(mode, factor, patience, threshold, threshold_mode, cooldown,
                                  [_number(m) for m in min_lrs], eps)
        self.controller.bind(n)
        super().__init__(optimizer, -1)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Constant(base)

    def _initial_step(self) -> None:
        self._step_count = 1
        self.last_epoch = 0
        self._last_lr = _copies(self.optimizer, "lr")

    def _add_new_groups(self) -> None:
        """Param groups added since construction join at scale 1 (and the default floor, if there is one)."""
        for group in self.optimizer.param_groups[len(self.base_lrs):]:
            lr = group["lr"]
            group.setdefault("initial_lr", lr.clone() if isinstance(lr, Tensor) else lr)
            self.base_lrs.append(group["initial_lr"])
            self.controller.scales.append(1.0)
            if self.default_min_lr is not None:
                self.min_lrs.append(self.default_min_lr)

    def step(self, metrics: SupportsFloat, epoch: int | None = None) -> None:  # type: ignore[override]
        """Feed one metric (e.g. the validation loss); ``epoch``: torch's deprecated step count to set."""
        self._check_not_driven()
        self._add_new_groups()
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
            self.last_epoch = epoch
        self.observe(metrics)

    def observe(self, metric: SupportsFloat) -> bool:
        """Take one metric; return whether it cut. The LR (all drivers of the optimizer) is rewritten at once."""
        drivers = _drivers(self.optimizer).live() or [self]
        unscaled = _chain(drivers, unscaled=self) if self._driven_by is None else self.lr_values(scaled=False)
        reduced = self.controller.observe(float(metric), max(self.last_epoch, 0), unscaled)
        _write(self)
        return reduced

    def state_dict(self) -> dict[str, Any]:
        """Torch's keys, plus lrlab's ``_step_count``, ``base_lrs`` and the controller's ``_scales``."""
        keys = ("factor", "default_min_lr", "min_lrs", "patience", "cooldown", "eps", "last_epoch", "_last_lr",
                "mode_worse", "mode", "threshold", "threshold_mode", "best", "cooldown_counter", "num_bad_epochs",
                "_step_count", "base_lrs")
        state = {k: getattr(self, k) for k in keys}
        state["min_lrs"] = list(self.min_lrs)
        state["_scales"], state["_observations"] = list(self.controller.scales), self.controller.observations
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state (this class's or torch's, whose LR cuts are read from the optimizer's current LRs)."""
        state = dict(state_dict)
        scales, observations = state.pop("_scales", None), state.pop("_observations", None)
        state.pop("mode_worse", None)
        for key, value in state.items():
            if key not in _NOT_STATE:
                setattr(self, key, list(value) if key == "min_lrs" else value)
        self._add_new_groups()
        if observations is not None:
            self.controller.observations = observations
        if scales is None:  # torch keeps its cuts in the LRs only
            drivers = _drivers(self.optimizer).live() or [self]
            unscaled = _chain(drivers, unscaled=self) if self._driven_by is None else self.lr_values(scaled=False)
            scales = [float(g["lr"]) / u if u else 1.0 for g, u in zip(self.optimizer.param_groups, unscaled,
                                                                        strict=True)]
        self.controller.scales = [float(s) for s in scales]

    @property
    def mode_worse(self) -> float:
        """The worst possible metric: ``inf`` for ``mode="min"``, ``-inf`` for ``"max"``."""
        return math.inf if self.mode == "min" else -math.inf

    @property
    def in_cooldown(self) -> bool:
        """Whether the controller is cooling down after a cut."""
        return self.cooldown_counter > 0

    @property
    def min_lrs(self) -> list[float]:
        """The LR floor of each group (a list: append one for a group added later)."""
        return self.controller.min_lr  # type: ignore[return-value]

    @min_lrs.setter
    def min_lrs(self, value: list[float]) -> None:
        self.controller.min_lr = value


def _plateau_attribute(name: str, doc: str) -> property:
    """A ReduceLROnPlateau attribute that reads and writes its controller's."""
    return property(lambda self: getattr(self.controller, name),
                    lambda self, value: setattr(self.controller, name, value), doc=doc)


for _name, _doc in (("mode", "``min`` or ``max``"), ("factor", "the LR multiplier of a cut"),
                    ("patience", "bad observations tolerated before a cut"),
                    ("threshold", "the margin an improvement must beat"), ("threshold_mode", "``rel`` or ``abs``"),
                    ("cooldown", "observations ignored after a cut"), ("eps", "the smallest LR change applied"),
                    ("best", "the best metric so far"), ("num_bad_epochs", "observations since the last improvement"),
                    ("cooldown_counter", "observations left in the cooldown")):
    setattr(ReduceLROnPlateau, _name, _plateau_attribute(_name, _doc))


# --- composites: children's schedules composed, plateau controllers routed -------------------------------

def _absolute_schedules(child: ScheduledLR) -> list[Schedule]:
    """A child's per-group schedules as absolute LRs (a ``relative=True`` child's factors times its base LRs)."""
    if child.relative:
        return [s * float(b) for s, b in zip(child.schedules, child.base_lrs, strict=True)]
    return list(child.schedules)


class _PlateauLeaf:
    """A child's :class:`Plateau`, seen at the child's own steps with the child's own schedule."""

    def __init__(self, plateau: Plateau, child: ScheduledLR) -> None:
        self.plateau, self.child = plateau, child

    def scales_at(self, step: int) -> list[float]:
        return list(self.plateau.scales)

    def observe(self, metric: float, step: int) -> bool:
        return self.plateau.observe(metric, step, [s(step) for s in _absolute_schedules(self.child)])


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


def _plateaus_of(child: ScheduledLR) -> Any:
    """The child's controllers as a node (``scales_at``/``observe``), or None if it has none."""
    if isinstance(child, _ComposedLR):
        return child.plateaus
    if child.controller is not None:
        return _PlateauLeaf(child.controller, child)
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


class _ComposedLR(_DropIn):
    """A scheduler whose LR is ``schedule(t) * plateaus.scales_at(t)``, both from its children.

    The children stop driving the optimizer themselves; the composite sets their ``last_epoch`` and
    ``get_last_lr()`` as torch's stepping would, and their ``state_dict`` is part of its own.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[ScheduledLR], plateaus: Any) -> None:
        self._schedulers, self.plateaus = list(schedulers), plateaus
        entry = _drivers(optimizer)
        for child in schedulers:
            child._driven_by = weakref.ref(self)
        entry.refs = [r for r in entry.refs if r() not in schedulers]
        self._momentum = self._compose_momentum(optimizer)
        super().__init__(optimizer, -1)

    def _compose_momentum(self, optimizer: Optimizer) -> list[Schedule] | None:
        raise NotImplementedError

    @property
    def momentum_schedules(self) -> list[Schedule] | None:  # type: ignore[override]
        """The momentum the children schedule, composed (see the class docstring)."""
        return self._momentum

    def lr_values(self, scaled: bool = True) -> list[float]:
        """The composed schedule at ``last_epoch``, times the active controllers' scales."""
        lrs = [s(self.last_epoch) for s in self.schedules]
        if scaled and self.plateaus is not None:
            lrs = [lr * s for lr, s in zip(lrs, self.plateaus.scales_at(self.last_epoch), strict=True)]
        return lrs

    def torch_scales_by_ratio(self) -> bool:
        """As its children."""
        return all(not isinstance(c, _DropIn) or c.torch_scales_by_ratio() for c in self._schedulers)

    def step(self, metrics: SupportsFloat | None = None) -> None:  # type: ignore[override]
        """Advance one step; with ``metrics``, first feed the children's controllers (see the class docstring)."""
        self._check_not_driven()
        _warn_order(self)
        if metrics is not None:
            self.observe(metrics)
        self._advance(None)

    def _advance(self, epoch: Any) -> None:
        super()._advance(epoch)
        self.seek_step(self.last_epoch)

    def observe(self, metric: SupportsFloat) -> bool:
        """Feed one metric to the children's controllers; return whether one cut. The new LR applies at once."""
        if self.plateaus is None:
            raise ValueError(f"metrics were given but no child of this {type(self).__name__} has a controller "
                             "(e.g. ReduceLROnPlateau)")
        reduced = self.plateaus.observe(float(metric), max(self.last_epoch, 0))
        if reduced:
            _write(self)
        return reduced

    def _state_keys(self) -> tuple[str, ...]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Torch's keys (the children's states under ``_schedulers``), plus lrlab's step counts."""
        state = {k: self.__dict__[k] for k in self._state_keys()}
        state["_schedulers"] = [child.state_dict() for child in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state (this class's or torch's); the optimizer's LRs are left alone, as in torch."""
        for child, saved in zip(self._schedulers, state_dict["_schedulers"], strict=True):
            child.load_state_dict(saved)
        for key in self._state_keys():
            if key in state_dict:
                setattr(self, key, state_dict[key])
        if "last_epoch" not in state_dict:  # torch's ChainedScheduler: the children's count
            self.last_epoch = self._schedulers[0].last_epoch


def _sequential_momentum(optimizer: Optimizer, children: Sequence[ScheduledLR],
                         milestones: list[int]) -> list[Schedule] | None:
    """Per group, the children's momentum schedules joined; a child without one holds the last value."""
    if all(c.momentum_schedules is None for c in children):
        return None
    starts, ends = [0, *milestones], [*milestones, None]
    joined = []
    for g, group in enumerate(optimizer.param_groups):
        held = float(group["betas"][0] if "betas" in group else group["momentum"])
        pieces: list[Schedule] = []
        for child, start, end in zip(children, starts, ends, strict=True):
            schedules = child.momentum_schedules
            if schedules is None:
                pieces.append(Constant(held))
                continue
            pieces.append(schedules[g])
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
    constructed (and wrote the LRs): construction resets the LRs for the composite's step. Each child's
    ``last_epoch`` is its own step (``-1`` before its segment, its last step after it) and the active
    child's ``get_last_lr()`` is the composite's, as in torch.

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
        parts = [_plateaus_of(c) for c in schedulers]
        plateaus = _PlateauSegments(parts, milestones, len(optimizer.param_groups)) \
            if any(p is not None for p in parts) else None
        self._milestones, self._resume = milestones, last_epoch
        super().__init__(optimizer, schedulers, plateaus)

    def _initial_step(self) -> None:
        self.last_epoch = self.__dict__.pop("_resume")
        super()._initial_step()

    def _compose_momentum(self, optimizer: Optimizer) -> list[Schedule] | None:
        return _sequential_momentum(optimizer, self._schedulers, self._milestones)

    @property
    def schedules(self) -> list[Schedule]:  # type: ignore[override]
        """Per group, the children's absolute schedules joined at the milestones."""
        per_child = [_absolute_schedules(c) for c in self._schedulers]
        return [Join(tuple(s[g] for s in per_child), tuple(self._milestones))
                for g in range(len(self.optimizer.param_groups))]

    def seek_step(self, step: int) -> None:
        """Set the step, and each child's: its own step in its segment, clamped to ``[-1, its last step]``."""
        self.last_epoch = step
        starts, ends = [0, *self._milestones], [*self._milestones, None]
        for child, start, end in zip(self._schedulers, starts, ends, strict=True):
            local = max(step - start, -1) if end is None else max(min(step, end - 1) - start, -1)
            if local != child.last_epoch:
                child._step_count = getattr(child, "_step_count", 0) + 1
                if isinstance(child, _DropIn):
                    child.seek_step(local)
                else:
                    child.last_epoch = local
            if start <= step and (end is None or step < end):
                child._last_lr = list(getattr(self, "_last_lr", []))

    def _state_keys(self) -> tuple[str, ...]:
        return ("_milestones", "last_epoch", "_last_lr", "_step_count")


class ChainedScheduler(_ComposedLR):
    """All children at once: per group, ``base_lr * prod_i(child_i(t) / child_i.base_lr)``.

    ``base_lr`` is the group's ``initial_lr``. This is what torch's ChainedScheduler computes when each child
    multiplies the LR by a ratio of its own closed form: the same sequence as torch for children StepLR,
    MultiStepLR, ExponentialLR, ConstantLR (``total_iters >= 1``), LinearLR, PolynomialLR, MultiplicativeLR,
    and CosineAnnealingLR with ``eta_min=0`` up to step ``T_max`` (after it torch adds an unscaled
    ``base_lr * (1 - cos(pi / T_max)) / 2``). For children whose torch recursion is not a ratio
    (LambdaLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR, CosineAnnealingLR with ``eta_min > 0``)
    torch's result depends on the order of the children; lrlab's is always the product of factors, and it
    warns. Momentum follows the last child that schedules it (as the last such child's ``step`` wins in
    torch). Every child's ``last_epoch`` is the composite's, and its ``get_last_lr()`` the product up to it.

    ReduceLROnPlateau children are accepted (torch rejects them): their scale multiplies the LR, and their
    ``min_lr`` bounds their own factor (``base_lr * scale >= min_lr``). ``step(metrics)`` feeds the metric to
    every child with a controller, then steps; it raises ``ValueError`` if no child has one.
    """

    def __init__(self, schedulers: Sequence[ScheduledLR], optimizer: Optimizer | None = None) -> None:
        optimizer = _check_children(schedulers, optimizer)
        for i, child in enumerate(schedulers):
            for g, base in enumerate(child.base_lrs):
                if float(base) == 0.0 and float(optimizer.param_groups[g].get("initial_lr", 0.0)) != 0.0:
                    raise ValueError(f"schedulers[{i}]={type(child).__name__} is invalid: its base LR in param "
                                     f"group {g} is 0, so its factor (value / base LR) is undefined")
        odd = [type(c).__name__ for c in schedulers if isinstance(c, _DropIn) and not c.torch_scales_by_ratio()]
        if len(schedulers) > 1 and odd:
            warnings.warn(f"ChainedScheduler: torch's {', '.join(odd)} does not scale the LR by a ratio, so "
                          "torch's chained LRs depend on the order of the children; lrlab's are the product of "
                          "the children's factors", UserWarning, stacklevel=2)
        parts = [p for p in map(_plateaus_of, schedulers) if p is not None]
        super().__init__(optimizer, schedulers, _PlateauProduct(parts) if parts else None)

    def _compose_momentum(self, optimizer: Optimizer) -> list[Schedule] | None:
        with_momentum = [c.momentum_schedules for c in self._schedulers if c.momentum_schedules is not None]
        return with_momentum[-1] if with_momentum else None

    def _factors(self, upto: int) -> list[Schedule]:
        """Per group, ``base_lr`` times the factors of children ``0 .. upto``."""
        chains = []
        for g, base in enumerate(self.base_lrs):
            chain: Schedule = Constant(float(base))
            if float(base) != 0.0:
                for child in self._schedulers[:upto + 1]:
                    chain = chain * (_absolute_schedules(child)[g] * (1.0 / float(child.base_lrs[g])))
            chains.append(chain)
        return chains

    @property
    def schedules(self) -> list[Schedule]:  # type: ignore[override]
        """Per group, ``base_lr`` times every child's factor."""
        return self._factors(len(self._schedulers) - 1)

    def seek_step(self, step: int) -> None:
        """Set the step, and every child's; each child's last LR is the product of the factors up to it."""
        self.last_epoch = step
        if step < 0 or not hasattr(self, "_last_lr"):  # before its segment in a SequentialLR, or constructing
            for child in self._schedulers:
                child.last_epoch = step
            return
        # torch steps the children in turn: after child i, children 0..i are at `step`, the others one behind
        now, before = self._child_factors(step), self._child_factors(step - 1)
        for i, child in enumerate(self._schedulers):
            if child.last_epoch != step:
                child._step_count = getattr(child, "_step_count", 0) + 1
            if isinstance(child, _DropIn):
                child.seek_step(step)
            else:
                child.last_epoch = step
            if i == len(self._schedulers) - 1:
                child._last_lr = list(self._last_lr)
                continue
            lrs = [float(b) for b in self.base_lrs]
            for factors in now[:i + 1] + before[i + 1:]:
                lrs = [lr * f for lr, f in zip(lrs, factors, strict=True)]
            child._last_lr = lrs

    def _child_factors(self, step: int) -> list[list[float]]:
        """Each child's factor per group at ``step`` (1 before step 0), controller scales included."""
        if step < 0:
            return [[1.0] * len(self.base_lrs) for _ in self._schedulers]
        out = []
        for child in self._schedulers:
            values = [s(step) for s in _absolute_schedules(child)]
            node = _plateaus_of(child)
            scales = node.scales_at(step) if node is not None else [1.0] * len(values)
            out.append([v * c / float(b) if float(b) else 0.0
                        for v, c, b in zip(values, scales, child.base_lrs, strict=True)])
        return out

    def _state_keys(self) -> tuple[str, ...]:
        return ("_last_lr", "last_epoch", "_step_count")

"""The base of every drop-in class: torch's argument forms, writing param groups, and the schedulers that
share one optimizer (their factors multiply).

:class:`DropIn` keeps torch's attributes and state and computes its LRs from pure schedules; :func:`write_lrs`
writes every driver's product into the optimizer's param groups.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, SupportsFloat

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import EPOCH_DEPRECATION_WARNING, LRScheduler, _initial_mode

from lrlab.adapter import ScheduledLR
from lrlab.controllers import Plateau
from lrlab.schedules import Schedule
from lrlab.schedules.checks import check_int, check_nonneg


class ArgumentTypeError(ValueError, TypeError):
    """An argument of the wrong type: a ``ValueError`` as lrlab's checks raise, and the ``TypeError`` torch raises."""


# --- argument checks shared by the classes ---------------------------------------------------------------

def count_groups(optimizer: Optimizer) -> int:
    """The number of param groups of ``optimizer``; ``ArgumentTypeError`` if it is not a torch optimizer."""
    if not isinstance(optimizer, Optimizer):
        raise ArgumentTypeError(f"optimizer={type(optimizer).__name__} is invalid: expected a torch.optim.Optimizer")
    return len(optimizer.param_groups)


def as_number(value: Any) -> Any:
    """A 0-d tensor as a Python float (torch accepts them for every number); anything else unchanged."""
    return float(value) if isinstance(value, Tensor) and value.dim() == 0 else value


def per_group(name: str, value: Any, num_groups: int,
              check: Callable[[str, float], None] = check_nonneg) -> list[float]:
    """A number for every group, from one number or a list of one per group (torch's ``float or list``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_groups:
            raise ValueError(f"{name}={list(value)!r} is invalid: expected a number or a list of {num_groups} "
                             "numbers (one per param group)")
        values = [as_number(v) for v in value]
    else:
        values = [as_number(value)] * num_groups
    for v in values:
        check(name, v)
    return [float(v) for v in values]


def per_group_fns(name: str, value: Any, num_groups: int) -> list[Callable[[int], float]]:
    """A callable for every group, from one callable or a list of one per group (torch's ``lr_lambda``)."""
    fns = list(value) if isinstance(value, (list, tuple)) else [value] * num_groups
    if len(fns) != num_groups or not all(callable(f) for f in fns):
        raise ArgumentTypeError(f"{name}={value!r} is invalid: expected a callable epoch -> factor, or a list of "
                                f"{num_groups} callables (one per param group): {name} should be a function")
    return fns


def check_steps(name: str, values: Iterable[int], minimum: int = 0) -> list[int]:
    """A list of integer steps ``>= minimum``."""
    steps = list(values) if isinstance(values, Iterable) else [values]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in steps):
        raise ValueError(f"{name}={steps!r} is invalid: expected a list of integers >= {minimum}")
    return steps


def check_cycle_momentum(optimizer: Optimizer, cycle_momentum: bool) -> None:
    """Raise ``ValueError`` if momentum is to be cycled on an optimizer that has neither momentum nor betas."""
    if cycle_momentum and "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(f"cycle_momentum=True is invalid for {type(optimizer).__name__}: expected an optimizer "
                         "with `momentum` or `betas` (or cycle_momentum=False)")


# --- writing into param groups, as torch does ------------------------------------------------------------

def set_value(group: dict[str, Any], key: str, value: float) -> None:
    """``group[key] = value``, filling a tensor in place (torch keeps tensor LRs tensors)."""
    if isinstance(group.get(key), Tensor):
        group[key].fill_(value)
    else:
        group[key] = value


def set_momentum(group: dict[str, Any], value: float) -> None:
    """Set a group's momentum, or Adam's beta1 where the group has ``betas``."""
    if "betas" in group:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


def copies(optimizer: Optimizer, key: str) -> list[Any]:
    """Every group's ``key``, tensors cloned (torch's ``get_last_lr`` never aliases the groups)."""
    return [g[key].clone() if isinstance(g[key], Tensor) else g[key] for g in optimizer.param_groups]


def warn_order(scheduler: LRScheduler) -> None:
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

class Drivers:
    """The lrlab schedulers driving one optimizer (weak references, construction order)."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[DropIn]] = []
        self.warned = False

    def live(self) -> list[DropIn]:
        """The drivers still alive, in construction order."""
        self.refs = [r for r in self.refs if r() is not None]
        return [s for s in (r() for r in self.refs) if s is not None]


_DRIVERS: weakref.WeakKeyDictionary[Optimizer, Drivers] = weakref.WeakKeyDictionary()


def drivers_of(optimizer: Optimizer) -> Drivers:
    """The drivers of ``optimizer`` (a new, empty record for an optimizer no scheduler drives yet)."""
    return _DRIVERS.setdefault(optimizer, Drivers())


def chain_lrs(drivers: Sequence[DropIn], unscaled: DropIn | None = None) -> list[float]:
    """Each group's LR: the first driver's LR times every other driver's factor (``unscaled``: no controller)."""
    lrs = drivers[0].lr_values(drivers[0] is not unscaled)
    for d in drivers[1:]:
        values, bases = d.lr_values(d is not unscaled), d.chain_bases()
        lrs = [lr * (v / b if b else 0.0) for lr, v, b in zip(lrs, values, bases, strict=True)]
    return lrs


def write_lrs(stepped: DropIn) -> None:
    """Write the optimizer's LRs (all its drivers' product) and ``stepped``'s momentum; record its last LR."""
    if stepped._driven_by is not None:  # a composite's child: the composite writes
        return
    entry = drivers_of(stepped.optimizer)
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
    for group, lr in zip(stepped.optimizer.param_groups, chain_lrs(drivers), strict=True):
        set_value(group, "lr", lr)
    momentum = stepped.momentum_schedules
    if momentum is not None:
        for group, s in zip(stepped.optimizer.param_groups, momentum, strict=True):
            set_momentum(group, s(stepped.last_epoch))
    stepped._last_lr = copies(stepped.optimizer, "lr")


# --- the base of every drop-in class ---------------------------------------------------------------------

NOT_STATE = frozenset({"optimizer", "_driven_by", "_cache", "_chain_base_lrs"})


class DropIn(ScheduledLR):
    """A drop-in class: torch's attributes and state, LRs from ``schedules`` (built from the attributes)."""

    relative = False
    controller: Plateau | None = None
    _driven_by: Any = None  # weak reference to the composite that drives this scheduler

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        count_groups(optimizer)
        check_int("last_epoch", last_epoch, -1)
        drivers_of(optimizer).refs.append(weakref.ref(self))
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
        """This scheduler's own LR per group at ``last_epoch``: the adapter's ``schedule(t) * controller scale``
        (``scaled=False``: the schedule alone)."""
        return super().get_lr() if scaled else self.uncontrolled_lrs()

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
        warn_order(self)
        self._advance(epoch)

    def _check_not_driven(self) -> None:
        if self._driven_by is not None and self._driven_by() is None:  # its composite is gone: drive again
            self._driven_by = None
            drivers_of(self.optimizer).refs.append(weakref.ref(self))
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
        write_lrs(self)

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
        return {k: v for k, v in self.__dict__.items() if k not in NOT_STATE}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from this class's or torch's ``state_dict``.

        As in torch, the optimizer's LRs are left alone (they come back with the optimizer's own state); the
        next :meth:`step` writes the closed form of the restored step's successor.
        """
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in NOT_STATE})

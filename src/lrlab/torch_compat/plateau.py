"""The drop-in ReduceLROnPlateau: a :class:`~lrlab.controllers.Plateau` controller on a constant schedule."""

from __future__ import annotations

import math
import warnings
from typing import Any, SupportsFloat

from torch import Tensor
from torch.optim import Optimizer, lr_scheduler
from torch.optim.lr_scheduler import EPOCH_DEPRECATION_WARNING

from lrlab.controllers import Plateau
from lrlab.schedules import Constant, Schedule
from lrlab.torch_compat.base import NOT_STATE, DropIn, as_number, chain_lrs, copies, count_groups, drivers_of, write_lrs


class ReduceLROnPlateau(DropIn, lr_scheduler.ReduceLROnPlateau):
    """Cut each group's LR by ``factor`` once a metric stops improving for ``patience`` calls of ``step(metrics)``.

    A :class:`~lrlab.controllers.Plateau` controller (``scheduler.controller``) on a constant schedule (each
    group's ``initial_lr``): the LR is ``initial_lr * scale``, and ``step(metrics)`` updates ``scale`` with
    torch's rules (``mode``, ``threshold``/``threshold_mode`` against the best value so far, ``cooldown``,
    ``min_lrs`` floor per group, cuts smaller than ``eps`` skipped). Torch's attributes (``mode factor patience
    threshold threshold_mode cooldown min_lrs eps best num_bad_epochs cooldown_counter mode_worse``) read and
    write the controller. A param group added to the optimizer joins with scale 1 and, for a scalar
    ``min_lr``, that floor (with a list, append the new group's floor to ``min_lrs``, as in torch). Unlike
    torch it can be a child of :class:`SequentialLR` and :class:`ChainedScheduler`.

    It is a subclass of torch's ``ReduceLROnPlateau`` (whose methods it overrides all but unused helpers), so
    trainers that pass the monitored metric only to that class's instances — Lightning, the Hugging Face
    ``Trainer`` — call ``step(metric)`` on it, not ``step()``.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | list[float] = 0, eps: float = 1e-8) -> None:
        n = count_groups(optimizer)
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else as_number(min_lr)
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [self.default_min_lr] * n
        self.controller = Plateau(mode, factor, patience, threshold, threshold_mode, cooldown,
                                  [as_number(m) for m in min_lrs], eps)
        self.controller.bind(n)
        super().__init__(optimizer, -1)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Constant(base)

    def _initial_step(self) -> None:
        self._step_count = 1
        self.last_epoch = 0
        self._last_lr = copies(self.optimizer, "lr")

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
        drivers = drivers_of(self.optimizer).live() or [self]
        unscaled = chain_lrs(drivers, unscaled=self) if self._driven_by is None else self.lr_values(scaled=False)
        reduced = self.controller.observe(float(metric), max(self.last_epoch, 0), unscaled)
        write_lrs(self)
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
            if key not in NOT_STATE:
                setattr(self, key, list(value) if key == "min_lrs" else value)
        self._add_new_groups()
        if observations is not None:
            self.controller.observations = observations
        if scales is None:  # torch keeps its cuts in the LRs only
            drivers = drivers_of(self.optimizer).live() or [self]
            unscaled = chain_lrs(drivers, unscaled=self) if self._driven_by is None else self.lr_values(scaled=False)
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

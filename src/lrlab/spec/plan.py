"""What a spec is built against (:class:`Horizon`) and what building gives (:class:`Plan`). Torch-free:
a torch scheduler for a plan is :meth:`lrlab.adapter.ScheduledLR.from_plan`."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from lrlab.controllers import Controller, Greedy, Plateau
from lrlab.errors import ConfigError
from lrlab.schedules import Schedule
from lrlab.spec.language import Spec, is_number


@dataclass(frozen=True)
class Horizon:
    """What a spec's durations and default LRs are resolved against, once, by :func:`build`.

    Args:
        total_steps: optimizer updates in the whole run (>= 1).
        steps_per_epoch: updates per epoch, needed by ``*_epochs`` durations (None: not known).
        base_lr: the optimizer's LR; LR parameters (init_lr, max_lr, ...) default to it.
        beta2: Adam's beta2, for ``warmup(steps=auto)`` = ``2 / (1 - beta2)`` steps (None: not Adam).
    """

    total_steps: int
    steps_per_epoch: int | None = None
    base_lr: float = 1.0
    beta2: float | None = None

    def __post_init__(self) -> None:
        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not is_int(self.total_steps) or self.total_steps < 1:
            raise ConfigError(f"total_steps={self.total_steps!r} is invalid: expected an integer >= 1")
        if self.steps_per_epoch is not None and (not is_int(self.steps_per_epoch) or self.steps_per_epoch < 1):
            raise ConfigError(f"steps_per_epoch={self.steps_per_epoch!r} is invalid: expected an integer >= 1")
        if not is_number(self.base_lr) or not math.isfinite(self.base_lr) or self.base_lr <= 0:
            raise ConfigError(f"base_lr={self.base_lr!r} is invalid: expected a number > 0")
        if self.beta2 is not None and (not is_number(self.beta2) or not 0 <= self.beta2 < 1):
            raise ConfigError(f"beta2={self.beta2!r} is invalid: expected a number in [0, 1)")


@dataclass(frozen=True)
class PlateauSettings:
    """The arguments of a :class:`~lrlab.controllers.Plateau` (ReduceLROnPlateau), ``start_step`` included."""

    mode: str = "min"
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    cooldown: int = 0
    min_lr: float | tuple[float, ...] = 0.0
    eps: float = 1e-8
    sign_safe: bool = False
    start_step: int = 0

    def controller(self) -> Plateau:
        """A fresh controller with these settings."""
        return Plateau(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class GreedySettings:
    """The arguments of a :class:`~lrlab.controllers.Greedy` (HF's GreedyLR), ``start_step`` included."""

    mode: str = "min"
    factor: float = 0.95
    patience: int = 10
    threshold: float = 1e-6
    threshold_mode: str = "abs"
    cooldown: int = 0
    warmup: int = 0
    min_lr: float | tuple[float, ...] = 1e-3
    max_lr: float | tuple[float, ...] = 1.0
    eps: float = 1e-8
    smooth: bool = False
    window_size: int = 50
    reset_start: int = 500
    start_step: int = 0

    def controller(self) -> Greedy:
        """A fresh controller with these settings."""
        return Greedy(**{f.name: getattr(self, f.name) for f in fields(self)})


#: a controller's settings, as a spec's ``plateau(...)`` or ``greedy(...)`` gives them
ControllerSettings = PlateauSettings | GreedySettings


@dataclass(frozen=True)
class Plan:
    """A spec built for one run: absolute LR (and momentum) schedules plus a controller's settings, if any.

    Attributes:
        lr: the LR at each step, in absolute units (``base_lr`` already applied).
        momentum: the momentum (or Adam's beta1) at each step, for onecycle/cyclic; None leaves it alone.
        controller: the settings of the spec's ``plateau(...)`` (ReduceLROnPlateau) or ``greedy(...)``
            (GreedyLR), None without one; its ``start_step`` is where the controller starts listening (the
            end of a warmup before it).
        spec: the parsed spec (``str(plan.spec)`` is its canonical text).
        horizon: what the durations were resolved against.

    A plan drives a torch optimizer through ``lrlab.ScheduledLR.from_plan(optimizer, plan)``.
    """

    lr: Schedule
    momentum: Schedule | None = None
    controller: ControllerSettings | None = None
    spec: Spec | None = None
    horizon: Horizon | None = None

    @property
    def plateau(self) -> PlateauSettings | None:
        """The ReduceLROnPlateau settings when the controller is ``plateau(...)``, else None."""
        return self.controller if isinstance(self.controller, PlateauSettings) else None

    def new_controller(self) -> Controller | None:
        """A fresh controller for one run (None when the spec has none)."""
        return None if self.controller is None else self.controller.controller()

    def lr_values(self, steps: int | None = None) -> list[float]:
        """``[lr(0), ..., lr(steps - 1)]``; ``steps`` defaults to the horizon's ``total_steps``."""
        return [self.lr(t) for t in range(self._steps(steps))]

    def momentum_values(self, steps: int | None = None) -> list[float] | None:
        """Like :meth:`lr_values` for the momentum schedule; None when the plan has none."""
        if self.momentum is None:
            return None
        return [self.momentum(t) for t in range(self._steps(steps))]

    def _steps(self, steps: int | None) -> int:
        if steps is not None:
            return steps
        if self.horizon is None:
            raise ValueError("steps=None is invalid for a Plan without a horizon: expected a number of steps")
        return self.horizon.total_steps


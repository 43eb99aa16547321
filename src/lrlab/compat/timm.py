"""timm's LR schedulers (``timm.scheduler``) in lrlab: same names, arguments and ``step``/``step_update`` calls.

timm's schedulers are closed-form in ``t``, the epoch (``step(epoch)``, ``t_in_epochs=True``) or the update
count (``step_update(num_updates)``, ``t_in_epochs=False``) that the training loop passes in; each param group's
LR is then the value at ``t``. Here that value is an lrlab schedule built from the spec :func:`to_spec` prints,
one per param group (timm's ``base_values``). Before the first ``step`` the LR is the value at ``t = 0``
(``warmup_lr_init`` with a warmup), as in timm. LR noise (``noise_range_t``) is not reproduced.
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer

from lrlab.schedules import Schedule
from lrlab.spec import Horizon, build


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
    """timm's ``Scheduler`` contract: ``step(epoch)`` / ``step_update(num_updates)`` set each group's LR."""

    def __init__(self, optimizer: Optimizer, schedules: list[Schedule], t_in_epochs: bool) -> None:
        self.optimizer, self.schedules, self.t_in_epochs = optimizer, schedules, t_in_epochs
        self._set(0)

    def _set(self, t: int) -> None:
        for group, schedule in zip(self.optimizer.param_groups, self.schedules, strict=True):
            value = schedule(t)
            group["lr"] = value * group["lr_scale"] if "lr_scale" in group else value

    def step(self, epoch: int, metric: float | None = None) -> None:
        """At the end of epoch ``epoch - 1``: the LRs for epoch ``epoch`` (when ``t_in_epochs``)."""
        if self.t_in_epochs:
            self._set(epoch)

    def step_update(self, num_updates: int, metric: float | None = None) -> None:
        """After ``num_updates`` optimizer updates: the LRs for the next one (when not ``t_in_epochs``)."""
        if not self.t_in_epochs:
            self._set(num_updates)

    def state_dict(self) -> dict[str, Any]:
        return {"t_in_epochs": self.t_in_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t_in_epochs = bool(state["t_in_epochs"])


def _base_values(optimizer: Optimizer) -> list[float]:
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return [float(group["initial_lr"]) for group in optimizer.param_groups]


class CosineLRScheduler(_Scheduler):
    """timm's ``CosineLRScheduler``: warmup, cosine with restarts (``cycle_mul``, ``cycle_decay``,
    ``cycle_limit``) and k-decay; ``warmup_prefix=False`` (timm's default) keeps the cosine's clock running
    through the warmup (lrlab's ``shift``)."""

    def __init__(self, optimizer: Optimizer, t_initial: int, lr_min: float = 0.0, cycle_mul: float = 1.0,
                 cycle_decay: float = 1.0, cycle_limit: int = 1, warmup_t: int = 0, warmup_lr_init: float = 0.0,
                 warmup_prefix: bool = False, t_in_epochs: bool = True, noise_range_t: Any = None,
                 k_decay: float = 1.0, **unused: Any) -> None:
        if noise_range_t is not None:
            raise ValueError(f"noise_range_t={noise_range_t!r} is invalid here: LR noise is not reproduced")
        self.specs = [to_spec(t_initial, lr, lr_min, cycle_mul, cycle_decay, cycle_limit, warmup_t, warmup_lr_init,
                              warmup_prefix, k_decay) for lr in _base_values(optimizer)]
        horizon = Horizon(total_steps=10**9)
        super().__init__(optimizer, [build(spec, horizon).lr for spec in self.specs], t_in_epochs)

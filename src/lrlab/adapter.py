"""The torch adapter: one ``LRScheduler`` that drives any optimizer from a schedule (+ controller).

Its whole state is the step count and the controller's state, so ``state_dict()``/``load_state_dict()``
can never change the curve: the LR at step ``t`` is always ``schedule(t) * controller.scale``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, SupportsFloat

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrlab.controllers import Plateau
from lrlab.schedules import Schedule

if TYPE_CHECKING:
    from lrlab.spec import Plan


#: steps a controller may be stepped without ever receiving a metric before :class:`ScheduledLR` warns (once),
#: counted from the controller's ``start_step``; 10 epochs when the plan knows the steps per epoch
UNFED_STEPS = 1000
UNFED_EPOCHS = 10


def initial_lrs(optimizer: Optimizer, last_epoch: int = -1) -> list[float]:
    """Each param group's ``initial_lr`` (set from its ``lr`` when starting fresh, as torch does)."""
    for i, group in enumerate(optimizer.param_groups):
        if last_epoch == -1:
            group.setdefault("initial_lr", float(group["lr"]))
        elif "initial_lr" not in group:
            raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming with "
                           f"last_epoch={last_epoch}")
    return [float(group["initial_lr"]) for group in optimizer.param_groups]


def _per_group(name: str, value: Schedule | Sequence[Schedule], num_groups: int) -> list[Schedule]:
    schedules = [value] * num_groups if isinstance(value, Schedule) else list(value)
    if len(schedules) != num_groups or not all(isinstance(s, Schedule) for s in schedules):
        raise ValueError(f"{name}={value!r} is invalid: expected a Schedule or a list of {num_groups} Schedules "
                         "(one per param group)")
    return schedules


def momentum_key(optimizer: Optimizer) -> str:
    """``"momentum"`` or ``"betas"``: where this optimizer keeps the momentum a schedule may drive."""
    if "momentum" in optimizer.defaults:
        return "momentum"
    if "betas" in optimizer.defaults:
        return "betas"
    raise ValueError(f"optimizer={type(optimizer).__name__} is invalid for a momentum schedule: "
                     "expected an optimizer with `momentum` or `betas`")


def controlled_lrs(lrs: Sequence[float], controller: Plateau | None) -> list[float]:
    """The LR rule every trainer follows: each group's scheduled LR times the controller's scale for that group
    (``schedule(t) * controller.scale``); without a controller, the scheduled LRs."""
    if controller is None:
        return list(lrs)
    return [lr * scale for lr, scale in zip(lrs, controller.scales, strict=True)]


class ScheduledLR(LRScheduler):
    """Drive every param group of ``optimizer`` from a schedule, with an optional controller.

    Args:
        optimizer: any ``torch.optim`` optimizer.
        schedule: one :class:`~lrlab.schedules.Schedule` for all groups, or one per group. Called with the
            number of optimizer steps done so far.
        relative: if True, a group's LR is ``initial_lr * schedule(step)`` (the schedule gives factors);
            if False (default), the schedule's value is the LR itself.
        controller: a :class:`~lrlab.controllers.Plateau` whose per-group scale multiplies the LR; feed it
            with :meth:`observe` (or ``step(metrics)``).
        momentum: a schedule (or one per group) for momentum, or Adam's beta1.
        last_epoch: the index of the last step done, for torch compatibility (``-1``: start fresh).

    Call :meth:`step` after each ``optimizer.step()``: the LR for update ``t`` (from 0) is
    ``schedule(t)``. Example::

        sched = ScheduledLR(opt, warmup(Cosine(0.1, 0.0, steps=900), steps=100))
        for batch in data:
            loss_fn(model(batch)).backward(); opt.step(); opt.zero_grad(); sched.step()
    """

    def __init__(self, optimizer: Optimizer, schedule: Schedule | Sequence[Schedule], *, relative: bool = False,
                 controller: Plateau | None = None, momentum: Schedule | Sequence[Schedule] | None = None,
                 last_epoch: int = -1) -> None:
        num_groups = len(optimizer.param_groups)
        self.schedules = _per_group("schedule", schedule, num_groups)
        self.momentum_schedules = None if momentum is None else _per_group("momentum", momentum, num_groups)
        self.momentum_key = None if momentum is None else momentum_key(optimizer)
        self.relative = relative
        self.controller = controller
        #: the step past which a controller that never had a metric is warned about (see :meth:`step`)
        self.unfed_limit = UNFED_STEPS + getattr(controller, "start_step", 0)  # a Greedy controller has none
        self._fed = False
        if controller is not None:
            controller.bind(num_groups)
        super().__init__(optimizer, last_epoch)

    @classmethod
    def from_plan(cls, optimizer: Optimizer, plan: Plan) -> ScheduledLR:
        """A scheduler driving ``optimizer`` with a built spec (:func:`lrlab.build`) and a fresh controller.

        The LR written into the optimizer is ``plan.lr`` itself, so it replaces the optimizer's own LR.
        Example: ``ScheduledLR.from_plan(optimizer, build("cosine()", Horizon(1000, base_lr=0.1)))``.
        """
        scheduler = cls(optimizer, plan.lr, controller=plan.new_controller(), momentum=plan.momentum)
        per_epoch = None if plan.horizon is None else plan.horizon.steps_per_epoch
        if scheduler.controller is not None and per_epoch is not None:
            scheduler.unfed_limit = scheduler.controller.start_step + UNFED_EPOCHS * per_epoch
        return scheduler

    def uncontrolled_lrs(self, step: int | None = None) -> list[float]:
        """Each group's LR from the schedule alone at ``step`` (default: the current step)."""
        t = self.last_epoch if step is None else step
        if self.relative:
            return [base * s(t) for base, s in zip(self.base_lrs, self.schedules, strict=True)]
        return [s(t) for s in self.schedules]

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The LR of each group at the current step (closed form, no recursion)."""
        return controlled_lrs(self.uncontrolled_lrs(), self.controller)

    def _apply(self) -> None:
        """Write the current step's LR (and momentum) into the optimizer's param groups."""
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        if self.momentum_schedules is not None:
            for group, s in zip(self.optimizer.param_groups, self.momentum_schedules, strict=True):
                value = s(self.last_epoch)
                if self.momentum_key == "betas":
                    group["betas"] = (value, *group["betas"][1:])
                else:
                    group["momentum"] = value
        self._last_lr = [float(group["lr"]) for group in self.optimizer.param_groups]

    def step(self, metrics: SupportsFloat | None = None) -> None:  # type: ignore[override]
        """Advance one optimizer step; with ``metrics``, first feed the controller (see :meth:`observe`).

        A controller that has not received a single metric by step :attr:`unfed_limit` (1000 steps past its
        ``start_step``, or 10 epochs from a plan that knows the steps per epoch) never changes the LR: this
        warns once, as a trainer that calls ``step()`` without the metric would otherwise fail silently.
        """
        if metrics is not None:
            self.observe(metrics)
        self._step_count += 1
        self.last_epoch += 1
        self._apply()
        if self.controller is not None and not self._fed and self.last_epoch == self.unfed_limit:
            warnings.warn(f"{type(self).__name__} has a plateau controller but no metric in {self.last_epoch} "
                          "steps, so it never changes the LR: call observe(val_loss) after each validation (in "
                          "Lightning and the Hugging Face Trainer, see lrlab.integrations)", UserWarning, stacklevel=2)

    def observe(self, metric: SupportsFloat) -> bool:
        """Feed the controller one observation (e.g. the validation loss each epoch); return whether it cut.

        The new LR takes effect at once. Raises ``ValueError`` when this scheduler has no controller.
        """
        if self.controller is None:
            raise ValueError("metrics were given but this schedule has no controller (e.g. Plateau)")
        self._fed = True
        reduced = self.controller.observe(float(metric), max(self.last_epoch, 0), self.uncontrolled_lrs())
        if reduced:
            self._apply()
        return reduced

    def state_dict(self) -> dict[str, Any]:
        """The step count and the controller's state: plain numbers, safe for ``weights_only=True`` loads."""
        return {
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "base_lrs": [float(b) for b in self.base_lrs],
            "controller": None if self.controller is None else self.controller.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` and set the optimizer's LRs for the restored step."""
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict["_step_count"])
        self.base_lrs = [float(b) for b in state_dict["base_lrs"]]
        if self.controller is not None and state_dict.get("controller") is not None:
            self.controller.load_state_dict(state_dict["controller"])
        self._apply()

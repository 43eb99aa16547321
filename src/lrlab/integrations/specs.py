"""A schedule spec as a torch scheduler for a given optimizer, its LR and its run length (for the trainers of
:mod:`lrlab.integrations`)."""

from __future__ import annotations

from torch.optim import Optimizer

from lrlab.adapter import ScheduledLR
from lrlab.spec import Horizon, build


def scheduler_for(optimizer: Optimizer, spec: str, total_steps: int, steps_per_epoch: int | None = None
                  ) -> ScheduledLR:
    """A :class:`~lrlab.adapter.ScheduledLR` driving ``optimizer`` with ``spec``, stepped once per optimizer step.

    Args:
        optimizer: its first group's ``lr`` is the base LR the spec's LR parameters default to; Adam's
            ``betas[1]`` gives ``warmup(steps=auto)`` its length.
        spec: a schedule spec, e.g. ``"warmup(frac=0.05) >> cosine()"`` or ``"cosine() * plateau(patience=2)"``.
        total_steps: optimizer steps in the whole run (``*_frac`` durations are fractions of it).
        steps_per_epoch: optimizer steps per epoch, for ``*_epochs`` durations (None: unknown).

    A spec with ``plateau(...)`` needs its metric: ``scheduler.observe(val_loss)`` after each validation (the
    callbacks of :mod:`~lrlab.integrations.lightning` and :mod:`~lrlab.integrations.hf_trainer` do it).
    """
    betas = optimizer.defaults.get("betas")
    horizon = Horizon(total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                      base_lr=float(optimizer.param_groups[0]["lr"]), beta2=None if betas is None else float(betas[1]))
    return ScheduledLR.from_plan(optimizer, build(spec, horizon))

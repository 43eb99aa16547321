"""The Hugging Face ``Trainer`` with an lrlab scheduler: ``Trainer(..., optimizers=(optimizer, scheduler))``
(``pip install 'lrlab[hf]'``).

The Trainer calls ``scheduler.step()`` after every optimizer step, except on instances of torch's
``ReduceLROnPlateau`` (``lrlab.ReduceLROnPlateau`` is one), which it steps with
``metrics[args.metric_for_best_model]`` after each evaluation instead (set ``metric_for_best_model``). A spec
(:func:`~lrlab.integrations.specs.scheduler_for`) steps every optimizer step; one with ``plateau(...)`` gets its
metric from :class:`FeedPlateau`. The example in docs/integrations.md is run by a test.
"""

from __future__ import annotations

from typing import Any

from torch.optim.lr_scheduler import ReduceLROnPlateau
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lrlab.adapter import ScheduledLR
from lrlab.errors import ConfigError


class FeedPlateau(TrainerCallback):
    """After each evaluation, ``scheduler.observe(metrics[metric])``: the plateau of a spec's scheduler.

    Args:
        scheduler: the :class:`~lrlab.adapter.ScheduledLR` given in ``optimizers=(optimizer, scheduler)``,
            with a plateau controller (a drop-in ReduceLROnPlateau needs no callback: the Trainer feeds it).
        metric: the evaluation metric the plateau watches (the Trainer prefixes ``eval_``).
    """

    def __init__(self, scheduler: ScheduledLR, metric: str = "eval_loss") -> None:
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ConfigError(f"scheduler={type(scheduler).__name__} is invalid for FeedPlateau: the Trainer feeds "
                              "a ReduceLROnPlateau itself (set metric_for_best_model); expected a spec's scheduler")
        if getattr(scheduler, "controller", None) is None:
            raise ConfigError(f"scheduler={type(scheduler).__name__} is invalid for FeedPlateau: expected a "
                              "scheduler with a plateau controller, e.g. a spec with plateau(...)")
        self.scheduler, self.metric = scheduler, metric

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    metrics: dict[str, float] | None = None, **kwargs: Any) -> None:
        metrics = metrics or {}
        if self.metric not in metrics:
            raise ConfigError(f"metric={self.metric!r} is not among the evaluation metrics: expected one of "
                              f"{sorted(metrics)}")
        self.scheduler.observe(metrics[self.metric])

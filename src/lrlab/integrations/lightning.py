"""Lightning: lrlab's schedules in ``configure_optimizers``, a spec's plateau fed its metric, a run recorded
into an lrlab store (``pip install 'lrlab[lightning]'``).

Lightning steps a scheduler every ``interval`` (``"step"``: each optimizer step, ``"epoch"``: each epoch) and
passes the ``monitor``-ed metric only to instances of torch's ``ReduceLROnPlateau`` (``lrlab.ReduceLROnPlateau``
is one). A spec's schedule advances every step, so a spec with ``plateau(...)`` gets its metric from
:class:`FeedPlateau` after each validation instead. The example in docs/integrations.md is run by a test.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CyclicLR as TorchCyclicLR
from torch.optim.lr_scheduler import OneCycleLR as TorchOneCycleLR
from torch.optim.lr_scheduler import ReduceLROnPlateau as TorchReduceLROnPlateau

from lrlab.adapter import ScheduledLR
from lrlab.errors import ConfigError
from lrlab.integrations.specs import scheduler_for
from lrlab.runs import RunMetrics
from lrlab.store import Store, WriterLock
from lrlab.torch_compat import CyclicLR, OneCycleLR
from lrlab.torch_compat.base import DropIn

#: classes stepped once per batch (torch's docs); every other drop-in class counts in the caller's unit, epochs
_PER_BATCH = (OneCycleLR, CyclicLR, TorchOneCycleLR, TorchCyclicLR)


def configure_optimizers(optimizer: Optimizer, schedule: str | Any, *, total_steps: int | None = None,
                         steps_per_epoch: int | None = None, monitor: str = "val_loss",
                         interval: str | None = None) -> dict[str, Any]:
    """What ``LightningModule.configure_optimizers`` returns for ``optimizer`` driven by ``schedule``.

    Args:
        optimizer: the module's optimizer.
        schedule: a spec string (built by :func:`~lrlab.integrations.specs.scheduler_for`, stepped every
            optimizer step), or a scheduler: a drop-in class (``lrlab.OneCycleLR``, ``lrlab.ReduceLROnPlateau``,
            ...), a :class:`~lrlab.adapter.ScheduledLR` or torch's own.
        total_steps: optimizer steps in the whole run (``trainer.estimated_stepping_batches``); a spec needs it.
        steps_per_epoch: optimizer steps per epoch, for a spec's ``*_epochs`` durations.
        monitor: the logged metric a plateau watches (``self.log("val_loss", ...)`` in ``validation_step``).
        interval: ``"step"`` or ``"epoch"``; default: ``"step"`` for a spec, a ScheduledLR, OneCycleLR and
            CyclicLR; ``"epoch"`` for every other drop-in class and ReduceLROnPlateau.

    Returns:
        ``{"optimizer": ..., "lr_scheduler": {"scheduler", "interval", "frequency"[, "monitor",
        "reduce_on_plateau"]}}``. A ReduceLROnPlateau gets ``reduce_on_plateau=True`` (Lightning passes it the
        metric); a spec or ScheduledLR with a plateau gets ``monitor`` for :class:`FeedPlateau`.
    """
    if interval not in (None, "step", "epoch"):
        raise ConfigError(f"interval={interval!r} is invalid: expected 'step' or 'epoch'")
    if isinstance(schedule, str):
        if total_steps is None:
            raise ConfigError(f"total_steps=None is invalid for the spec {schedule!r}: expected the run's optimizer "
                              "steps (trainer.estimated_stepping_batches)")
        schedule = scheduler_for(optimizer, schedule, total_steps, steps_per_epoch)
    config: dict[str, Any] = {"scheduler": schedule, "frequency": 1}
    if isinstance(schedule, TorchReduceLROnPlateau):
        config.update(interval=interval or "epoch", monitor=monitor, reduce_on_plateau=True)
    elif isinstance(schedule, ScheduledLR) and not isinstance(schedule, DropIn):
        config["interval"] = interval or "step"
        if schedule.controller is not None:
            config["monitor"] = monitor
    else:
        config["interval"] = interval or ("step" if isinstance(schedule, _PER_BATCH) else "epoch")
    return {"optimizer": optimizer, "lr_scheduler": config}


class FeedPlateau(pl.Callback):
    """After each validation, give the ``monitor``-ed metric to every scheduler whose config has a ``monitor`` but
    that Lightning does not feed itself (a spec's or a ScheduledLR's plateau): ``scheduler.observe(metric)``.

    Add it to ``Trainer(callbacks=[...])`` when :func:`configure_optimizers` got a spec with ``plateau(...)``.
    """

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        for config in trainer.lr_scheduler_configs:
            if config.reduce_on_plateau or config.monitor is None or not hasattr(config.scheduler, "observe"):
                continue
            value = trainer.callback_metrics.get(config.monitor)
            if value is None:
                raise ConfigError(f"monitor={config.monitor!r} is not logged: expected one of "
                                  f"{sorted(trainer.callback_metrics)} (self.log it in validation_step)")
            config.scheduler.observe(float(value))


def _momentum(group: dict[str, Any]) -> float | None:
    if "betas" in group:
        return float(group["betas"][0])
    return float(group["momentum"]) if "momentum" in group else None


class RecordRun(pl.Callback):
    """Record a Lightning run into the lrlab store in ``out`` (the schema ``lrlab compare`` writes), so
    ``lrlab report out`` and ``lrlab export out --tensorboard`` work on it.

    Args:
        out: the results directory; several runs (schedules, seeds) may be recorded into one, one at a time.
        schedule: the run's schedule name in the report.
        spec: the schedule's spec or description (default: ``schedule``).
        seed: the run's seed (a run of the same schedule and seed replaces the stored one).
        monitor: the logged validation loss; ``accuracy``: the logged validation accuracy, if any.

    Per optimizer step it stores the first param group's LR (the one the step used), its momentum (or Adam's
    beta1) and the training loss ``training_step`` returned; per epoch the logged ``monitor`` and ``accuracy``.
    """

    def __init__(self, out: str | Path, schedule: str, spec: str | None = None, seed: int = 0,
                 monitor: str = "val_loss", accuracy: str | None = None) -> None:
        self.out, self.schedule, self.spec, self.seed = Path(out), schedule, spec or schedule, seed
        self.monitor, self.accuracy = monitor, accuracy
        self.store: Store | None = None
        self.run_id = 0
        self.metrics = RunMetrics()
        self._epoch_losses: list[float] = []
        self._lr: tuple[float, float | None] = (math.nan, None)
        self._start = 0.0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from lrlab.runner import environment

        self.out.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.out, lock=WriterLock(self.out))
        config = self.store.meta("config") or {"task": type(pl_module).__name__, "schedules": {}, "epochs": 0}
        config["schedules"][self.schedule] = self.spec
        config["epochs"] = max(int(config["epochs"] or 0), int(trainer.max_epochs or 0))
        self.store.set_meta("config", config)
        self.store.set_meta("task", {"name": type(pl_module).__name__, "description": "a Lightning run"})
        env = {**environment(), "trainer": "lightning", "lightning": pl.__version__}
        self.store.set_meta("env", env)
        self.run_id = self.store.start_run(self.schedule, self.spec, self.seed, env)
        self.metrics, self._start = RunMetrics(), time.perf_counter()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        group = trainer.optimizers[0].param_groups[0]
        self._lr = (float(group["lr"]), _momentum(group))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        value = float(loss)
        self.metrics.lr.append(self._lr[0])
        self.metrics.momentum.append(self._lr[1])
        self.metrics.train_loss.append(value)
        self._epoch_losses.append(value)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._epoch_losses:
            return
        logged = trainer.callback_metrics
        val_loss = logged.get(self.monitor)
        val_acc = None if self.accuracy is None else logged.get(self.accuracy)
        self.metrics.end_epoch(trainer.current_epoch + 1, len(self.metrics.lr),
                               float(trainer.optimizers[0].param_groups[0]["lr"]), self._epoch_losses,
                               None if val_loss is None else float(val_loss),  # type: ignore[arg-type]
                               None if val_acc is None else float(val_acc))
        self._epoch_losses = []

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.store is None:
            return
        self.metrics.wall_s = time.perf_counter() - self._start
        self.store.finish_run(self.run_id, self.metrics)
        self.store.close()
        self.store = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.store is not None:  # the run stays "running": the report ignores it, a re-run replaces it
            self.store.close()
            self.store = None

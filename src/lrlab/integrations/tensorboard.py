"""A results store's runs as TensorBoard event files (``lrlab export DIR --tensorboard OUT``;
``pip install 'lrlab[tensorboard]'``).

Each finished run becomes ``OUT/<schedule>/seed<k>`` (the schedule's name with anything but letters, digits and
``._-`` replaced by ``-``), a run TensorBoard lists by that path, with the scalars ``lr``, ``momentum`` and
``train_loss`` at every optimizer step, ``val_loss`` and ``val_acc`` at the step each epoch ended, and the
schedule's name and spec as text. The store is only read.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from lrlab.errors import ConfigError
from lrlab.store import FINISHED, STORE_NAME, Store


def run_dir(schedule: str, seed: int) -> str:
    """Where a run's events go, relative to the export folder: ``<schedule as a folder name>/seed<seed>``."""
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '-', schedule).strip('-') or 'schedule'}/seed{seed}"


def export_tensorboard(directory: str | Path, out: str | Path) -> int:
    """Write every finished run of the store in ``directory`` as event files under ``out``; return how many.

    Raises :class:`~lrlab.errors.ConfigError` when tensorboard is not installed or ``directory`` holds no store.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install 'lrlab[tensorboard]'") from None
    directory = Path(directory)
    if not (directory / STORE_NAME).is_file():
        raise ConfigError(f"directory={str(directory)!r} holds no results ({STORE_NAME}): run `lrlab compare` first")
    with Store(directory, readonly=True) as store:
        runs = [r for r in store.runs() if r.status in FINISHED]
        for run in runs:
            steps, epochs = store.step_metrics(run.id), store.epoch_metrics(run.id)
            with SummaryWriter(str(Path(out) / run_dir(run.schedule, run.seed))) as writer:
                writer.add_text("schedule", f"{run.schedule}: `{run.spec}` (seed {run.seed}, {run.status})")
                for name in ("lr", "momentum", "train_loss"):
                    for step, value in zip(steps["step"], steps[name], strict=True):
                        if value is not None and math.isfinite(value):
                            writer.add_scalar(name, value, step)
                for name in ("val_loss", "val_acc"):
                    for step, value in zip(epochs["step"], epochs[name], strict=True):
                        if value is not None and math.isfinite(value):
                            writer.add_scalar(name, value, step)
    return len(runs)

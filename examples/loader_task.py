"""A user's own training for lrlab: a Dataset and DataLoaders, RMSprop with two param groups, and a custom step.

Run it from the repository root (the current directory is importable)::

    lrlab find-lr --task examples.loader_task:make_task
    lrlab compare --task examples.loader_task:make_task --seeds 3 --schedules 'constant()' 'onecycle()'
    lrlab tune-lr --task examples.loader_task:make_task --schedule 'cosine()'

The second form of the task protocol (:class:`lrlab.tasks.LoaderTask`): lrlab calls ``train_batches(seed,
epoch)`` for each epoch's batches, ``make_optimizer(model, lr)`` for the optimizer, and ``train_step`` for each
optimizer step; it owns the schedule (each param group at its ratio to ``lr``), the seeding, the device, the
store and divergence detection.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from examples.my_task import spirals
from lrlab.tasks import LoaderTask, accuracy, cross_entropy

BATCH = 50
#: micro-batches per optimizer step (gradient accumulation): each of BATCH // ACCUMULATE examples
ACCUMULATE = 2
#: the gradients' largest global L2 norm (clipping)
MAX_NORM = 1.0
#: the backbone's LR as a fraction of the head's (the base LR the schedule drives)
BACKBONE_RATIO = 0.5


class SpiralNet(nn.Module):
    """A 2-64-64 ReLU backbone and a 64-2 linear head: ``(B, 2) -> (B, 2)`` logits."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))


def make_optimizer(model: SpiralNet, lr: float) -> torch.optim.Optimizer:
    """RMSprop (not one of lrlab's built-in optimizers) with the backbone at ``BACKBONE_RATIO x lr``, the head at
    ``lr``."""
    groups = [{"params": model.backbone.parameters(), "lr": lr * BACKBONE_RATIO},
              {"params": model.head.parameters()}]
    return torch.optim.RMSprop(groups, lr=lr, alpha=0.9)


def train_step(model: nn.Module, batch: tuple[Tensor, Tensor], optimizer: torch.optim.Optimizer) -> Tensor:
    """One optimizer step over ``ACCUMULATE`` micro-batches, gradients clipped to ``MAX_NORM``; the mean loss."""
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros(())
    for xs, ys in zip(x.chunk(ACCUMULATE), y.chunk(ACCUMULATE), strict=True):
        loss = F.cross_entropy(model(xs), ys) / ACCUMULATE
        loss.backward()
        total += loss.detach().cpu()
    nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
    optimizer.step()
    return total


def make_task() -> LoaderTask:
    """Two spirals (1000 train / 500 validation points, data seed 0) as a Dataset, batches of 50, RMSprop lr 1e-2."""
    generator = torch.Generator().manual_seed(0)
    train: Dataset = TensorDataset(*spirals(1000, 0.05, generator))
    val: Dataset = TensorDataset(*spirals(500, 0.05, generator))

    def train_batches(seed: int, epoch: int) -> DataLoader:
        # the run's own order: a generator seeded by (seed, epoch), so a resumed run sees the same batches
        order = torch.Generator().manual_seed(seed * 100_003 + epoch)
        return DataLoader(train, batch_size=BATCH, shuffle=True, drop_last=True, generator=order)

    def val_batches() -> DataLoader:
        return DataLoader(val, batch_size=250)

    return LoaderTask(
        name="spirals-loader",
        description="Two spirals through DataLoaders, RMSprop with backbone/head param groups, a clipped, "
                    "accumulated step: an example of your own training.",
        make_model=SpiralNet,
        train_batches=train_batches,
        val_batches=val_batches,
        make_optimizer=make_optimizer,
        lr=1e-2,
        epochs=5,
        loss_fn=cross_entropy,
        accuracy_fn=accuracy,
        train_step=train_step,
        batch_size=BATCH,
        info={"data": "examples/my_task.py spirals(seed 0): 1000 train, 500 validation"},
        target_acc=0.9,
    )

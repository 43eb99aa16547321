"""A user's own task for lrlab: two interleaved spirals, classified by a small MLP.

Run it from the repository root (the current directory is importable)::

    lrlab compare --task examples.my_task:make_task --epochs 20 --seeds 3

The protocol: a function with no arguments that returns an :class:`lrlab.tasks.Task` — fixed train/validation
tensors held in memory, a model factory (drawing its init from torch's global RNG, which lrlab seeds per
run), a loss, an optional accuracy, the optimizer defaults, the batch size and the number of epochs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lrlab.tasks import OptimizerDefaults, Task, accuracy, cross_entropy, tensors_sha256


def spirals(n: int, noise: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` points of two spirals (``n // 2`` each) with Gaussian noise: inputs ``(n, 2)``, labels ``(n,)``."""
    half = n // 2
    angle = torch.rand(half, generator=generator) * 3 * math.pi + 0.5
    arm = torch.stack([angle * torch.cos(angle), angle * torch.sin(angle)], dim=1) / (3 * math.pi)
    x = torch.cat([arm, -arm]) + noise * torch.randn(2 * half, 2, generator=generator)
    y = torch.cat([torch.zeros(half, dtype=torch.long), torch.ones(half, dtype=torch.long)])
    return x, y


def make_model() -> nn.Module:
    """A 2-64-64-2 ReLU MLP: ``(B, 2) -> (B, 2)`` logits."""
    return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))


def make_task() -> Task:
    """Two spirals: 2000 train / 1000 validation points (fixed data seed 0), Adam lr 0.01, batch 50."""
    generator = torch.Generator().manual_seed(0)
    x_train, y_train = spirals(2000, 0.05, generator)
    x_val, y_val = spirals(1000, 0.05, generator)
    return Task(
        name="two-spirals",
        description="Two interleaved spirals (2000/1000 points) with a 2-64-64-2 ReLU MLP: an example user task.",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        make_model=make_model,
        loss_fn=cross_entropy,
        accuracy_fn=accuracy,
        optimizer=OptimizerDefaults(name="adam", lr=0.01),
        batch_size=50,
        epochs=20,
        vmappable=True,
        info={"data": "examples/my_task.py spirals(seed 0)", "data_sha256": tensors_sha256(x_train, y_train)},
        target_acc=0.9,
    )

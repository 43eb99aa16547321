"""``mnist1d-mlp`` (the default task): the MNIST-1D paper's MLP, 40-100-100-10 with ReLU, trained with SGD.

About 1 s per 30-epoch run on a 2-core CPU; schedules separate clearly on it (the paper's MLP reaches ~68%
test accuracy, so there is room between a good and a bad schedule).
"""

from __future__ import annotations

from torch import nn

from lrlab.tasks.base import OptimizerDefaults, Task, accuracy, cross_entropy
from lrlab.tasks.mnist1d_data import PAPER_SAMPLES, load_mnist1d


def make_mlp() -> nn.Module:
    """A fresh 40-100-100-10 ReLU MLP (torch default init, from the global RNG): ``(B, 40) -> (B, 10)`` logits."""
    return nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))


def make_task(num_samples: int = PAPER_SAMPLES, weight_decay: float = 0.0) -> Task:
    """The ``mnist1d-mlp`` task: 4000 train / 1000 validation signals, SGD-momentum lr 0.1, 30 epochs of 40 steps.

    Args:
        num_samples: MNIST-1D signals generated, 80% train / 20% validation.
        weight_decay: SGD's L2 penalty.
    """
    x_train, y_train, x_val, y_val, info = load_mnist1d(num_samples)
    return Task(
        name="mnist1d-mlp",
        description="MNIST-1D (4000/1000 signals of length 40, 10 classes) with the paper's 40-100-100-10 MLP; "
        "~1 s per run on a CPU, and schedules separate clearly (the default task).",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        make_model=make_mlp,
        loss_fn=cross_entropy,
        accuracy_fn=accuracy,
        optimizer=OptimizerDefaults(name="sgd", lr=0.1, momentum=0.9, weight_decay=weight_decay),
        batch_size=100,
        epochs=30,
        vmappable=True,
        info=info,
        target_acc=0.6,
    )

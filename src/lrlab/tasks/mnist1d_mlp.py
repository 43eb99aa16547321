"""``mnist1d-mlp`` (the default task): the MNIST-1D paper's MLP, 40-100-100-10 with ReLU, trained with SGD.

About 1 s per 30-epoch run on a 2-core CPU; the paper's MLP reaches ~65% validation accuracy, so there is room
between a good and a bad schedule.

Weight decay 2e-3 keeps the default study out of overfitting (issue 13, ``bench/default_study.py``,
``docs/default-study.md``). Without it the MLP memorizes its 4000 training signals: every schedule's validation
loss bottoms out near epoch 12 and rises 10-16% by epoch 30 (constant LR: 63%), so a ranking by final loss
rewards StepLR, whose first cut at epoch 10 is an implicit early stop. With 2e-3 every decaying schedule ends
within 1.5% of its best epoch's validation loss and the same schedule ranks first by final and by best-epoch
loss, at the same training time; the final accuracies are 1.3-2.3 points lower. Weight decay 1e-3 is not enough
(plateau ends 5.8% above its best), nor is more data (10 000 or 20 000 signals: cosine still ends 10-12%
above its best, at about 4x and 10x the training time).
"""

from __future__ import annotations

from torch import nn

from lrlab.tasks.base import OptimizerDefaults, Task, accuracy, cross_entropy
from lrlab.tasks.mnist1d_data import PAPER_SAMPLES, load_mnist1d


def make_mlp() -> nn.Module:
    """A fresh 40-100-100-10 ReLU MLP (torch default init, from the global RNG): ``(B, 40) -> (B, 10)`` logits."""
    return nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))


#: SGD's L2 penalty of the default task: the smallest of those measured that keeps the default study from
#: overfitting (see the module docstring)
WEIGHT_DECAY = 2e-3


def make_task(num_samples: int = PAPER_SAMPLES, weight_decay: float = WEIGHT_DECAY) -> Task:
    """The ``mnist1d-mlp`` task: 4000 train / 1000 validation signals, SGD-momentum lr 0.1 with weight decay 2e-3,
    30 epochs of 40 steps.

    Args:
        num_samples: MNIST-1D signals generated, 80% train / 20% validation.
        weight_decay: SGD's L2 penalty.
    """
    x_train, y_train, x_val, y_val, info = load_mnist1d(num_samples)
    return Task(
        name="mnist1d-mlp",
        description=f"MNIST-1D ({len(x_train)}/{len(x_val)} signals of length 40, 10 classes) with the paper's "
        f"40-100-100-10 MLP, SGD-momentum with weight decay {weight_decay:g}; ~1 s per run on a CPU (the default "
        "task). Weight decay 2e-3 keeps it out of overfitting: every decaying schedule of the default study ends "
        "within 1.5% of its best epoch's validation loss (without it, 10-16% above, and StepLR wins by stopping "
        "first).",
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

"""``digits-mlp``: scikit-learn's bundled 8x8 handwritten digits with a small MLP, a sub-second smoke test.

1797 images, pixel values 0..16 scaled to [0, 1], split 80/20 stratified by class with a fixed seed (its own
``RandomState``; the global RNGs are not touched). The task is so easy that any sane schedule ties on it.
"""

from __future__ import annotations

import json
from functools import lru_cache

import sklearn
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor, nn

from lrlab.tasks.base import OptimizerDefaults, Task, accuracy, cross_entropy, tensors_sha256

_SPLIT = {"test_size": 0.2, "random_state": 0}


@lru_cache(maxsize=1)
def _load() -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, str]]:
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, stratify=y, **_SPLIT)
    tensors = (torch.from_numpy(x_train).float(), torch.from_numpy(y_train).long(),
               torch.from_numpy(x_val).float(), torch.from_numpy(y_val).long())
    info = {
        "dataset": "sklearn.datasets.load_digits, pixels / 16, train_test_split(stratify=y)",
        "split_args": json.dumps(_SPLIT, sort_keys=True),
        "sklearn_version": sklearn.__version__,
        "data_sha256": tensors_sha256(*tensors),
    }
    return (*tensors, info)


def make_mlp() -> nn.Module:
    """A fresh 64-64-10 ReLU MLP (torch default init, from the global RNG): ``(B, 64) -> (B, 10)`` logits."""
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def make_task() -> Task:
    """The ``digits-mlp`` task: 1437 train / 360 validation images, SGD-momentum lr 0.1, 20 epochs, batch 64."""
    *tensors, info = _load()
    x_train, y_train, x_val, y_val = (t.clone() for t in tensors)
    return Task(
        name="digits-mlp",
        description="scikit-learn's 8x8 digits (1437/360 images, 10 classes) with a 64-64-10 MLP; sub-second. "
        "A smoke test: schedules tie on it (~97% validation accuracy), so it cannot rank them.",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        make_model=make_mlp,
        loss_fn=cross_entropy,
        accuracy_fn=accuracy,
        optimizer=OptimizerDefaults(name="sgd", lr=0.1, momentum=0.9),
        batch_size=64,
        epochs=20,
        vmappable=True,
        info=dict(info),
        target_acc=0.95,
    )

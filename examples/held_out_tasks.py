"""Two tasks no LR rule of lrlab was fitted to, for checking ``tune-lr`` and the range test on fresh ground.

- ``sine``: regression of a noisy sine (the task a new user brought in issue 12) with a 2-64-64-1 tanh MLP and
  Adam: no accuracy, a mean-squared-error loss.
- ``deep_digits``: scikit-learn's digits with a deep, narrow ReLU MLP (8 hidden layers of 48) and SGD-momentum:
  a harder optimisation than ``digits-mlp``'s one hidden layer.

    lrlab tune-lr --task examples.held_out_tasks:sine --schedule onecycle --seeds 3
    python bench/lr_finder.py --tasks examples.held_out_tasks:sine,examples.held_out_tasks:deep_digits --jobs 2
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lrlab.tasks import OptimizerDefaults, Task, load_task, tensors_sha256


def _noisy_sine(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points ``x ~ U(-pi, pi)``, ``y = sin(2x) + 0.1 * N(0, 1)``: inputs and targets of shape ``(n, 1)``."""
    x = (torch.rand(n, 1, generator=generator) * 2 - 1) * math.pi
    return x, torch.sin(2 * x) + 0.1 * torch.randn(n, 1, generator=generator)


def sine() -> Task:
    """Noisy sine regression: 2000 train / 1000 validation points (data seed 0), Adam lr 0.01, batch 32, 15 epochs."""
    generator = torch.Generator().manual_seed(0)
    x_train, y_train = _noisy_sine(2000, generator)
    x_val, y_val = _noisy_sine(1000, generator)
    return Task(
        name="sine", description="Noisy sine regression (2000/1000 points) with a 2-64-64-1 tanh MLP and Adam.",
        x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
        make_model=lambda: nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1)),
        loss_fn=F.mse_loss, accuracy_fn=None, optimizer=OptimizerDefaults(name="adam", lr=0.01), batch_size=32,
        epochs=15, vmappable=True, info={"data_sha256": tensors_sha256(x_train, y_train)})


def _deep_mlp() -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(64, 48), nn.ReLU()]
    for _ in range(7):
        layers += [nn.Linear(48, 48), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(48, 10))


def deep_digits() -> Task:
    """scikit-learn's digits (as ``digits-mlp``) with an 8-hidden-layer ReLU MLP, SGD-momentum lr 0.05, 20 epochs."""
    digits = load_task("digits-mlp")
    return Task(
        name="deep-digits", description="scikit-learn's digits with a deep narrow MLP (8 hidden layers of 48).",
        x_train=digits.x_train, y_train=digits.y_train, x_val=digits.x_val, y_val=digits.y_val,
        make_model=_deep_mlp, loss_fn=digits.loss_fn, accuracy_fn=digits.accuracy_fn,
        optimizer=OptimizerDefaults(name="sgd", lr=0.05, momentum=0.9), batch_size=64, epochs=20, vmappable=True,
        info=dict(digits.info), target_acc=0.95)

"""The task protocol: what every task, built-in or a user's own, hands to the trainer.

A :class:`Task` is a fixed train/validation split held in memory, a model factory, a loss, an optional
accuracy and the optimizer defaults a schedule study on a CPU should start from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrlab.errors import ConfigError

#: the optimizer name of a :class:`~lrlab.tasks.LoaderTask`, whose ``make_optimizer`` builds it
CUSTOM = "custom"


@dataclass(frozen=True)
class OptimizerDefaults:
    """The optimizer a task trains best with, before any schedule is applied.

    Args:
        name: ``"sgd"``, ``"adam"``, ``"adamw"``, or a schedule-free one (Defazio et al. 2024, the optional
            ``schedulefree`` package): ``"sgd-schedulefree"``, ``"adamw-schedulefree"``. A schedule-free optimizer
            averages its iterates instead of decaying the LR: train it with ``constant()`` (a warmup before it
            acts as the package's ``warmup_steps``); it is built in train mode, and validation runs at the
            averaged weights (``optimizer.eval()``). ``"custom"`` for a :class:`~lrlab.tasks.LoaderTask`'s own
            ``make_optimizer`` (only ``lr`` applies then).
        lr: base (peak) learning rate; a schedule multiplies or replaces it.
        momentum: SGD momentum in [0, 1) (ignored by Adam/AdamW, whose momentum is ``betas[0]``; schedule-free
            SGD's interpolation weight).
        nesterov: SGD Nesterov momentum (needs ``momentum > 0``).
        weight_decay: L2 penalty (SGD, Adam) or decoupled decay (AdamW), >= 0.
        betas: Adam/AdamW ``(beta1, beta2)``, each in [0, 1).
    """

    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        if self.name not in _OPTIMIZERS and self.name != CUSTOM:
            raise ConfigError(f"optimizer={self.name!r} is invalid: expected one of {sorted(_OPTIMIZERS)}")
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr!r} is invalid: expected a number > 0")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum={self.momentum!r} is invalid: expected 0 <= momentum < 1")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov=True is invalid with momentum=0: expected momentum > 0")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay={self.weight_decay!r} is invalid: expected a number >= 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas={self.betas!r} is invalid: expected two numbers in [0, 1)")


def _sgd(d: OptimizerDefaults, params: Iterable, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=d.momentum, nesterov=d.nesterov, weight_decay=d.weight_decay)


def _adam(d: OptimizerDefaults, params: Iterable, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=d.betas, weight_decay=d.weight_decay)


def _adamw(d: OptimizerDefaults, params: Iterable, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, betas=d.betas, weight_decay=d.weight_decay)


def _schedulefree(kind: str) -> Callable[[OptimizerDefaults, Iterable, float], torch.optim.Optimizer]:
    def make(d: OptimizerDefaults, params: Iterable, lr: float) -> torch.optim.Optimizer:
        try:
            import schedulefree
        except ImportError:
            raise ConfigError(f"optimizer={d.name!r} needs the schedulefree package: pip install "
                              "'lrlab[schedulefree]'") from None
        if kind == "sgd":
            optimizer = schedulefree.SGDScheduleFree(params, lr=lr, momentum=d.momentum, weight_decay=d.weight_decay)
        else:
            optimizer = schedulefree.AdamWScheduleFree(params, lr=lr, betas=d.betas, weight_decay=d.weight_decay)
        optimizer.train()  # its step refuses to run in eval mode, the mode it is built in
        return optimizer

    return make


_OPTIMIZERS: dict[str, Callable[[OptimizerDefaults, Iterable, float], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adamw,
    "sgd-schedulefree": _schedulefree("sgd"),
    "adamw-schedulefree": _schedulefree("adamw"),
}
#: optimizers that average their iterates: validated at the averaged weights, trained by the sequential trainer
SCHEDULE_FREE = frozenset({"sgd-schedulefree", "adamw-schedulefree"})


def make_optimizer(defaults: OptimizerDefaults, params: Iterable, lr: float | None = None) -> torch.optim.Optimizer:
    """Build the ``torch.optim`` optimizer ``defaults`` describes over ``params``.

    Args:
        defaults: the optimizer's name and hyper-parameters.
        params: model parameters (or param groups), as for any ``torch.optim`` optimizer.
        lr: overrides ``defaults.lr`` when given (e.g. the peak LR of a sweep).
    """
    if defaults.name == CUSTOM:
        raise ValueError("optimizer 'custom' is built by its LoaderTask's make_optimizer (lrlab.tasks.loop)")
    return _OPTIMIZERS[defaults.name](defaults, params, defaults.lr if lr is None else lr)


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy in nats over every position: logits ``(..., C)``, integer targets ``(...)``."""
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten())


def accuracy(logits: Tensor, targets: Tensor) -> Tensor:
    """Fraction (0..1) of positions whose arg-max logit is the target: logits ``(..., C)``, targets ``(...)``."""
    return (logits.argmax(dim=-1) == targets).float().mean()


def tensors_sha256(*tensors: Tensor) -> str:
    """Hex sha256 of the tensors' dtypes, shapes and bytes: a fingerprint of a task's data for ``info``."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Task:
    """A training task: fixed data split, model factory, loss, metric and optimizer defaults.

    Args:
        name: the name a user types (``"mnist1d-mlp"``) or the entry point it was loaded from.
        description: one or two sentences: data, model, and what the task is good for.
        x_train, y_train: training inputs and targets (first dimension: examples).
        x_val, y_val: validation inputs and targets, never trained on.
        make_model: builds a fresh model, drawing its init from torch's global RNG (the caller seeds it).
        loss_fn: ``(model output, targets) -> scalar`` mean loss.
        accuracy_fn: ``(model output, targets) -> scalar`` fraction correct, or None (not classification).
        optimizer: the optimizer and base LR the task trains well with.
        batch_size: examples per optimizer step.
        epochs: passes over ``x_train`` of the default run.
        vmappable: True when the model has no BatchNorm/dropout and runs under ``torch.func.vmap``.
        info: provenance for the store (dataset arguments, corpus hash, versions), all strings.
        target_acc: validation accuracy (0..1) that "epochs to target" counts to by default, or None.
    """

    name: str
    description: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    make_model: Callable[[], nn.Module]
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    accuracy_fn: Callable[[Tensor, Tensor], Tensor] | None
    optimizer: OptimizerDefaults
    batch_size: int
    epochs: int
    vmappable: bool = False
    info: dict[str, str] = field(default_factory=dict)
    target_acc: float | None = None

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("val", self.x_val, self.y_val)):
            if len(x) == 0 or len(x) != len(y):
                raise ConfigError(f"task {self.name!r}: x_{split} has {len(x)} examples and y_{split} "
                                  f"{len(y)}: expected the same number, > 0")
        if self.optimizer.name == CUSTOM:
            raise ConfigError(f"task {self.name!r}: optimizer name {CUSTOM!r} is for a LoaderTask's make_optimizer: "
                              f"expected one of {sorted(_OPTIMIZERS)}")
        if self.batch_size < 1 or self.epochs < 1:
            raise ConfigError(f"task {self.name!r}: batch_size={self.batch_size}, epochs={self.epochs} "
                              "are invalid: expected integers >= 1")


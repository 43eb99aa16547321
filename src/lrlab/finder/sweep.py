"""The LR range test on one model: sweep the learning rate up over a short run and record the loss.

:func:`find_lr` trains a model for ``num_steps`` updates while the LR grows from ``min_lr`` to ``max_lr``
(exponentially by default), records the loss after each update (:class:`~lrlab.finder.curves.LRCurve`), and
puts the model, the optimizer and every random-number generator back exactly as they were. What to read off
the curve is :mod:`lrlab.finder.suggest`'s question.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lrlab.finder.curves import LRCurve, Recorder

__all__ = ["MODES", "check_sweep", "find_lr", "preserved_rng", "sweep_lrs"]

MODES = ("exp", "linear")


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore torch's (CPU and every initialised CUDA device), Python's and NumPy's global RNG states on exit."""
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() \
        else None
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


@contextmanager
def _preserved(model: nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Restore the model's parameters, gradients, buffers and train/eval flags and the optimizer's state on exit."""
    params = [(p, p.detach().clone(), None if p.grad is None else p.grad.detach().clone())
              for p in model.parameters()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    modes = [(m, m.training) for m in model.modules()]
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    try:
        yield
    finally:
        with torch.no_grad():
            for p, value, grad in params:
                p.copy_(value)
                p.grad = grad
            for b, value in buffers:
                b.copy_(value)
        for m, training in modes:
            m.training = training
        optimizer.load_state_dict(optimizer_state)


def sweep_lrs(min_lr: float, max_lr: float, num_steps: int, mode: str) -> list[float]:
    """The LR of each of the ``num_steps`` updates: log-spaced (``mode="exp"``) or evenly spaced (``"linear"``)."""
    if mode == "exp":
        return [min_lr * (max_lr / min_lr) ** (k / (num_steps - 1)) for k in range(num_steps)]
    return [min_lr + (max_lr - min_lr) * k / (num_steps - 1) for k in range(num_steps)]


def check_sweep(min_lr: float, max_lr: float, num_steps: int, mode: str, smooth: float,
                diverge_factor: float) -> None:
    """Raise ValueError naming the first sweep setting out of range (see :func:`find_lr`)."""
    if not (0 < min_lr < max_lr and math.isfinite(max_lr)):
        raise ValueError(f"min_lr={min_lr!r}, max_lr={max_lr!r} are invalid: expected 0 < min_lr < max_lr")
    if not (isinstance(num_steps, int) and num_steps >= 2):
        raise ValueError(f"num_steps={num_steps!r} is invalid: expected an integer >= 2")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is invalid: expected one of {list(MODES)}")
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth={smooth!r} is invalid: expected 0 <= smooth < 1")
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor={diverge_factor!r} is invalid: expected a number > 1")


def _cycle(batches: Iterable) -> Iterator:
    """The batches again and again (a DataLoader reshuffles each pass); ends when a pass yields nothing."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            return


def find_lr(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[Any, Any]],
    loss_fn: Callable[[Any, Any], Tensor],
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exp",
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
    val_fn: Callable[[nn.Module], float | Tensor] | None = None,
    seed: int | None = None,
) -> LRCurve:
    """Run the LR range test on ``model`` and ``optimizer``; return the curve and leave both as they were.

    Update ``k`` (0-based) uses the LR ``min_lr * (max_lr / min_lr) ** (k / (num_steps - 1))`` (``mode="exp"``)
    or ``min_lr + (max_lr - min_lr) * k / (num_steps - 1)`` (``"linear"``) for the first param group; every
    other group keeps its ratio to the first (group ``i`` gets ``lr x lr_i / lr_0``, its initial ``lr_i``).
    The sweep stops when the smoothed loss exceeds ``diverge_factor`` x the lowest smoothed loss so far, or a
    loss is not finite.

    Args:
        model: trained in place during the sweep; parameters, gradients, buffers and train/eval modes are
            restored afterwards, bit for bit.
        optimizer: an optimizer over ``model``'s parameters; its state (momentum buffers, step counts, each
            group's ``lr``) is restored afterwards.
        batches: ``(inputs, targets)`` pairs, e.g. a ``DataLoader``; iterated again when exhausted (a one-shot
            iterator that runs dry ends the sweep early, without a divergence mark).
        loss_fn: ``loss_fn(model(inputs), targets)`` -> scalar loss to minimise (assumed positive: divergence
            compares it with a multiple of its best).
        min_lr, max_lr: the first group's LR at the first and the last update, ``0 < min_lr < max_lr``.
        num_steps: updates in the sweep (>= 2).
        mode: ``"exp"`` (LR log-spaced: the usual choice) or ``"linear"``.
        smooth: EMA factor for the smoothed loss, ``0 <= smooth < 1`` (0: none).
        diverge_factor: stop when the smoothed loss exceeds this multiple of its best (> 1).
        val_fn: when given, ``val_fn(model)`` (called under ``torch.no_grad()``) is the loss recorded after each
            update, instead of the next training batch's; it may switch to ``model.eval()`` and back.
        seed: stored in the curve, for the caller's bookkeeping (the sweep itself draws no random numbers
            beyond what the model's forward pass and the batches do; all RNG states are restored).

    Returns:
        The :class:`LRCurve` (``lrs`` are the first group's).

    Raises:
        ValueError: an argument out of range, an optimizer whose first group has LR 0, or no batches.
    """
    check_sweep(min_lr, max_lr, num_steps, mode, smooth, diverge_factor)
    base = float(optimizer.param_groups[0]["lr"])
    if not base > 0:
        raise ValueError(f"optimizer.param_groups[0]['lr']={base!r} is invalid: expected > 0 (the other groups' "
                         "LRs are kept as ratios to it)")
    ratios = [float(group["lr"]) / base for group in optimizer.param_groups]
    schedule = sweep_lrs(min_lr, max_lr, num_steps, mode)
    with preserved_rng(), _preserved(model, optimizer):
        stream = _cycle(batches)

        def forward() -> Tensor | None:
            batch = next(stream, None)
            if batch is None:
                return None
            inputs, targets = batch
            return loss_fn(model(inputs), targets)

        loss = forward()
        if loss is None:
            raise ValueError("batches is empty: expected at least one (inputs, targets) batch")
        recorder = Recorder(smooth, diverge_factor)
        for k, lr in enumerate(schedule):
            for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
                group["lr"] = lr * ratio
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last = k == num_steps - 1
            next_loss = forward() if val_fn is None or not last else None
            if val_fn is not None:
                with torch.no_grad():
                    measured = float(val_fn(model))
            elif next_loss is None:
                break  # a one-shot iterator ran dry
            else:
                measured = float(next_loss.detach())
            if not recorder.add(k, lr, measured) or next_loss is None:
                break
            loss = next_loss
    return recorder.curve(seed)

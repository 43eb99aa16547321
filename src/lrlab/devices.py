"""Where runs train and in which precision: ``--device auto|cpu|cuda|cuda:N|mps``, ``--precision fp32|bf16|fp16``.

:func:`check_device` checks the text (no torch: a config validates without it);
:func:`resolve_device` turns ``auto`` into ``cuda`` when CUDA is present (else ``cpu``) and refuses, in one line,
a device this machine does not have. Trainers move each batch with :func:`to_device`, run the step under
:func:`autocast` and, for fp16 on CUDA, scale the loss with :func:`grad_scaler`'s scaler.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lrlab.errors import ConfigError, short_repr

if TYPE_CHECKING:
    import torch

__all__ = ["PRECISIONS", "autocast", "check_device", "grad_scaler", "resolve_device", "to_device"]

_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
#: ``fp32``: no autocast; ``bf16``/``fp16``: the forward under ``torch.autocast`` in that type
PRECISIONS = ("fp32", "bf16", "fp16")


def check_device(text: str) -> str:
    """``text`` when it names a device kind lrlab knows (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``), else
    ConfigError; whether the machine has it is :func:`resolve_device`'s question."""
    if not isinstance(text, str) or not _DEVICE.fullmatch(text):
        raise ConfigError(f"device={short_repr(text)} is invalid: expected auto, cpu, cuda, cuda:N or mps")
    return text


def resolve_device(text: str) -> str:
    """The device ``text`` names on this machine: ``auto`` is ``cuda`` when CUDA is available, else ``cpu``.

    Raises ConfigError (one line) for ``cuda``/``cuda:N``/``mps`` where this machine or this torch build has
    none, or a CUDA index beyond the devices present.
    """
    import torch

    check_device(text)
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise ConfigError(f"device={text!r} is invalid: {why} (torch {torch.__version__}): expected cpu or auto")
        index = int(text.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={text!r} is invalid: expected cuda:0..cuda:{torch.cuda.device_count() - 1}")
    if text == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device='mps' is invalid: Apple's MPS is not available here: expected cpu or auto")
    return text


def to_device(batch: Any, device: str) -> Any:
    """``batch`` with every tensor in it (nested in tuples, lists and mappings) on ``device``; other values as is."""
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=batch.is_pinned())
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` in ``precision`` (bf16 or fp16); a null context for fp32."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def grad_scaler(device: str, precision: str) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 on CUDA (its small exponent range underflows gradients), else None."""
    import torch

    if precision != "fp16" or torch.device(device).type != "cuda":
        return None
    return torch.amp.GradScaler("cuda")

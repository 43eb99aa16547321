"""The LR range test: sweep the learning rate up over a short run, read a peak LR off the loss curve.

- :mod:`lrlab.finder.curves`: what a sweep records (:class:`LRCurve`, :class:`Band`, :class:`FinderResult`);
- :mod:`lrlab.finder.suggest`: what to read off the curves (:func:`steepest`, :func:`valley`,
  :func:`minimum_div_10`, combined over seeds by :func:`combine_suggestions`);
- :mod:`lrlab.finder.sweep`: :func:`find_lr`, the sweep on one model and optimizer (torch);
- :mod:`lrlab.finder.task`: :func:`find_lr_for_task`, a task's sweep over seeds, batched where it can be (torch);
- :mod:`lrlab.finder.plot`: :func:`plot_finder`, the figure (matplotlib).

The first two and the figure need no torch, so reading a stored result (``lrlab report``) never loads it:
the torch names are imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

from lrlab.finder.curves import Band, FinderResult, LRCurve, Recommendation, curve_band, ema
from lrlab.finder.plot import plot_finder
from lrlab.finder.suggest import METHODS, combine_suggestions, describe, minimum_div_10, steepest, valley

# torch-backed name -> the submodule that defines it, imported on first access
_LAZY: dict[str, str] = {
    "find_lr": "lrlab.finder.sweep",
    "preserved_rng": "lrlab.finder.sweep",
    "find_lr_for_task": "lrlab.finder.task",
    "sweep_steps": "lrlab.finder.task",
    "task_batches": "lrlab.finder.task",
}

__all__ = [
    "METHODS",
    "Band",
    "FinderResult",
    "LRCurve",
    "Recommendation",
    "combine_suggestions",
    "curve_band",
    "describe",
    "ema",
    "find_lr",
    "find_lr_for_task",
    "minimum_div_10",
    "plot_finder",
    "preserved_rng",
    "steepest",
    "sweep_steps",
    "task_batches",
    "valley",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lrlab.finder' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

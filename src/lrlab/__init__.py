"""lrlab: a learning-rate laboratory for PyTorch.

Exact, composable schedules (:mod:`lrlab.schedules`), a torch adapter (:class:`ScheduledLR`), and drop-in
replacements for ``torch.optim.lr_scheduler``'s classes (``from lrlab import StepLR``).

Names are re-exported lazily (PEP 562), so ``import lrlab.schedules`` stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ConfigError": "lrlab.errors",
    "Plateau": "lrlab.controllers",
    "ScheduledLR": "lrlab.adapter",
    "StepLR": "lrlab.torch_compat",
    "MultiStepLR": "lrlab.torch_compat",
    "ConstantLR": "lrlab.torch_compat",
    "LinearLR": "lrlab.torch_compat",
    "ExponentialLR": "lrlab.torch_compat",
    "PolynomialLR": "lrlab.torch_compat",
    "CosineAnnealingLR": "lrlab.torch_compat",
    "CosineAnnealingWarmRestarts": "lrlab.torch_compat",
    "CyclicLR": "lrlab.torch_compat",
    "OneCycleLR": "lrlab.torch_compat",
    "ReduceLROnPlateau": "lrlab.torch_compat",
    "LambdaLR": "lrlab.torch_compat",
    "MultiplicativeLR": "lrlab.torch_compat",
    "SequentialLR": "lrlab.torch_compat",
    "ChainedScheduler": "lrlab.torch_compat",
    "FinderResult": "lrlab.finder",
    "LRCurve": "lrlab.finder",
    "Recommendation": "lrlab.finder",
    "combine_suggestions": "lrlab.finder",
    "find_lr": "lrlab.finder",
    "find_lr_for_task": "lrlab.finder",
    "minimum_div_10": "lrlab.finder",
    "steepest": "lrlab.finder",
    "valley": "lrlab.finder",
    "plot_finder": "lrlab.finder",
    "Horizon": "lrlab.spec",
    "Plan": "lrlab.spec",
    "SpecError": "lrlab.spec",
    "build": "lrlab.spec",
    "parse": "lrlab.spec",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lrlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

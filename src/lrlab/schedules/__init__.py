"""Pure learning-rate schedules: immutable values called with a step (optimizer updates done so far).

This package never imports torch; its argument checks (:mod:`lrlab.schedules.checks`) are lrlab's
one wording for a bad argument. See :mod:`lrlab.adapter` to drive a ``torch.optim`` optimizer with one.
"""

from lrlab.schedules.base import Clamp, Product, Scale, Schedule, clamp, product, scale
from lrlab.schedules.combinators import Join, Shift, Warmup, adam_warmup_steps, join, shift, warmup
from lrlab.schedules.cyclic import CosineRestarts, Cyclic, OneCycle, OneCycleMomentum
from lrlab.schedules.decay import (
    Anneal,
    Constant,
    Cosine,
    Exponential,
    Function,
    InverseSqrt,
    Multiplicative,
    MultiStep,
    Polynomial,
    Step,
    Tanh,
)
from lrlab.schedules.presets import warmup_cosine, wsd

__all__ = [
    "Anneal",
    "Clamp",
    "Constant",
    "Cosine",
    "CosineRestarts",
    "Cyclic",
    "Exponential",
    "Function",
    "InverseSqrt",
    "Join",
    "MultiStep",
    "Multiplicative",
    "OneCycle",
    "OneCycleMomentum",
    "Polynomial",
    "Product",
    "Scale",
    "Schedule",
    "Shift",
    "Step",
    "Tanh",
    "Warmup",
    "adam_warmup_steps",
    "clamp",
    "join",
    "product",
    "scale",
    "shift",
    "warmup",
    "warmup_cosine",
    "wsd",
]

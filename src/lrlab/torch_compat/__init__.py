"""Drop-in replacements for ``torch.optim.lr_scheduler``'s classes, computed in closed form.

Every class here has torch's name, constructor arguments (names, order, defaults), public attributes and
``state_dict`` keys, and gives the same LR (and momentum) sequence as torch's class, to float rounding. A
class keeps torch's hyper-parameters as attributes and computes the LR of step ``t`` from them with a pure
schedule of :mod:`lrlab.schedules` (``scheduler.schedules``, one per param group, absolute LR values), so
there is no recursion and no drift; ``scheduler.controller`` is the :class:`~lrlab.controllers.Plateau` of
:class:`ReduceLROnPlateau`. :class:`SequentialLR` and :class:`ChainedScheduler` compose their children's
*schedules* and set their children's ``last_epoch``/``get_last_lr()`` as torch's stepping would.

Around the sequence, the API behaves as torch's (the README's "Differences from torch" table lists the rest):

- several schedulers stepped on one optimizer multiply their factors, in any order: the LR of a group is the
  first scheduler's LR times ``lr_i(t_i) / base_lr_i`` of each other one, as torch's chainable classes give.
  Where torch's class does not scale the LR by a ratio (LambdaLR, CyclicLR, OneCycleLR,
  CosineAnnealingWarmRestarts, CosineAnnealingLR with ``eta_min > 0`` or past ``T_max``) torch's result
  depends on the stepping order; lrlab keeps the product and warns once per optimizer;
- ``step(epoch)`` is torch's deprecated form (same warning): the LR is the closed form at ``epoch``;
  :class:`CosineAnnealingWarmRestarts` takes fractional epochs;
- a tensor ``group["lr"]`` stays a tensor (filled in place), and 0-d tensors are accepted wherever torch
  takes a number;
- the order warnings (``lr_scheduler.step()`` before ``optimizer.step()``, ``optimizer.step()`` overridden)
  are torch's.

Where torch is wrong, lrlab does the right thing (each difference is tested in ``tests/test_torch_compat.py``):
:class:`OneCycleLR` stays at its minimum from ``total_steps`` on and accepts a zero-step warm-up;
:class:`ConstantLR` accepts ``factor=0`` and ``total_iters=0``; :class:`SequentialLR` resumes from
``last_epoch``, nests, and accepts :class:`ReduceLROnPlateau` children, as :class:`ChainedScheduler` does.

Modules: :mod:`~lrlab.torch_compat.base` (torch's argument forms, writing param groups, schedulers sharing an
optimizer, and :class:`~lrlab.torch_compat.base.DropIn`, the base of every class), :mod:`~lrlab.torch_compat.decay`,
:mod:`~lrlab.torch_compat.cyclic` (CyclicLR, OneCycleLR), :mod:`~lrlab.torch_compat.plateau` (ReduceLROnPlateau)
and :mod:`~lrlab.torch_compat.composite` (SequentialLR, ChainedScheduler).
"""

from lrlab.torch_compat.composite import ChainedScheduler, SequentialLR
from lrlab.torch_compat.cyclic import CyclicLR, OneCycleLR
from lrlab.torch_compat.decay import (
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)
from lrlab.torch_compat.plateau import ReduceLROnPlateau

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]

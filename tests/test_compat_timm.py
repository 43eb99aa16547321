"""lrlab.compat.timm side by side with timm's own schedulers, on random configurations.

timm's top-level package imports torchvision (no CPU wheel here), so the test loads only timm's
``scheduler`` modules: it registers ``timm`` and ``timm.scheduler`` as bare packages pointing at their
folders (their ``__init__`` files are not run), then imports ``timm.scheduler.cosine_lr``.

Convention tested: each param group's LR after ``step_update(t)`` (``t_in_epochs=False``) or ``step(t)``
(``t_in_epochs=True``), for ``t`` from 0 over three cycle lengths, and before any step; two param groups.
Equal to ``rtol=1e-6`` (absolute floor 1e-12).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import sys
import types
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrlab.compat import timm as compat_timm

if importlib.util.find_spec("timm") is None:
    pytest.skip("timm is not installed (pip install -e .[compat-test])", allow_module_level=True)


@functools.cache
def _timm_scheduler_module(name: str) -> types.ModuleType:
    if "timm" in sys.modules:
        return importlib.import_module(f"timm.scheduler.{name}")
    spec = importlib.util.find_spec("timm")
    if spec is None or spec.origin is None:
        pytest.skip("timm is not installed")
    root = Path(spec.origin).parent
    for package, folder in (("timm", root), ("timm.scheduler", root / "scheduler")):
        if package not in sys.modules or not hasattr(sys.modules[package], "__path__"):
            module = types.ModuleType(package)
            module.__path__ = [str(folder)]
            sys.modules[package] = module
    return importlib.import_module(f"timm.scheduler.{name}")


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)], "lr": 0.03}], lr=0.1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t_initial=st.integers(1, 60), lr_min=st.sampled_from([0.0, 1e-4, 0.01]),
       cycle_mul=st.sampled_from([1.0, 1.0, 2.0, 1.5, 1.3]), cycle_decay=st.sampled_from([1.0, 0.5, 0.9]),
       cycle_limit=st.integers(1, 4), warmup_t=st.integers(0, 20), warmup_lr_init=st.sampled_from([0.0, 1e-5]),
       warmup_prefix=st.booleans(), t_in_epochs=st.booleans(), k_decay=st.sampled_from([1.0, 0.5, 2.0, 1.7]))
def test_cosine_matches_timm_at_every_t(t_initial, lr_min, cycle_mul, cycle_decay, cycle_limit, warmup_t,
                                        warmup_lr_init, warmup_prefix, t_in_epochs, k_decay):
    cosine_lr = _timm_scheduler_module("cosine_lr")
    kw = dict(t_initial=t_initial, lr_min=lr_min, cycle_mul=cycle_mul, cycle_decay=cycle_decay,
              cycle_limit=cycle_limit, warmup_t=warmup_t, warmup_lr_init=warmup_lr_init, warmup_prefix=warmup_prefix,
              t_in_epochs=t_in_epochs, k_decay=k_decay)
    theirs_opt, ours_opt = optimizer(), optimizer()
    theirs = cosine_lr.CosineLRScheduler(theirs_opt, **kw)
    ours = compat_timm.CosineLRScheduler(ours_opt, **kw)
    for t in [None, *range(warmup_t + 3 * t_initial * int(cycle_mul**3) + 5)]:
        if t is not None:
            for s in (theirs, ours):
                s.step(t) if t_in_epochs else s.step_update(t)
        for a, b in zip(theirs_opt.param_groups, ours_opt.param_groups, strict=True):
            assert math.isclose(a["lr"], b["lr"], rel_tol=1e-6, abs_tol=1e-12), (t, a["lr"], b["lr"])

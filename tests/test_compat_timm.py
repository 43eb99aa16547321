"""lrlab.compat.timm side by side with timm's own schedulers, on random configurations.

timm's top-level package imports torchvision (no CPU wheel here), so the test loads only timm's
``scheduler`` modules: it registers ``timm`` and ``timm.scheduler`` as bare packages pointing at their
folders (their ``__init__`` files are not run), then imports ``timm.scheduler.cosine_lr``.

Convention tested: each param group's LR after ``step_update(t)`` (``t_in_epochs=False``) or ``step(t)``
(``t_in_epochs=True``), and before any step (update 0); two param groups. ``t`` runs from 0 for the cosine,
from 1 for the others (timm's loops call ``step(epoch + 1)`` and ``step_update(num_updates)`` after an update,
never with 0; update 0 is the LR set at construction: the optimizer's LR, or ``warmup_lr_init``), over the
schedule's cycles and past them. The plateau sees the same random metric (with ties) at every ``step``.
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
from hypothesis import HealthCheck, assume, given, settings
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


def misplaced(t: int, t_initial: int, cycle_mul: float, warmup_t: int, warmup_prefix: bool) -> bool:
    """Whether timm's float ``math.log`` puts ``t`` outside its own cycle: an exact cycle start at the end of the
    cycle before (``t_curr == t_i``), or an ulp before the start (``t_curr < 0``). lrlab places ``t`` by exact
    cycle starts, so these updates differ on purpose (see test_timm_misplaces_some_exact_cycle_starts)."""
    if cycle_mul == 1 or t < warmup_t:
        return False
    t = t - warmup_t if warmup_prefix else t
    i = math.floor(math.log(1 - t / t_initial * (1 - cycle_mul), cycle_mul))
    t_curr = t - (1 - cycle_mul**i) / (1 - cycle_mul) * t_initial
    return not 0 <= t_curr < cycle_mul**i * t_initial


cycle_muls = st.one_of(st.sampled_from([1.0, 1.0, 2.0, 1.5, 1.3]), st.floats(1.0, 3.0))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t_initial=st.integers(1, 60), lr_min=st.sampled_from([0.0, 1e-4, 0.01]),
       cycle_mul=cycle_muls, cycle_decay=st.sampled_from([1.0, 0.5, 0.9]),
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
    for t in [None, *range(warmup_t + 3 * t_initial * math.ceil(cycle_mul**3) + 5)]:
        if t is not None:
            for s in (theirs, ours):
                s.step(t) if t_in_epochs else s.step_update(t)
            if misplaced(t, t_initial, cycle_mul, warmup_t, warmup_prefix):
                continue
        for a, b in zip(theirs_opt.param_groups, ours_opt.param_groups, strict=True):
            assert math.isclose(a["lr"], b["lr"], rel_tol=1e-6, abs_tol=1e-12), (t, a["lr"], b["lr"])


def assert_same_lrs(theirs, ours, theirs_opt, ours_opt, steps: int, t_in_epochs: bool = True,
                    metrics: list[float] | None = None, skip=lambda t: False) -> None:
    for t in [None, *range(1, steps)]:
        if t is not None:
            metric = None if metrics is None else metrics[t]
            for s in (theirs, ours):
                s.step(t, metric) if t_in_epochs else s.step_update(t, metric)
            if skip(t):
                continue
        for a, b in zip(theirs_opt.param_groups, ours_opt.param_groups, strict=True):
            assert math.isclose(a["lr"], b["lr"], rel_tol=1e-6, abs_tol=1e-12), (t, a["lr"], b["lr"], ours.specs[0])


warmups = dict(warmup_t=st.integers(0, 12), warmup_lr_init=st.sampled_from([0.0, 1e-5, 0.05]),
               warmup_prefix=st.booleans(), t_in_epochs=st.booleans())
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(decay_t=st.integers(1, 20), decay_rate=st.sampled_from([1.0, 0.5, 0.1, 0.9]), **warmups)
def test_step_matches_timm(decay_t, decay_rate, **kw):
    theirs_opt, ours_opt = optimizer(), optimizer()
    theirs = _timm_scheduler_module("step_lr").StepLRScheduler(theirs_opt, decay_t, decay_rate, **kw)
    ours = compat_timm.StepLRScheduler(ours_opt, decay_t, decay_rate, **kw)
    assert_same_lrs(theirs, ours, theirs_opt, ours_opt, kw["warmup_t"] + 5 * decay_t + 5, kw["t_in_epochs"])


@SETTINGS
@given(decay_t=st.lists(st.integers(0, 40), max_size=4).map(sorted), decay_rate=st.sampled_from([0.5, 0.1, 0.9]),
       **warmups)
def test_multistep_applies_each_milestone_one_update_early_as_timm(decay_t, decay_rate, **kw):
    theirs_opt, ours_opt = optimizer(), optimizer()
    theirs = _timm_scheduler_module("multistep_lr").MultiStepLRScheduler(theirs_opt, decay_t, decay_rate, **kw)
    ours = compat_timm.MultiStepLRScheduler(ours_opt, decay_t, decay_rate, **kw)
    assert_same_lrs(theirs, ours, theirs_opt, ours_opt, kw["warmup_t"] + 45, kw["t_in_epochs"])


cycles = dict(lr_min=st.sampled_from([0.0, 1e-4, 0.01]), cycle_decay=st.sampled_from([1.0, 0.5, 0.9]),
              cycle_limit=st.integers(0, 4))


@SETTINGS
@given(t_initial=st.integers(1, 12), cycle_mul=cycle_muls, power=st.sampled_from([0.5, 1.0, 2.0, 0.9]),
       k_decay=st.sampled_from([1.0, 0.5, 2.0]), **cycles, **warmups)
def test_poly_matches_timm_with_fractional_cycles(t_initial, cycle_mul, power, k_decay, lr_min, cycle_decay,
                                                  cycle_limit, **kw):
    args = dict(t_initial=t_initial, power=power, lr_min=lr_min, cycle_mul=cycle_mul, cycle_decay=cycle_decay,
                cycle_limit=max(cycle_limit, 1), k_decay=k_decay, **kw)
    theirs_opt, ours_opt = optimizer(), optimizer()
    theirs = _timm_scheduler_module("poly_lr").PolyLRScheduler(theirs_opt, **args)
    ours = compat_timm.PolyLRScheduler(ours_opt, **args)
    assert_same_lrs(theirs, ours, theirs_opt, ours_opt, kw["warmup_t"] + t_initial * math.ceil(cycle_mul**4) * 5 + 5,
                    kw["t_in_epochs"],
                    skip=lambda t: misplaced(t, t_initial, cycle_mul, kw["warmup_t"], kw["warmup_prefix"]))


@SETTINGS
@given(t_initial=st.integers(1, 12), cycle_mul=cycle_muls, bounds=st.sampled_from([(-7.0, 3.0), (-6.0, 3.0),
                                                                                     (-3.0, 5.0)]),
       **cycles, **warmups)
def test_tanh_matches_timm_with_fractional_cycles_update_0_at_the_base_lr(t_initial, cycle_mul, bounds, lr_min,
                                                                          cycle_decay, cycle_limit, **kw):
    # without warmup_prefix timm's warmup ramps to its own value at warmup_t: a misplaced one moves the ramp
    assume(kw["warmup_prefix"] or not misplaced(kw["warmup_t"], t_initial, cycle_mul, 0, False))
    args = dict(t_initial=t_initial, lb=bounds[0], ub=bounds[1], lr_min=lr_min, cycle_mul=cycle_mul,
                cycle_decay=cycle_decay, cycle_limit=cycle_limit, **kw)
    theirs_opt, ours_opt = optimizer(), optimizer()
    theirs = _timm_scheduler_module("tanh_lr").TanhLRScheduler(theirs_opt, **args)
    ours = compat_timm.TanhLRScheduler(ours_opt, **args)
    assert_same_lrs(theirs, ours, theirs_opt, ours_opt, kw["warmup_t"] + t_initial * math.ceil(cycle_mul**4) * 5 + 5,
                    kw["t_in_epochs"],
                    skip=lambda t: misplaced(t, t_initial, cycle_mul, kw["warmup_t"], kw["warmup_prefix"]))


def test_timm_misplaces_some_exact_cycle_starts():
    """t_initial=16, cycle_mul=1.5: cycle 5 starts at update 211 exactly; timm's float log puts 211 at the end
    of cycle 4 (lr_min), lrlab at the restart (peak * decay**5)."""
    args = dict(t_initial=16, cycle_mul=1.5, cycle_decay=0.5, cycle_limit=10, lr_min=0.0, t_in_epochs=False)
    theirs_opt, ours_opt = optimizer(), optimizer()
    theirs = _timm_scheduler_module("cosine_lr").CosineLRScheduler(theirs_opt, **args)
    ours = compat_timm.CosineLRScheduler(ours_opt, **args)
    assert misplaced(211, 16, 1.5, 0, False) and not misplaced(210, 16, 1.5, 0, False)
    for s in (theirs, ours):
        s.step_update(211)
    assert theirs_opt.param_groups[0]["lr"] == 0.0
    assert math.isclose(ours_opt.param_groups[0]["lr"], 0.1 * 0.5**5)


@SETTINGS
@given(decay_rate=st.sampled_from([0.1, 0.5]), patience_t=st.integers(0, 4), threshold=st.sampled_from([1e-4, 0.1]),
       cooldown_t=st.integers(0, 3), warmup_t=st.integers(0, 6), warmup_lr_init=st.sampled_from([0.0, 1e-4]),
       lr_min=st.sampled_from([0.0, 1e-3]), mode=st.sampled_from(["min", "max"]),
       metrics=st.lists(st.sampled_from([1.0, 2.0, 3.0, 2.5, 0.5]), min_size=40, max_size=40))
def test_plateau_after_warmup_ignores_the_metric_of_the_last_warmup_epoch(decay_rate, patience_t, threshold,
                                                                          cooldown_t, warmup_t, warmup_lr_init,
                                                                          lr_min, mode, metrics):
    kw = dict(decay_rate=decay_rate, patience_t=patience_t, threshold=threshold, cooldown_t=cooldown_t,
              warmup_t=warmup_t, warmup_lr_init=warmup_lr_init, lr_min=lr_min, mode=mode)
    theirs_opt, ours_opt = optimizer(), optimizer()
    with pytest.warns(FutureWarning):
        theirs = _timm_scheduler_module("plateau_lr").PlateauLRScheduler(theirs_opt, **kw)
    ours = compat_timm.PlateauLRScheduler(ours_opt, **kw)
    assert_same_lrs(theirs, ours, theirs_opt, ours_opt, 40, metrics=metrics)


def test_shrinking_cycles_and_noise_are_refused_with_the_field():
    with pytest.raises(ValueError, match=r"cycle_mul=0\.5"):
        compat_timm.PolyLRScheduler(optimizer(), t_initial=3, cycle_mul=0.5, cycle_limit=2)
    with pytest.raises(ValueError, match="noise_range_t"):
        compat_timm.StepLRScheduler(optimizer(), 3, noise_range_t=(2, 5))


@SETTINGS
@given(t_initial=st.integers(1, 60), data=st.data(), lr_min=st.sampled_from([0.0, 1e-4, 0.01]),
       decay_fn=st.sampled_from(["linear", "1-sqrt", "cosine", "power", "exp"]),
       decay_power=st.sampled_from([0.5, 1.0, 2.0, 1.7]), decay_ratio=st.sampled_from([0.1, 0.5, 0.01]),
       rsqrt=st.booleans(), warmup_t=st.integers(0, 12), warmup_lr_init=st.sampled_from([0.0, 1e-5, 0.05]),
       t_in_epochs=st.booleans())
def test_wsd_matches_timm(t_initial, data, lr_min, decay_fn, decay_power, decay_ratio, rsqrt, warmup_t,
                          warmup_lr_init, t_in_epochs):
    decay_t = data.draw(st.integers(1, t_initial), "decay_t")
    kw = dict(t_initial=t_initial, decay_t=decay_t, lr_min=lr_min, decay_fn=decay_fn, decay_power=decay_power,
              decay_ratio=decay_ratio, warmup_t=warmup_t, warmup_lr_init=warmup_lr_init, t_in_epochs=t_in_epochs)
    if rsqrt:  # reproduced with lr_min = 0 (a product), at timm's default timescale or a given one
        kw |= dict(stable_fn="rsqrt", lr_min=0.0, stable_timescale=data.draw(st.one_of(
            st.none(), st.integers(1, 50)) if warmup_t else st.integers(1, 50), "stable_timescale"))
    theirs_opt, ours_opt = optimizer(), optimizer()
    theirs = _timm_scheduler_module("wsd_lr").WSDLRScheduler(theirs_opt, **kw)
    ours = compat_timm.WSDLRScheduler(ours_opt, **kw)
    assert ours.get_cycle_length() == theirs.get_cycle_length()
    assert_same_lrs(theirs, ours, theirs_opt, ours_opt, warmup_t + t_initial + 5, t_in_epochs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sched=st.sampled_from(["cosine", "tanh", "step", "constant", "multistep", "poly", "wsd", "rsqrt"]),
       num_epochs=st.integers(2, 30), warmup_epochs=st.integers(0, 5), warmup_prefix=st.booleans(),
       decay_epochs=st.one_of(st.none(), st.integers(1, 10), st.sampled_from([0.1, 0.25, 0.5])),
       decay_rate=st.sampled_from([0.1, 0.5, 0.9]), min_lr=st.sampled_from([0.0, 1e-4]),
       cycle_mul=st.sampled_from([1.0, 1.5, 2.0]), cycle_decay=st.sampled_from([0.1, 0.5, 1.0]),
       cycle_limit=st.integers(1, 3), k_decay=st.sampled_from([1.0, 2.0]), cooldown_epochs=st.integers(0, 3),
       decay_fn=st.sampled_from([None, "linear", "cosine"]), on_updates=st.sampled_from([0, 1, 3]),
       milestones=st.lists(st.integers(1, 30), max_size=3).map(sorted))
def test_create_scheduler_v2_matches_timm(sched, num_epochs, warmup_epochs, warmup_prefix, decay_epochs, decay_rate,
                                         min_lr, cycle_mul, cycle_decay, cycle_limit, k_decay, cooldown_epochs,
                                         decay_fn, on_updates, milestones):
    kw = dict(sched=sched, num_epochs=num_epochs, warmup_epochs=warmup_epochs, warmup_prefix=warmup_prefix,
              decay_epochs=decay_epochs, decay_milestones=milestones, decay_rate=decay_rate, min_lr=min_lr,
              cycle_mul=cycle_mul, cycle_decay=cycle_decay, cycle_limit=cycle_limit, k_decay=k_decay,
              cooldown_epochs=cooldown_epochs, decay_fn=decay_fn, step_on_epochs=not on_updates,
              updates_per_epoch=on_updates)
    if sched == "rsqrt":
        kw |= dict(min_lr=0.0, stable_timescale=None if warmup_epochs else 2)
    if sched in ("wsd", "rsqrt"):
        assume(warmup_prefix or warmup_epochs < num_epochs)
    if sched == "step":  # a fractional decay interval is refused here (lrlab's step counts whole steps)
        assume(decay_epochs is None or float(decay_epochs).is_integer())
    theirs_opt, ours_opt = optimizer(), optimizer()
    try:
        theirs, theirs_epochs = _timm_scheduler_module("scheduler_factory").create_scheduler_v2(theirs_opt, **kw)
    except ValueError:  # a decay that does not fit: both refuse
        with pytest.raises(ValueError, match="decay_epochs"):
            compat_timm.create_scheduler_v2(ours_opt, **kw)
        return
    ours, ours_epochs = compat_timm.create_scheduler_v2(ours_opt, **kw)
    assert ours_epochs == theirs_epochs
    t_initial = num_epochs * max(on_updates, 1)

    def skip(t: int) -> bool:
        cycles = sched in ("cosine", "tanh", "poly")
        return cycles and misplaced(t, t_initial, cycle_mul, warmup_epochs * max(on_updates, 1), warmup_prefix)

    if sched == "tanh" and not warmup_prefix:
        assume(not misplaced(warmup_epochs * max(on_updates, 1), t_initial, cycle_mul, 0, False))
    assert_same_lrs(theirs, ours, theirs_opt, ours_opt, (theirs_epochs + 3) * max(on_updates, 1), not on_updates,
                    skip=skip)


def test_create_scheduler_v2_none_and_unknown_names():
    assert compat_timm.create_scheduler_v2(optimizer(), "none", num_epochs=7) == (None, 7)
    with pytest.raises(ValueError, match="sched='nope'"):
        compat_timm.create_scheduler_v2(optimizer(), "nope")
    with pytest.raises(ValueError, match="stable_fn='power'"):
        compat_timm.WSDLRScheduler(optimizer(), 10, 5, stable_fn="power")
    with pytest.raises(ValueError, match="stable_fn='rsqrt'"):
        compat_timm.WSDLRScheduler(optimizer(), 10, 5, stable_fn="rsqrt", stable_timescale=3, lr_min=0.01)

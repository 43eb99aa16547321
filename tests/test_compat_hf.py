"""lrlab.compat.hf side by side with transformers' own schedulers, on random configurations.

Convention tested: the LR that update ``t`` (0 = the first) uses, i.e. each param group's ``lr`` after ``t``
calls of ``scheduler.step()``, for ``t`` in ``[0, num_training_steps + 3)``; two param groups with their own
LRs. Metric-driven schedulers (plateau, greedy) see the same random metric before each ``step(metric)``.
Equal to ``rtol=1e-6`` (absolute floor 1e-12) at every update.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

transformers_optimization = pytest.importorskip("transformers.optimization")

from lrlab.adapter import ScheduledLR  # noqa: E402
from lrlab.compat import hf  # noqa: E402
from lrlab.controllers import Greedy  # noqa: E402
from lrlab.spec import Horizon, build  # noqa: E402

LR = 0.1


def optimizer(lr: float = LR) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)], "lr": lr / 3}], lr=lr)


def lrs(scheduler, opt, steps: int, metrics: list[float] | None = None) -> list[list[float]]:
    out = []
    for t in range(steps):
        out.append([g["lr"] for g in opt.param_groups])
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[t])
    return out


def assert_same(theirs: list[list[float]], ours: list[list[float]]) -> None:
    for t, (a, b) in enumerate(zip(theirs, ours, strict=True)):
        for x, y in zip(a, b, strict=True):
            assert math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12), (t, x, y)


def kwargs_for(name: str, draw, w: int, total: int) -> dict:
    cycles = st.one_of(st.sampled_from([0.5, 1.0, 2.0]), st.floats(0.05, 4.0))
    if name in ("cosine", "cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        kw = {"num_cycles": draw(cycles)}
        if name != "cosine":
            if draw(st.booleans()):
                kw["min_lr_rate"] = draw(st.floats(0.0, 0.5))
            else:
                kw["min_lr"] = draw(st.floats(0.0, LR / 2))
        if name == "cosine_warmup_with_min_lr" and draw(st.booleans()):
            kw["warmup_lr_rate"] = draw(st.floats(0.0, 0.9))
        return kw
    if name == "cosine_with_restarts":
        return {"num_cycles": draw(st.one_of(st.integers(1, 6), st.floats(0.3, 5.0)))}
    if name == "polynomial":
        return {"lr_end": draw(st.floats(0.0, LR / 2)), "power": draw(st.floats(0.2, 4.0))}
    if name == "inverse_sqrt":
        return {"timescale": draw(st.one_of(st.none(), st.integers(1, 500)))}
    if name == "warmup_stable_decay":
        decay = draw(st.integers(0, total - w))
        kw = {"num_decay_steps": decay, "warmup_type": draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
              "decay_type": draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
              "min_lr_ratio": draw(st.sampled_from([0.0, draw(st.floats(0.0, 0.9))])),
              "num_cycles": draw(st.sampled_from([0.5, draw(st.floats(0.1, 2.0))]))}
        if draw(st.booleans()):
            kw["num_stable_steps"] = draw(st.integers(0, 300))
        return kw
    return {}


SCHEDULES = ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
             "inverse_sqrt", "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay"]


@pytest.mark.filterwarnings("ignore:Both num_training_steps and num_stable_steps")
@pytest.mark.parametrize("name", SCHEDULES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_get_scheduler_matches_transformers_at_every_update(name, data):
    total = data.draw(st.integers(1, 400), "num_training_steps")
    w = data.draw(st.integers(0, total - 1), "num_warmup_steps")
    kw = kwargs_for(name, data.draw, w, total)
    theirs_opt, ours_opt = optimizer(), optimizer()
    theirs = transformers_optimization.get_scheduler(name, theirs_opt, w, total, dict(kw))
    ours = hf.get_scheduler(name, ours_opt, w, total, dict(kw))
    steps = total + 3
    expected = lrs(theirs, theirs_opt, steps)
    assert_same(expected, lrs(ours, ours_opt, steps))
    # the same through the printed spec, in absolute LRs of the first group
    spec = hf.to_spec(name, w, total, lr=LR, optimizer_lr=LR, **kw)
    plan = build(spec, Horizon(total_steps=10**9, base_lr=LR))
    assert_same([row[:1] for row in expected], [[plan.lr(t)] for t in range(steps)])


@pytest.mark.parametrize("name", ["reduce_lr_on_plateau", "greedy"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_metric_driven_schedulers_match_transformers(name, data):
    kw = {"mode": data.draw(st.sampled_from(["min", "max"])), "patience": data.draw(st.integers(0, 4)),
          "factor": data.draw(st.floats(0.1, 0.9)), "cooldown": data.draw(st.integers(0, 3)),
          "threshold_mode": data.draw(st.sampled_from(["rel", "abs"]))}
    floor = st.floats(1e-4, 0.02)
    if name == "greedy":
        kw |= {"warmup": data.draw(st.integers(0, 3)), "max_lr": data.draw(st.floats(0.1, 1.0)),
               "smooth": data.draw(st.booleans()), "window_size": data.draw(st.integers(1, 8)),
               "reset_start": data.draw(st.integers(1, 20))}
    kw["min_lr"] = data.draw(st.one_of(floor, st.lists(floor, min_size=2, max_size=2)))
    metrics = data.draw(st.lists(st.sampled_from([1.0, 0.9, 0.8, 0.5, 0.3, 2.0, 1.5]), min_size=1, max_size=120))
    theirs_opt, ours_opt = optimizer(), optimizer()
    theirs = transformers_optimization.get_scheduler(name, theirs_opt, scheduler_specific_kwargs=dict(kw))
    ours = hf.get_scheduler(name, ours_opt, scheduler_specific_kwargs=dict(kw))
    assert_same(lrs(theirs, theirs_opt, len(metrics), metrics), lrs(ours, ours_opt, len(metrics), metrics))
    # the same through the printed spec (plateau(...) / greedy(...)), on a one-group optimizer
    kw["min_lr"] = kw["min_lr"][0] if isinstance(kw["min_lr"], list) else kw["min_lr"]
    theirs_opt, ours_opt = one_group(), one_group()
    theirs = transformers_optimization.get_scheduler(name, theirs_opt, scheduler_specific_kwargs=dict(kw))
    plan = build(hf.to_spec(name, lr=LR, **kw), Horizon(total_steps=10**9, base_lr=LR))
    ours = ScheduledLR.from_plan(ours_opt, plan)
    assert_same(lrs(theirs, theirs_opt, len(metrics), metrics), lrs(ours, ours_opt, len(metrics), metrics))


def one_group(lr: float = LR) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.zeros(1)], lr=lr)


def test_the_greedy_spec_prints_transformers_arguments():
    spec = hf.to_spec("greedy", mode="max", min_lr=[1e-3, 2e-3], smooth=True, verbose=True)
    assert spec == "constant(lr=1.0) * greedy(mode=max, min_lr=[0.001, 0.002], smooth=true)"
    assert isinstance(hf.get_greedy_schedule(optimizer(), patience=2).controller, Greedy)


def test_to_spec_prints_a_spec_that_builds():
    assert hf.to_spec("linear", 10, 100) == "warmup(steps=10) >> linear(start_lr=1.0, end_lr=0.0, steps=90)"
    with pytest.raises(ValueError, match="name='nope'"):
        hf.to_spec("nope", 0, 10)


def test_hard_restarts_start_on_the_exact_step():
    """50 steps in 6 cycles: cycle 3 starts at update 25 exactly (25 // (50 / 6) is 2 in floats)."""
    theirs_opt, ours_opt = optimizer(), optimizer()
    kw = {"num_cycles": 6}
    theirs = transformers_optimization.get_scheduler("cosine_with_restarts", theirs_opt, 0, 50, dict(kw))
    ours = hf.get_scheduler("cosine_with_restarts", ours_opt, 0, 50, dict(kw))
    assert_same(lrs(theirs, theirs_opt, 53), lrs(ours, ours_opt, 53))

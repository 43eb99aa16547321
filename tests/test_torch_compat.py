"""lrlab.torch_compat against torch.optim.lr_scheduler.

Parity: random configurations of every class, built side by side with torch's on two identical optimizers and
stepped together; every group's LR (and momentum or Adam's beta1) must agree after every step to a relative
1e-6, with an absolute floor of 1e-12 times the largest LR of the run (where torch's recursion and the closed
form both approach 0). Also: argument errors name the argument, state dicts round-trip through
``torch.save``/``torch.load(weights_only=True)`` and resume the identical curve, and each documented
difference shows torch's wrong behaviour next to lrlab's.
"""

from __future__ import annotations

import io
import itertools
import math
import warnings
from functools import partial
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as T

from lrlab import torch_compat as C

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # torch: "lr_scheduler.step() before optimizer.step()"

Spec = tuple[str, dict[str, Any]]


def make_optimizer(kind: str, lrs: list[float]) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    if kind == "adam":
        return torch.optim.Adam(groups)
    if kind == "adagrad":
        return torch.optim.Adagrad(groups)
    return torch.optim.SGD(groups, lr=0.1, momentum=0.9)


def build(lib: Any, optimizer: torch.optim.Optimizer, spec: Spec) -> Any:
    """Build the scheduler ``spec`` describes from ``lib`` (torch's module or lrlab's): same names, same args."""
    name, kwargs = spec
    cls = getattr(lib, name)
    if name == "SequentialLR":
        children = [build(lib, optimizer, child) for child in kwargs["schedulers"]]
        return cls(optimizer, children, kwargs["milestones"], kwargs.get("last_epoch", -1))
    if name == "ChainedScheduler":
        return cls([build(lib, optimizer, child) for child in kwargs["schedulers"]])
    return cls(optimizer, **kwargs)


def state(optimizer: torch.optim.Optimizer) -> list[float]:
    """Every group's LR, then every group's momentum (or beta1) if the optimizer has one."""
    lrs = [float(g["lr"]) for g in optimizer.param_groups]
    momenta = [float(g["betas"][0]) if "betas" in g else float(g["momentum"])
               for g in optimizer.param_groups if "betas" in g or "momentum" in g]
    return lrs + momenta


def trajectory(scheduler: Any, optimizer: torch.optim.Optimizer, steps: int,
               metrics: list[float] | None = None) -> np.ndarray:
    """The optimizer's state after construction and after each of ``steps`` scheduler steps."""
    rows = [state(optimizer)]
    for t in range(steps):
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[t])
        rows.append(state(optimizer))
    return np.array(rows, dtype=float)


def assert_matches(expected: np.ndarray, actual: np.ndarray, num_groups: int, what: str = "") -> None:
    """Relative 1e-6, with an absolute floor of 1e-12 x the run's largest LR (momenta: 1e-12)."""
    assert expected.shape == actual.shape, (expected.shape, actual.shape)
    floor = np.full(expected.shape[1], 1e-12)
    floor[:num_groups] *= max(float(np.max(np.abs(expected[:, :num_groups]))), 1e-300)
    ok = (np.abs(expected - actual) <= 1e-6 * np.abs(expected) + floor) | (expected == actual)
    if not ok.all():
        t, col = np.argwhere(~ok)[0]
        raise AssertionError(f"{what}: step {t}, column {col}: torch {expected[t, col]!r}, lrlab {actual[t, col]!r}")


def side_by_side(spec: Spec, kind: str, lrs: list[float], steps: int,
                 metrics: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Torch's and lrlab's trajectories for the same spec on two identical optimizers."""
    opt_t, opt_l = make_optimizer(kind, lrs), make_optimizer(kind, lrs)
    sched_t, sched_l = build(T, opt_t, spec), build(C, opt_l, spec)
    keys_t, keys_l = set(opt_t.param_groups[0]), set(opt_l.param_groups[0])
    assert keys_t <= keys_l and keys_l - keys_t <= {"initial_lr"}, (keys_t, keys_l)
    for g_t, g_l in zip(opt_t.param_groups, opt_l.param_groups, strict=True):
        for key in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
            if key in g_t:
                assert g_l[key] == pytest.approx(g_t[key], rel=1e-12), key
    return trajectory(sched_t, opt_t, steps, metrics), trajectory(sched_l, opt_l, steps, metrics)


# --- strategies: one random configuration per class --------------------------------------------------------

def lam_power(a: float, t: int) -> float:
    return a**t


def lam_inverse(a: float, t: int) -> float:
    return 1.0 / (1.0 + a * t)


def lam_cosine(period: float, t: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * t / period))


def lam_warmup(steps: float, t: int) -> float:
    return min(1.0, (t + 1) / steps)


def mul_constant(a: float, t: int) -> float:
    return a


def mul_approach(a: float, t: int) -> float:
    return 1.0 - a / (t + 10.0)


def mul_periodic(a: float, t: int) -> float:
    return a if t % 7 else 1.0 / a


def scale_inverse(rate: float, x: float) -> float:
    return 1.0 / (1.0 + rate * x)


unit = st.floats(0.0, 1.0)
base_lrs = st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=4)
lambdas = (st.builds(partial, st.just(lam_power), st.floats(0.95, 1.0))
           | st.builds(partial, st.just(lam_inverse), st.floats(0.0, 0.1))
           | st.builds(partial, st.sampled_from([lam_cosine, lam_warmup]), st.floats(1.0, 300.0)))
factor_fns = st.builds(partial, st.sampled_from([mul_constant, mul_approach, mul_periodic]), st.floats(0.97, 1.0))


def per_group(draw: Any, n: int, values: st.SearchStrategy) -> Any:
    """One value for all groups, or a list of one per group (torch's ``float or list``)."""
    return draw(values) if draw(st.booleans()) else draw(st.lists(values, min_size=n, max_size=n))


def spec_for(draw: Any, name: str, n: int) -> tuple[Spec, int]:
    """A random valid spec for class ``name`` on ``n`` groups, and the most steps torch's class can take."""
    many = 3000
    if name == "StepLR":
        return (name, {"step_size": draw(st.integers(1, 50)), "gamma": draw(unit)}), many
    if name == "MultiStepLR":
        milestones = draw(st.lists(st.integers(0, 2000), max_size=6))
        return (name, {"milestones": milestones, "gamma": draw(unit)}), many
    if name == "ConstantLR":
        return (name, {"factor": draw(st.floats(1e-3, 1.0)), "total_iters": draw(st.integers(1, 200))}), many
    if name == "LinearLR":
        kwargs = {"start_factor": draw(st.floats(1e-3, 1.0)), "end_factor": draw(unit),
                  "total_iters": draw(st.integers(1, 500))}
        return (name, kwargs), many
    if name == "ExponentialLR":
        return (name, {"gamma": draw(st.floats(0.5, 1.001))}), many
    if name == "PolynomialLR":
        return (name, {"total_iters": draw(st.integers(1, 500)), "power": draw(st.floats(0.0, 5.0))}), many
    if name == "CosineAnnealingLR":
        kwargs = {"T_max": draw(st.integers(1, 1000)), "eta_min": draw(st.just(0.0) | st.floats(0.0, 0.01))}
        return (name, kwargs), many
    if name == "CosineAnnealingWarmRestarts":
        kwargs = {"T_0": draw(st.integers(1, 200)), "T_mult": draw(st.integers(1, 3)),
                  "eta_min": draw(st.just(0.0) | st.floats(0.0, 0.01))}
        return (name, kwargs), many
    if name == "CyclicLR":
        scale_fn = draw(st.none() | st.builds(partial, st.just(scale_inverse), st.floats(0.0, 0.1)))
        kwargs = {"base_lr": per_group(draw, n, st.floats(1e-4, 0.1)),
                  "max_lr": per_group(draw, n, st.floats(0.0, 1.0)),
                  "step_size_up": draw(st.integers(1, 300)), "step_size_down": draw(st.none() | st.integers(0, 300)),
                  "mode": draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
                  "gamma": draw(st.floats(0.99, 1.0)), "scale_fn": scale_fn,
                  "scale_mode": draw(st.sampled_from(["cycle", "iterations"])), "cycle_momentum": draw(st.booleans()),
                  "base_momentum": per_group(draw, n, st.floats(0.5, 0.9)),
                  "max_momentum": per_group(draw, n, st.floats(0.8, 0.99))}
        if kwargs["mode"] == "triangular2" and scale_fn is None:  # 2.0 ** cycle overflows after 1024 cycles
            up, down = kwargs["step_size_up"], kwargs["step_size_down"]
            return (name, kwargs), min(many, 1000 * (up + (up if down is None else down)))
        return (name, kwargs), many
    if name == "OneCycleLR":
        kwargs = {"max_lr": per_group(draw, n, st.floats(1e-3, 1.0)), "pct_start": draw(unit),
                  "anneal_strategy": draw(st.sampled_from(["cos", "linear"])), "cycle_momentum": draw(st.booleans()),
                  "base_momentum": per_group(draw, n, st.floats(0.5, 0.9)),
                  "max_momentum": per_group(draw, n, st.floats(0.8, 0.99)),
                  "div_factor": draw(st.floats(1.0, 100.0)), "final_div_factor": draw(st.floats(1.0, 1e5)),
                  "three_phase": draw(st.booleans())}
        if draw(st.booleans()):
            kwargs["total_steps"] = total = draw(st.integers(1, 2000) | st.integers(500, 2000))
        else:
            kwargs["epochs"], kwargs["steps_per_epoch"] = draw(st.integers(1, 40)), draw(st.integers(1, 50))
            total = kwargs["epochs"] * kwargs["steps_per_epoch"]
        assume(float(kwargs["pct_start"] * total) - 1 != 0)  # torch divides by zero there: see the bug tests
        return (name, kwargs), total - 1  # torch raises past total_steps, and climbs back up at it
    if name == "LambdaLR":
        fn = draw(lambdas) if draw(st.booleans()) else draw(st.lists(lambdas, min_size=n, max_size=n))
        return (name, {"lr_lambda": fn}), many
    if name == "MultiplicativeLR":
        fn = draw(factor_fns) if draw(st.booleans()) else draw(st.lists(factor_fns, min_size=n, max_size=n))
        return (name, {"lr_lambda": fn}), many
    raise AssertionError(name)


@st.composite
def metric_sequences(draw: Any, size: int) -> list[float]:
    """Metrics with plateaus, repeats, tiny and large moves, both signs."""
    moves = st.sampled_from([0.0, 0.0, 0.0, 1e-6, -1e-6, 0.01, -0.01, 1.0, -1.0]) | st.floats(-2.0, 2.0)
    return list(itertools.accumulate(draw(st.lists(moves, min_size=size, max_size=size)),
                                     initial=draw(st.floats(-10.0, 10.0))))


def plateau_spec(draw: Any, n: int) -> Spec:
    min_lr = st.just(0.0) | st.floats(0.0, 0.05)
    kwargs = {"mode": draw(st.sampled_from(["min", "max"])), "factor": draw(st.floats(0.0, 0.99)),
              "patience": draw(st.integers(0, 5)), "threshold": draw(st.sampled_from([0.0, 1e-4, 1e-2]) | unit),
              "threshold_mode": draw(st.sampled_from(["rel", "abs"])), "cooldown": draw(st.integers(0, 3)),
              "min_lr": per_group(draw, n, min_lr), "eps": draw(st.sampled_from([0.0, 1e-8, 1e-4, 1e-2]))}
    return ("ReduceLROnPlateau", kwargs)


CLOSED_FORM = ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
               "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "LambdaLR",
               "MultiplicativeLR"]
parity = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])


# --- parity -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CLOSED_FORM)
@parity
@given(data=st.data(), lrs=base_lrs, kind=st.sampled_from(["sgd", "adam"]))
def test_same_sequence_as_torch(name: str, data: st.DataObject, lrs: list[float], kind: str) -> None:
    spec, most = spec_for(data.draw, name, len(lrs))
    steps = data.draw(st.just(most) | st.integers(0, most), label="steps")  # often the longest run
    expected, actual = side_by_side(spec, kind, lrs, steps)
    assert_matches(expected, actual, len(lrs), name)


@parity
@given(data=st.data(), lrs=base_lrs, kind=st.sampled_from(["sgd", "adam"]))
def test_reduce_lr_on_plateau_same_sequence_as_torch(data: st.DataObject, lrs: list[float], kind: str) -> None:
    spec = plateau_spec(data.draw, len(lrs))
    metrics = data.draw(metric_sequences(data.draw(st.integers(0, 400))), label="metrics")
    expected, actual = side_by_side(spec, kind, lrs, len(metrics) - 1, metrics)
    assert_matches(expected, actual, len(lrs), "ReduceLROnPlateau")


# children for which torch's SequentialLR computes the join of closed forms, at any position
SEQUENTIAL_ANYWHERE = ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
                       "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR", "LambdaLR"]


@parity
@given(data=st.data(), lrs=base_lrs, kind=st.sampled_from(["sgd", "adam"]))
def test_sequential_same_sequence_as_torch(data: st.DataObject, lrs: list[float], kind: str) -> None:
    first = data.draw(st.sampled_from([*SEQUENTIAL_ANYWHERE, "MultiplicativeLR", "OneCycleLR"]))
    names = [first, *data.draw(st.lists(st.sampled_from(SEQUENTIAL_ANYWHERE), max_size=3))]
    children, limits = zip(*(spec_for(data.draw, name, len(lrs)) for name in names), strict=True)
    milestones = sorted(data.draw(st.lists(st.integers(0, 300), min_size=len(names) - 1,
                                           max_size=len(names) - 1)))
    steps = data.draw(st.just(800) | st.integers(0, 800))
    if first == "OneCycleLR":  # torch raises once OneCycleLR has stepped past total_steps
        steps = min(steps, limits[0]) if not milestones else steps
        assume(not milestones or milestones[0] <= limits[0] + 1)
    spec = ("SequentialLR", {"schedulers": list(children), "milestones": milestones})
    expected, actual = side_by_side(spec, kind, lrs, steps)
    assert_matches(expected, actual, len(lrs), f"SequentialLR{names}")


CHAINABLE = ["StepLR", "MultiStepLR", "ExponentialLR", "ConstantLR", "LinearLR", "PolynomialLR", "MultiplicativeLR",
             "CosineAnnealingLR"]


@parity
@given(data=st.data(), lrs=base_lrs, kind=st.sampled_from(["sgd", "adam"]))
def test_chained_same_sequence_as_torch(data: st.DataObject, lrs: list[float], kind: str) -> None:
    names = data.draw(st.lists(st.sampled_from(CHAINABLE), min_size=1, max_size=4))
    children = [spec_for(data.draw, name, len(lrs))[0] for name in names]
    steps = data.draw(st.just(1000) | st.integers(0, 1000))
    for name, kwargs in children:
        if name == "CosineAnnealingLR":  # torch's chained cosine is a product only with eta_min=0, up to T_max
            kwargs["eta_min"] = 0.0
            steps = min(steps, kwargs["T_max"])
    expected, actual = side_by_side(("ChainedScheduler", {"schedulers": children}), kind, lrs, steps)
    assert_matches(expected, actual, len(lrs), f"ChainedScheduler{names}")


# --- plateau children in composites (torch rejects them): checked against torch's pieces -------------------

@parity
@given(data=st.data(), lrs=base_lrs)
def test_sequential_with_plateau_child(data: st.DataObject, lrs: list[float]) -> None:
    """Warmup, then ReduceLROnPlateau: the plateau segment is torch's ReduceLROnPlateau fed from the milestone."""
    warm, _ = spec_for(data.draw, data.draw(st.sampled_from(["LinearLR", "ConstantLR", "LambdaLR"])), len(lrs))
    plateau = plateau_spec(data.draw, len(lrs))
    milestone = data.draw(st.integers(0, 50))
    metrics = data.draw(metric_sequences(data.draw(st.integers(0, 300))))
    steps = len(metrics) - 1

    opt = make_optimizer("sgd", lrs)
    ours = C.SequentialLR(opt, [build(C, opt, warm), build(C, opt, plateau)], [milestone])
    actual = trajectory(ours, opt, steps, metrics)

    warm_opt, plateau_opt = make_optimizer("sgd", lrs), make_optimizer("sgd", lrs)
    warm_t, plateau_t = build(T, warm_opt, warm), build(T, plateau_opt, plateau)
    expected = [state(warm_opt) if milestone > 0 else state(plateau_opt)]
    for t in range(steps):  # the metric of step t goes to the segment that holds step t
        warm_t.step()
        if t >= milestone:
            plateau_t.step(metrics[t])
        expected.append(state(warm_opt) if t + 1 < milestone else state(plateau_opt))
    assert_matches(np.array(expected), actual, len(lrs), "SequentialLR with ReduceLROnPlateau")


@parity
@given(data=st.data(), lrs=base_lrs)
def test_chained_with_plateau_child(data: st.DataObject, lrs: list[float]) -> None:
    """Decay times ReduceLROnPlateau: torch's decay LR times torch's plateau LR / base LR."""
    decay, _ = spec_for(data.draw, data.draw(st.sampled_from(["StepLR", "ExponentialLR", "LinearLR"])), len(lrs))
    plateau = plateau_spec(data.draw, len(lrs))
    metrics = data.draw(metric_sequences(data.draw(st.integers(0, 300))))
    steps = len(metrics) - 1

    opt = make_optimizer("sgd", lrs)
    actual = trajectory(C.ChainedScheduler([build(C, opt, decay), build(C, opt, plateau)]), opt, steps, metrics)

    decay_opt, plateau_opt = make_optimizer("sgd", lrs), make_optimizer("sgd", lrs)
    decay_t, plateau_t = build(T, decay_opt, decay), build(T, plateau_opt, plateau)
    n = len(lrs)

    def product() -> list[float]:
        return [d * p / b for d, p, b in zip(state(decay_opt)[:n], state(plateau_opt)[:n], lrs, strict=True)] + \
            state(decay_opt)[n:]

    expected = [product()]
    for t in range(steps):
        decay_t.step()
        plateau_t.step(metrics[t])
        expected.append(product())
    assert_matches(np.array(expected), actual, n, "ChainedScheduler with ReduceLROnPlateau")


def test_composite_without_plateau_rejects_metrics() -> None:
    opt = make_optimizer("sgd", [0.1])
    seq = C.SequentialLR(opt, [C.StepLR(opt, 2), C.ExponentialLR(opt, 0.9)], [3])
    with pytest.raises(ValueError, match="no child of this SequentialLR has a controller"):
        seq.step(1.0)


def test_sequential_ignores_metrics_outside_plateau_segment() -> None:
    opt = make_optimizer("sgd", [1.0])
    seq = C.SequentialLR(opt, [C.LinearLR(opt, 0.5, total_iters=3), C.ReduceLROnPlateau(opt, patience=0)], [3])
    lrs = []
    for metric in [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]:  # always worse: only the plateau segment may cut
        seq.step(metric)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([2 / 3, 5 / 6, 1.0, 1.0, 0.1, 0.01])


# --- state_dict round trip ----------------------------------------------------------------------------------

PLATEAU: Spec = ("ReduceLROnPlateau", {"patience": 1, "cooldown": 1, "factor": 0.5, "min_lr": [0.0, 1e-3]})
RESUMABLE: list[Spec] = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [2, 5, 5, 30], "gamma": 0.5}),
    ("ConstantLR", {"factor": 0.25, "total_iters": 12}),
    ("LinearLR", {"start_factor": 0.1, "end_factor": 0.5, "total_iters": 25}),
    ("ExponentialLR", {"gamma": 0.97}),
    ("PolynomialLR", {"total_iters": 30, "power": 2.0}),
    ("CosineAnnealingLR", {"T_max": 17, "eta_min": 1e-3}),
    ("CosineAnnealingWarmRestarts", {"T_0": 5, "T_mult": 2, "eta_min": 1e-3}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": [0.1, 0.2], "step_size_up": 4, "mode": "triangular2"}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 60, "three_phase": True}),
    PLATEAU,
    ("LambdaLR", {"lr_lambda": partial(lam_inverse, 0.1)}),
    ("MultiplicativeLR", {"lr_lambda": partial(mul_periodic, 0.9)}),
    ("SequentialLR", {"schedulers": [("LinearLR", {"total_iters": 5}), PLATEAU, ("CosineAnnealingLR", {"T_max": 9})],
                      "milestones": [5, 25]}),
    ("SequentialLR", {"schedulers": [("SequentialLR", {"schedulers": [("ConstantLR", {}), PLATEAU],
                                                       "milestones": [4]}),
                                     ("OneCycleLR", {"max_lr": 0.3, "total_steps": 40})], "milestones": [20]}),
    ("ChainedScheduler", {"schedulers": [("ExponentialLR", {"gamma": 0.98}), PLATEAU,
                                         ("CyclicLR", {"base_lr": 0.05, "max_lr": 0.1, "step_size_up": 3})]}),
]


@pytest.mark.parametrize("spec", RESUMABLE, ids=[f"{i}-{s[0]}" for i, s in enumerate(RESUMABLE)])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_state_dict_round_trip_resumes_the_same_curve(spec: Spec, kind: str) -> None:
    lrs, steps, rest = [0.1, 0.03], 23, 40
    metrics = None
    if "ReduceLROnPlateau" in repr(spec):  # ups, downs and plateaus
        metrics = [math.sin(t) * 0.1 + (t // 7) * 0.01 for t in range(steps + rest)]
    opt = make_optimizer(kind, lrs)
    sched = build(C, opt, spec)
    trajectory(sched, opt, steps, metrics)
    buffer = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, buffer)
    uninterrupted = trajectory(sched, opt, rest, metrics and metrics[steps:])

    fresh_opt = make_optimizer(kind, lrs)
    fresh = build(C, fresh_opt, spec)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    fresh_opt.load_state_dict(saved["optimizer"])  # as with torch: the LRs come back with the optimizer
    fresh.load_state_dict(saved["scheduler"])
    resumed = trajectory(fresh, fresh_opt, rest, metrics and metrics[steps:])
    np.testing.assert_array_equal(resumed, uninterrupted)


def test_sequential_resumes_from_last_epoch_where_torch_does_not() -> None:
    """Torch's SequentialLR(last_epoch=k) restarts the first child, then runs the active child from its step 0."""
    def children(lib: Any, opt: torch.optim.Optimizer) -> list[Any]:
        return [lib.ConstantLR(opt, 0.5, total_iters=100), lib.ExponentialLR(opt, 0.5)]

    opt = make_optimizer("sgd", [1.0])
    full = trajectory(C.SequentialLR(opt, children(C, opt), [3]), opt, 12)[:, 0]
    assert full[:6] == pytest.approx([0.5, 0.5, 0.5, 1.0, 0.5, 0.25])

    opt_l, opt_t = make_optimizer("sgd", [1.0]), make_optimizer("sgd", [1.0])
    ours = trajectory(C.SequentialLR(opt_l, children(C, opt_l), [3], last_epoch=8), opt_l, 3)[:, 0]
    theirs = trajectory(T.SequentialLR(opt_t, children(T, opt_t), [3], last_epoch=8), opt_t, 3)[:, 0]
    assert ours == pytest.approx(full[9:13])  # steps 9..12: 0.5 ** 6 ... 0.5 ** 9
    assert theirs == pytest.approx([0.5, 0.25, 0.125, 0.0625])  # step 0 of the first child, then restarted
    assert theirs != pytest.approx(full[9:13])


# --- nested composites --------------------------------------------------------------------------------------

def test_nested_sequential_is_not_shifted() -> None:
    """A SequentialLR inside a SequentialLR: torch runs the inner one a step ahead; lrlab equals the flat join."""
    def nested(lib: Any, opt: torch.optim.Optimizer) -> Any:
        inner = lib.SequentialLR(opt, [lib.ConstantLR(opt, 0.5, total_iters=100), lib.ExponentialLR(opt, 0.5)], [3])
        return lib.SequentialLR(opt, [inner, lib.ConstantLR(opt, 0.1, total_iters=100)], [6])

    def flat(lib: Any, opt: torch.optim.Optimizer) -> Any:
        return lib.SequentialLR(opt, [lib.ConstantLR(opt, 0.5, total_iters=100), lib.ExponentialLR(opt, 0.5),
                                      lib.ConstantLR(opt, 0.1, total_iters=100)], [3, 6])

    runs = {}
    for lib, shape in itertools.product((C, T), (nested, flat)):
        opt = make_optimizer("sgd", [1.0])
        runs[lib, shape] = trajectory(shape(lib, opt), opt, 8)[:, 0]
    assert runs[T, flat] == pytest.approx([0.5, 0.5, 0.5, 1.0, 0.5, 0.25, 0.1, 0.1, 0.1])
    assert runs[C, flat] == pytest.approx(runs[T, flat])
    assert runs[C, nested] == pytest.approx(runs[T, flat])
    assert runs[T, nested] == pytest.approx([0.5, 0.5, 1.0, 0.5, 0.25, 0.125, 0.1, 0.1, 0.1])  # one step early


def test_chained_inside_sequential() -> None:
    """Torch steps the chained children once too often as first child, and raises at any other position."""
    def chained(lib: Any, opt: torch.optim.Optimizer) -> Any:
        return lib.ChainedScheduler([lib.ExponentialLR(opt, 0.5), lib.ConstantLR(opt, 0.1, total_iters=2)])

    opt = make_optimizer("sgd", [1.0])
    alone = trajectory(chained(T, opt), opt, 5)[:, 0]
    assert alone == pytest.approx([0.1, 0.05, 0.25, 0.125, 0.0625, 0.03125])
    results = {}
    for lib in (C, T):
        opt = make_optimizer("sgd", [1.0])
        outer = lib.SequentialLR(opt, [chained(lib, opt), lib.ConstantLR(opt, 0.1, total_iters=100)], [5])
        results[lib] = trajectory(outer, opt, 6)[:, 0]
    assert results[C] == pytest.approx([*alone[:5], 0.1, 0.1])
    assert results[T] == pytest.approx([0.05, 0.025, 0.125, 0.0625, 0.03125, 0.1, 0.1])  # exponential a step early

    opt = make_optimizer("sgd", [1.0])
    ours = C.SequentialLR(opt, [C.ConstantLR(opt, 0.2, total_iters=100), chained(C, opt)], [2])
    assert trajectory(ours, opt, 4)[:, 0] == pytest.approx([0.2, 0.2, *alone[:3]])
    opt = make_optimizer("sgd", [1.0])
    theirs = T.SequentialLR(opt, [T.ConstantLR(opt, 0.2, total_iters=100), chained(T, opt)], [2])
    with pytest.raises(NotImplementedError):
        trajectory(theirs, opt, 4)


def test_torch_composites_reject_plateau_children() -> None:
    opt = make_optimizer("sgd", [0.1])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        T.SequentialLR(opt, [T.LinearLR(opt), T.ReduceLROnPlateau(opt)], [5])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        T.ChainedScheduler([T.ExponentialLR(opt, 0.9), T.ReduceLROnPlateau(opt)])
    C.SequentialLR(opt, [C.LinearLR(opt), C.ReduceLROnPlateau(opt)], [5])
    C.ChainedScheduler([C.ExponentialLR(opt, 0.9), C.ReduceLROnPlateau(opt)])


def test_plateau_is_an_instance_of_torch_plateau_so_trainers_pass_it_the_metric() -> None:
    """Lightning and the HF Trainer call ``step(metric)`` only on instances of torch's class, else ``step()``."""
    opt = make_optimizer("sgd", [0.1])
    assert isinstance(C.ReduceLROnPlateau(opt), T.ReduceLROnPlateau)
    assert not isinstance(C.StepLR(opt, 2), T.ReduceLROnPlateau)


def test_chained_cosine_past_t_max_is_a_product_unlike_torch() -> None:
    """After T_max torch's chained cosine adds ``base * (1 - cos(pi / T_max)) / 2``, not scaled by the others."""
    def chain(lib: Any, opt: torch.optim.Optimizer) -> Any:
        return lib.ChainedScheduler([lib.CosineAnnealingLR(opt, 10), lib.ExponentialLR(opt, 0.5)])

    (opt_t, opt_l) = make_optimizer("sgd", [1.0]), make_optimizer("sgd", [1.0])
    theirs, ours = trajectory(chain(T, opt_t), opt_t, 11)[:, 0], trajectory(chain(C, opt_l), opt_l, 11)[:, 0]
    product = [(1 + math.cos(math.pi * t / 10)) / 2 * 0.5**t for t in range(12)]
    assert ours == pytest.approx(product, rel=1e-12, abs=1e-15)
    assert theirs[:11] == pytest.approx(product[:11], rel=1e-9, abs=1e-15)
    # torch restarts the cosine from an unscaled term, then applies only this step's 0.5: 0.5 ** 10 is lost
    assert theirs[11] == pytest.approx((1 - math.cos(math.pi / 10)) / 2 * 0.5)
    assert theirs[11] > 1000 * product[11]


# --- torch bugs: torch's wrong behaviour next to ours -------------------------------------------------------

def test_one_cycle_stays_at_minimum_from_total_steps() -> None:
    lrs = {}
    for lib in (C, T):
        opt = make_optimizer("sgd", [0.1])
        lrs[lib] = trajectory(lib.OneCycleLR(opt, max_lr=1.0, total_steps=10), opt, 10)[:, 0]
    minimum = 1.0 / 25 / 1e4
    assert lrs[C][:10] == pytest.approx(lrs[T][:10])
    assert lrs[C][9] == pytest.approx(minimum) and lrs[C][10] == pytest.approx(minimum)
    assert lrs[T][10] == pytest.approx(lrs[T][8])  # torch climbs back up at total_steps
    opt = make_optimizer("sgd", [0.1])
    theirs = T.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    for _ in range(10):
        theirs.step()
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        theirs.step()
    opt = make_optimizer("sgd", [0.1])
    assert trajectory(C.OneCycleLR(opt, max_lr=1.0, total_steps=10), opt, 100)[10:, 0] == pytest.approx(minimum)


@pytest.mark.parametrize(("pct_start", "total_steps", "three_phase"), [(0.1, 10, False), (0.5, 2, False),
                                                                      (0.25, 4, True)])
def test_one_cycle_with_one_step_warmup_starts_at_peak(pct_start: float, total_steps: int, three_phase: bool) -> None:
    with pytest.raises(ZeroDivisionError):
        T.OneCycleLR(make_optimizer("sgd", [0.1]), 1.0, total_steps, pct_start=pct_start, three_phase=three_phase)
    opt = make_optimizer("sgd", [0.1])
    lrs = trajectory(C.OneCycleLR(opt, 1.0, total_steps, pct_start=pct_start, three_phase=three_phase), opt,
                     total_steps - 1)
    assert lrs[0, 0] == 1.0 and lrs[0, 1] == 0.85  # peak LR, lowest momentum
    assert lrs[-1, 0] == pytest.approx(1.0 / 25 / 1e4)


def test_constant_lr_with_factor_zero() -> None:
    opt = make_optimizer("sgd", [0.1])
    theirs = T.ConstantLR(opt, factor=0.0, total_iters=3)
    theirs.step()
    theirs.step()
    with pytest.raises(ZeroDivisionError):
        theirs.step()
    opt = make_optimizer("sgd", [0.1])
    assert trajectory(C.ConstantLR(opt, factor=0.0, total_iters=3), opt, 5)[:, 0].tolist() == [0, 0, 0, 0.1, 0.1, 0.1]


def test_constant_lr_with_zero_total_iters_never_applies_the_factor() -> None:
    opt = make_optimizer("sgd", [0.1])
    theirs = trajectory(T.ConstantLR(opt, factor=0.5, total_iters=0), opt, 3)[:, 0]
    assert theirs == pytest.approx([0.05] * 4)  # torch: the factor forever (its own closed form says 0.1)
    opt = make_optimizer("sgd", [0.1])
    assert trajectory(C.ConstantLR(opt, factor=0.5, total_iters=0), opt, 3)[:, 0] == pytest.approx([0.1] * 4)


# --- argument errors ----------------------------------------------------------------------------------------

def sgd() -> torch.optim.Optimizer:
    return make_optimizer("sgd", [0.1, 0.2])


INVALID: list[tuple[str, Any]] = [
    ("optimizer", lambda: C.StepLR("sgd", 3)),  # type: ignore[arg-type]
    ("step_size", lambda: C.StepLR(sgd(), 0)),
    ("gamma", lambda: C.StepLR(sgd(), 3, gamma=-0.1)),
    ("last_epoch", lambda: C.StepLR(sgd(), 3, last_epoch=-2)),
    ("milestones", lambda: C.MultiStepLR(sgd(), [3, -1])),
    ("milestones", lambda: C.MultiStepLR(sgd(), [3, 2.5])),
    ("factor", lambda: C.ConstantLR(sgd(), factor=1.5)),
    ("total_iters", lambda: C.ConstantLR(sgd(), total_iters=-1)),
    ("start_factor", lambda: C.LinearLR(sgd(), start_factor=0.0)),
    ("end_factor", lambda: C.LinearLR(sgd(), end_factor=1.5)),
    ("total_iters", lambda: C.LinearLR(sgd(), total_iters=0)),
    ("gamma", lambda: C.ExponentialLR(sgd(), 0.0)),
    ("total_iters", lambda: C.PolynomialLR(sgd(), total_iters=0)),
    ("power", lambda: C.PolynomialLR(sgd(), power=-1.0)),
    ("T_max", lambda: C.CosineAnnealingLR(sgd(), 0)),
    ("eta_min", lambda: C.CosineAnnealingLR(sgd(), 10, eta_min=-1.0)),
    ("T_0", lambda: C.CosineAnnealingWarmRestarts(sgd(), 0)),
    ("T_mult", lambda: C.CosineAnnealingWarmRestarts(sgd(), 5, T_mult=0)),
    ("T_mult", lambda: C.CosineAnnealingWarmRestarts(sgd(), 5, T_mult=1.5)),
    ("eta_min", lambda: C.CosineAnnealingWarmRestarts(sgd(), 5, eta_min=math.nan)),
    ("base_lr", lambda: C.CyclicLR(sgd(), [0.1], 1.0)),
    ("max_lr", lambda: C.CyclicLR(sgd(), 0.1, -1.0)),
    ("step_size_up", lambda: C.CyclicLR(sgd(), 0.1, 1.0, step_size_up=0)),
    ("step_size_down", lambda: C.CyclicLR(sgd(), 0.1, 1.0, step_size_down=-1)),
    ("mode", lambda: C.CyclicLR(sgd(), 0.1, 1.0, mode="triangle")),
    ("gamma", lambda: C.CyclicLR(sgd(), 0.1, 1.0, gamma=0.0)),
    ("scale_fn", lambda: C.CyclicLR(sgd(), 0.1, 1.0, scale_fn=3)),
    ("scale_mode", lambda: C.CyclicLR(sgd(), 0.1, 1.0, scale_mode="epochs")),
    ("cycle_momentum", lambda: C.CyclicLR(make_optimizer("adagrad", [0.1]), 0.1, 1.0)),
    ("base_momentum", lambda: C.CyclicLR(sgd(), 0.1, 1.0, base_momentum=[0.8, 0.8, 0.8])),
    ("max_lr", lambda: C.OneCycleLR(sgd(), [1.0, 2.0, 3.0], 100)),
    ("total_steps", lambda: C.OneCycleLR(sgd(), 1.0, 0)),
    ("total_steps", lambda: C.OneCycleLR(sgd(), 1.0)),
    ("epochs", lambda: C.OneCycleLR(sgd(), 1.0, epochs=0, steps_per_epoch=10)),
    ("steps_per_epoch", lambda: C.OneCycleLR(sgd(), 1.0, epochs=3, steps_per_epoch=0)),
    ("pct_start", lambda: C.OneCycleLR(sgd(), 1.0, 100, pct_start=1.5)),
    ("anneal_strategy", lambda: C.OneCycleLR(sgd(), 1.0, 100, anneal_strategy="cosine")),
    ("div_factor", lambda: C.OneCycleLR(sgd(), 1.0, 100, div_factor=0.0)),
    ("final_div_factor", lambda: C.OneCycleLR(sgd(), 1.0, 100, final_div_factor=-1.0)),
    ("max_momentum", lambda: C.OneCycleLR(sgd(), 1.0, 100, max_momentum=1.5)),
    ("cycle_momentum", lambda: C.OneCycleLR(make_optimizer("adagrad", [0.1]), 1.0, 100)),
    ("mode", lambda: C.ReduceLROnPlateau(sgd(), mode="minimum")),
    ("factor", lambda: C.ReduceLROnPlateau(sgd(), factor=1.0)),
    ("patience", lambda: C.ReduceLROnPlateau(sgd(), patience=-1)),
    ("threshold", lambda: C.ReduceLROnPlateau(sgd(), threshold=-0.1)),
    ("threshold_mode", lambda: C.ReduceLROnPlateau(sgd(), threshold_mode="relative")),
    ("cooldown", lambda: C.ReduceLROnPlateau(sgd(), cooldown=-1)),
    ("min_lr", lambda: C.ReduceLROnPlateau(sgd(), min_lr=[0.0])),
    ("eps", lambda: C.ReduceLROnPlateau(sgd(), eps=-1.0)),
    ("lr_lambda", lambda: C.LambdaLR(sgd(), 0.5)),
    ("lr_lambda", lambda: C.LambdaLR(sgd(), [lam_warmup])),
    ("lr_lambda", lambda: C.MultiplicativeLR(sgd(), [None, None])),
    ("schedulers", lambda: C.SequentialLR(sgd(), [], [])),
    ("milestones", lambda: (lambda o: C.SequentialLR(o, [C.StepLR(o, 2), C.StepLR(o, 3)], []))(sgd())),
    ("milestones", lambda: (lambda o: C.SequentialLR(o, [C.StepLR(o, 2), C.StepLR(o, 3), C.StepLR(o, 4)],
                                                    [5, 2]))(sgd())),
    ("milestones", lambda: (lambda o: C.SequentialLR(o, [C.StepLR(o, 2), C.StepLR(o, 3)], [-1]))(sgd())),
    ("schedulers[1]", lambda: (lambda o: C.SequentialLR(o, [C.StepLR(o, 2), T.StepLR(o, 3)], [3]))(sgd())),
    ("schedulers[0]", lambda: (lambda o: C.SequentialLR(sgd(), [C.StepLR(o, 2)], []))(sgd())),
    ("schedulers", lambda: C.ChainedScheduler([])),
    ("schedulers[1]", lambda: (lambda o: C.ChainedScheduler([C.StepLR(o, 2), C.StepLR(sgd(), 3)]))(sgd())),
    ("schedulers[0]", lambda: (lambda o: C.ChainedScheduler([T.StepLR(o, 2)]))(sgd())),
]


@pytest.mark.parametrize(("argument", "make"), INVALID, ids=[f"{i}-{a}" for i, (a, _) in enumerate(INVALID)])
def test_invalid_arguments_name_the_argument(argument: str, make: Any) -> None:
    with pytest.raises(ValueError) as error:
        make()
    message = str(error.value)
    assert message.startswith(f"{argument}="), message
    assert "is invalid" in message and "expected" in message and "\n" not in message, message


# --- the API around the sequence, side by side with torch (issue 10) ----------------------------------------

def twin(lib: Any, kind: str = "sgd", lrs: list[float] | None = None) -> torch.optim.Optimizer:
    return make_optimizer(kind, lrs or [0.1, 0.03])


RATIO_CLASSES = ["StepLR", "MultiStepLR", "ExponentialLR", "ConstantLR", "LinearLR", "PolynomialLR",
                 "MultiplicativeLR"]


@parity
@given(data=st.data(), lrs=base_lrs)
def test_schedulers_sharing_an_optimizer_multiply_as_torch(data: st.DataObject, lrs: list[float]) -> None:
    """Several schedulers stepped on one optimizer, in a random order each step: torch's chained LRs."""
    names = data.draw(st.lists(st.sampled_from(RATIO_CLASSES), min_size=2, max_size=3))
    specs = [spec_for(data.draw, name, len(lrs))[0] for name in names]
    steps = data.draw(st.integers(0, 300))
    orders = data.draw(st.lists(st.permutations(range(len(specs))), min_size=steps, max_size=steps))
    runs = []
    for lib in (T, C):
        opt = make_optimizer("sgd", lrs)
        scheds = [build(lib, opt, spec) for spec in specs]
        rows = [state(opt)]
        for order in orders:
            for i in order:
                scheds[i].step()
            rows.append(state(opt))
        runs.append(np.array(rows))
    assert_matches(runs[0], runs[1], len(lrs), f"{names} on one optimizer")


def test_chaining_in_both_orders_and_plateau_beside_a_decay() -> None:
    for first, second in [(0, 1), (1, 0)]:
        results = []
        for lib in (T, C):
            opt = twin(lib)
            scheds = [lib.StepLR(opt, 1, 0.1), lib.ExponentialLR(opt, 0.9)]
            for _ in range(3):
                opt.step()
                scheds[first].step()
                scheds[second].step()
            results.append(state(opt)[:2])
        assert results[1] == pytest.approx(results[0], rel=1e-12)
        assert results[1][0] == pytest.approx(0.1 * 0.1**3 * 0.9**3)
    metrics = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]
    results = []
    for lib in (T, C):
        opt = twin(lib)
        plateau, decay = lib.ReduceLROnPlateau(opt, patience=1, min_lr=[0.0, 0.02]), lib.StepLR(opt, 2, 0.5)
        rows = []
        for m in metrics:
            opt.step()
            decay.step()
            plateau.step(m)
            rows.append(state(opt)[:2])
        results.append(rows)
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12)


def test_mixing_a_class_torch_does_not_chain_warns() -> None:
    opt = twin(C)
    with pytest.warns(UserWarning, match="lrlab multiplies their factors"):
        cosine, cyclic = C.CosineAnnealingLR(opt, 20, eta_min=0.01), C.CyclicLR(opt, 0.01, 0.1, cycle_momentum=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per optimizer
        opt.step()
        cosine.step()
        cyclic.step()


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
                                  "PolynomialLR", "CosineAnnealingLR", "CyclicLR", "OneCycleLR", "LambdaLR"])
def test_step_with_epoch_as_torch(name: str) -> None:
    spec = dict(RESUMABLE)[name]
    epochs = [0, 3, 3, 7, 2, 11, 5]
    runs = []
    for lib in (T, C):
        opt = twin(lib)
        sched = build(lib, opt, (name, spec))
        rows = []
        for e in epochs:
            opt.step()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sched.step(e)
            assert [str(w.message) for w in caught] == [T.EPOCH_DEPRECATION_WARNING]
            rows.append(state(opt))
        runs.append(np.array(rows))
    assert_matches(runs[0], runs[1], 2, name)


@settings(max_examples=30, deadline=None)
@given(t0=st.integers(1, 20), t_mult=st.integers(1, 3),
       epochs=st.lists(st.floats(0.0, 200.0) | st.integers(0, 200), min_size=1, max_size=30))
def test_cosine_warm_restarts_fractional_epochs_as_torch(t0: int, t_mult: int, epochs: list[float]) -> None:
    runs = []
    for lib in (T, C):
        opt = twin(lib)
        sched = lib.CosineAnnealingWarmRestarts(opt, t0, t_mult, eta_min=1e-3)
        rows = []
        for e in epochs:
            sched.step(e)
            sched.step()
            rows.append([*state(opt), sched.T_cur, sched.T_i, sched.last_epoch])
        runs.append(np.array(rows).reshape(len(epochs), -1))
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-9, atol=1e-12)


def test_tensor_lrs_stay_tensors_filled_in_place() -> None:
    for lib in (T, C):
        lr = torch.tensor(0.1)
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
        sched = lib.CyclicLR(opt, torch.tensor(0.01), torch.tensor(0.1), step_size_up=2,
                             base_momentum=torch.tensor(0.8), max_momentum=torch.tensor(0.9))
        group = opt.param_groups[0]
        opt.step()
        sched.step()
        assert group["lr"] is lr and float(lr) == pytest.approx(0.055)
        assert isinstance(sched.get_last_lr()[0], torch.Tensor) and sched.get_last_lr()[0] is not lr
        onecycle_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=torch.tensor(0.1), momentum=0.9)
        lib.OneCycleLR(onecycle_opt, torch.tensor(1.0), 10, base_momentum=torch.tensor(0.85))
        assert float(onecycle_opt.param_groups[0]["lr"]) == pytest.approx(0.04)


@pytest.mark.parametrize("min_lr", [0.0, [0.0, 0.0]])
def test_reduce_lr_on_plateau_after_add_param_group(min_lr: Any) -> None:
    runs = []
    for lib in (T, C):
        opt = twin(lib)
        sched = lib.ReduceLROnPlateau(opt, patience=0, min_lr=min_lr)
        sched.step(1.0)
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.05})
        if isinstance(min_lr, list):
            sched.min_lrs.append(0.001)
        for m in [2.0, 3.0, 0.5, 0.6]:
            sched.step(m)
        runs.append([g["lr"] for g in opt.param_groups] + list(sched.min_lrs))
    assert runs[1] == pytest.approx(runs[0], rel=1e-12)
    for lib in (T, C):
        opt = twin(lib)
        sched = lib.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0, 0.0])
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.05})
        sched.step(1.0)
        with pytest.raises(RuntimeError, match="The number of param groups in the"):
            sched.step(2.0)


def test_order_warnings_as_torch() -> None:
    for lib in (T, C):
        opt = twin(lib)
        sched = lib.StepLR(opt, 2)
        with pytest.warns(UserWarning, match=r"`lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
            sched.step()
        opt = twin(lib)
        sched = lib.ExponentialLR(opt, 0.9)
        opt.step = opt.step.__wrapped__.__get__(opt)  # replaced after the scheduler was built
        with pytest.warns(UserWarning, match="has been overridden"):
            sched.step()


HYPER_PARAMETERS: list[tuple[Spec, list[str]]] = [
    (("StepLR", {"step_size": 3, "gamma": 0.5}), ["gamma", "step_size"]),
    (("MultiStepLR", {"milestones": [2, 5, 5], "gamma": 0.5}), ["gamma", "milestones"]),
    (("ConstantLR", {"factor": 0.25, "total_iters": 12}), ["factor", "total_iters"]),
    (("LinearLR", {"start_factor": 0.1, "end_factor": 0.5, "total_iters": 25}),
     ["start_factor", "end_factor", "total_iters"]),
    (("ExponentialLR", {"gamma": 0.97}), ["gamma"]),
    (("PolynomialLR", {"total_iters": 30, "power": 2.0}), ["power", "total_iters"]),
    (("CosineAnnealingLR", {"T_max": 17, "eta_min": 1e-3}), ["T_max", "eta_min"]),
    (("CosineAnnealingWarmRestarts", {"T_0": 5, "T_mult": 2}), ["T_0", "T_i", "T_mult", "T_cur", "eta_min"]),
    (("CyclicLR", {"base_lr": 0.01, "max_lr": [0.1, 0.2], "step_size_up": 4, "mode": "exp_range", "gamma": 0.99}),
     ["max_lrs", "mode", "gamma", "scale_mode", "cycle_momentum", "base_momentums", "max_momentums",
      "step_ratio", "total_size", "use_beta1"]),
    (("OneCycleLR", {"max_lr": 0.5, "total_steps": 60}), ["cycle_momentum", "use_beta1", "total_steps"]),
    (("ReduceLROnPlateau", {"mode": "max", "factor": 0.5, "min_lr": 1e-3}),
     ["mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lrs", "eps", "mode_worse",
      "best", "num_bad_epochs", "cooldown_counter"]),
]


@pytest.mark.parametrize(("spec", "names"), HYPER_PARAMETERS, ids=[s[0] for s, _ in HYPER_PARAMETERS])
def test_public_attributes_and_state_keys_as_torch(spec: Spec, names: list[str]) -> None:
    ours, theirs = build(C, twin(C), spec), build(T, twin(T), spec)
    for name in names:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert set(theirs.state_dict()) <= set(ours.state_dict())
    extra = set(ours.state_dict()) - set(theirs.state_dict())
    assert extra <= {"_pct_start", "_div_factor", "_final_div_factor", "_step_count", "base_lrs", "_scales",
                     "_observations"}, extra


CHECKPOINTED: list[Spec] = [s for s in RESUMABLE if s[0] not in ("SequentialLR", "ChainedScheduler")] + [
    ("SequentialLR", {"schedulers": [("LinearLR", {"total_iters": 5}), ("CosineAnnealingLR", {"T_max": 9})],
                      "milestones": [5]}),
    ("ChainedScheduler", {"schedulers": [("ExponentialLR", {"gamma": 0.98}), ("StepLR", {"step_size": 4})]}),
]


@pytest.mark.parametrize("spec", CHECKPOINTED, ids=[f"{i}-{s[0]}" for i, s in enumerate(CHECKPOINTED)])
@pytest.mark.parametrize(("writer", "reader"), [(T, C), (C, T)], ids=["torch-to-lrlab", "lrlab-to-torch"])
def test_checkpoints_cross_between_torch_and_lrlab(spec: Spec, writer: Any, reader: Any) -> None:
    """A checkpoint (optimizer + scheduler) written by one library resumes in the other at the writer's LRs."""
    lrs, steps, rest = [0.1, 0.03], 23, 15
    metrics = [math.sin(t) * 0.1 + (t // 7) * 0.01 for t in range(steps + rest)] \
        if spec[0] == "ReduceLROnPlateau" else None
    opt = make_optimizer("sgd", lrs)
    sched = build(writer, opt, spec)
    trajectory(sched, opt, steps, metrics)
    buffer = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, buffer)
    uninterrupted = trajectory(sched, opt, rest, metrics and metrics[steps:])

    fresh_opt = make_optimizer("sgd", lrs)
    fresh = build(reader, fresh_opt, spec)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    fresh_opt.load_state_dict(saved["optimizer"])
    fresh.load_state_dict(saved["scheduler"])
    resumed = trajectory(fresh, fresh_opt, rest, metrics and metrics[steps:])
    assert_matches(uninterrupted, resumed, len(lrs), f"{spec[0]} resumed")


def test_composite_children_are_stepped_as_torch() -> None:
    results = []
    for lib in (T, C):
        opt = twin(lib, lrs=[0.1])
        first, second = lib.StepLR(opt, 1, 0.1), lib.ExponentialLR(opt, 0.5)
        seq = lib.SequentialLR(opt, [first, second], [2])
        chained_opt = twin(lib, lrs=[0.1])
        a, b = lib.StepLR(chained_opt, 1, 0.1), lib.ExponentialLR(chained_opt, 0.5)
        chained = lib.ChainedScheduler([a, b])
        rows = []
        for _ in range(4):
            seq.step()
            chained.step()
            rows.append([first.last_epoch, *first.get_last_lr(), second.last_epoch, *second.get_last_lr(),
                         a.last_epoch, *a.get_last_lr(), b.last_epoch, *b.get_last_lr()])
        results.append(rows)
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12)


def test_stepping_a_driven_child_is_refused() -> None:
    opt = twin(C)
    child = C.StepLR(opt, 2)
    chained = C.ChainedScheduler([child, C.ExponentialLR(opt, 0.9)])
    assert chained.last_epoch == 0
    with pytest.raises(ValueError, match="expected a step of the ChainedScheduler"):
        child.step()


def test_multiplicative_step_with_epoch_warns_that_torch_differs() -> None:
    opt = twin(C)
    sched = C.MultiplicativeLR(opt, partial(mul_constant, 0.5))
    with pytest.warns(UserWarning, match="torch multiplies the current LR"):
        sched.step(3)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)

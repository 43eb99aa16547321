"""Invariants shared by every schedule, and known values of each one."""

from __future__ import annotations

import itertools
import math
import pickle
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab import schedules
from lrlab.schedules import (
    Anneal,
    Clamp,
    Constant,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    Function,
    InverseSqrt,
    Join,
    MultiStep,
    OneCycle,
    OneCycleMomentum,
    Polynomial,
    Schedule,
    Step,
    Tanh,
    Warmup,
    adam_warmup_steps,
    warmup,
    warmup_cosine,
    wsd,
)
from schedule_examples import EXAMPLES, HORIZON, curve

NAMES = sorted(EXAMPLES)


def test_schedules_package_does_not_import_torch():
    code = "import sys, lrlab.schedules; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", NAMES)
def test_values_are_finite_and_nonnegative(name):
    assert all(math.isfinite(v) and v >= 0 for v in curve(EXAMPLES[name]))


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_keeps_value_and_curve(name):
    schedule = EXAMPLES[name]
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule
    assert curve(copy) == curve(schedule)


@pytest.mark.parametrize("name", NAMES)
def test_repr_names_the_class_and_its_arguments(name):
    text = repr(EXAMPLES[name])
    assert text.startswith(type(EXAMPLES[name]).__name__ + "(")
    assert "=" in text


@pytest.mark.parametrize("name", NAMES)
def test_negative_step_is_rejected(name):
    with pytest.raises(ValueError, match="step=-1"):
        EXAMPLES[name](-1)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), order=st.lists(st.integers(0, 5 * HORIZON), min_size=1, max_size=30))
def test_value_does_not_depend_on_call_order_or_history(name, order):
    """Closed form: asking steps in any order, any number of times, gives the same values."""
    schedule = EXAMPLES[name]
    fresh = pickle.loads(pickle.dumps(schedule))
    expected = {t: fresh(t) for t in sorted(set(order))}
    assert [schedule(t) for t in order] == [expected[t] for t in order]


# ---- known values (each class's docstring example runs as a doctest; here what those do not show) -------

SCHEDULE_CLASSES = [c for c in vars(schedules).values()
                    if isinstance(c, type) and issubclass(c, Schedule) and c is not Schedule]


@pytest.mark.parametrize("cls", SCHEDULE_CLASSES, ids=lambda c: c.__name__)
def test_every_schedule_class_documents_its_formula_and_an_example(cls):
    """The formula on an indented ``value... =`` line and a ``>>>`` example, which pytest runs as a doctest."""
    doc = cls.__doc__ or ""
    assert re.search(r"^ {8}value(\(t\))? = ", doc, re.MULTILINE), f"{cls.__name__} has no formula line"
    assert ">>> " in doc, f"{cls.__name__} has no example"


def test_known_values():
    assert math.isclose(Anneal(1.0, 0.0, 4, "1-sqrt")(1), 0.5)
    assert Cosine(1.0, 0.1, steps=10)(50) == 0.1
    assert InverseSqrt(1.0, 100)(300) == 0.5


def test_sgdr_restarts_at_each_cycle_start():
    s = CosineRestarts(1.0, 0.0, period_steps=10)
    assert [s(t) for t in (0, 10, 20)] == [1.0, 1.0, 1.0]
    assert math.isclose(s(5), 0.5)
    doubling = CosineRestarts(1.0, 0.0, period_steps=10, period_mult=2.0, decay=0.5)
    assert doubling.cycle_at(10) == (1, 0.0, 20.0)
    assert doubling.cycle_at(29) == (1, 19.0, 20.0)
    assert doubling.cycle_at(30) == (2, 0.0, 40.0)
    assert doubling(30) == 0.25


@settings(max_examples=100, deadline=None)
@given(period=st.integers(1, 50), mult=st.floats(1.0, 3.0), step=st.integers(0, 3000))
def test_sgdr_cycle_matches_brute_force_accumulation(period, mult, step):
    s = CosineRestarts(1.0, 0.0, period, mult)
    cycle, start, length = 0, 0.0, float(period)
    while start + length <= step + 1e-9 * max(1, step):
        start, length, cycle = start + length, length * mult, cycle + 1
    got_cycle, into, got_length = s.cycle_at(step)
    assert got_cycle == cycle
    assert math.isclose(into, step - start, abs_tol=1e-6)
    assert math.isclose(got_length, length, rel_tol=1e-9)


def test_sgdr_cycle_limit_holds_the_floor():
    s = CosineRestarts(1.0, 0.05, period_steps=10, max_cycles=2)
    assert s(19) > 0.05
    assert s(20) == s(500) == 0.05


def test_cyclic_modes():
    tri = Cyclic(0.0, 1.0, 10)
    assert [tri(t) for t in (0, 5, 10, 15, 20)] == [0.0, 0.5, 1.0, 0.5, 0.0]
    tri2 = Cyclic(0.0, 1.0, 10, mode="triangular2")
    assert tri2(30) == 0.5
    assert [Cyclic(0.0, 1.0, 10, descending=True)(t) for t in (0, 5, 10)] == [1.0, 0.5, 0.0]


def test_onecycle_ends_at_minimum_and_stays_there():
    s = OneCycle(0.1, 100)
    low = 0.1 / 25 / 1e4
    assert math.isclose(s(0), 0.1 / 25)
    assert math.isclose(s(29), 0.1)
    assert math.isclose(s(99), low)
    assert s(100) == s(10_000) == s(99)


def test_onecycle_warmup_shorter_than_a_step_starts_at_peak():
    assert OneCycle(0.1, 10, pct_start=0.1)(0) == 0.1


def test_onecycle_momentum_mirrors_the_lr_in_three_phases():
    m = OneCycleMomentum(100, pct_start=0.25, base_momentum=0.85, max_momentum=0.95, three_phase=True)
    assert m(0) == 0.95
    assert math.isclose(m(24), 0.85)
    assert math.isclose(m(48), 0.95)
    assert m(48) == m(99) == m(200)


# ---- combinators ---------------------------------------------------------------------------------------

def test_warmup_ramps_to_the_schedule_start_then_rebases():
    s = warmup(Cosine(1.0, 0.0, 100), 4)
    assert [s(t) for t in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert s(54) == Cosine(1.0, 0.0, 100)(50)


@pytest.mark.parametrize("shape", ["linear", "cosine", "exponential"])
@pytest.mark.parametrize("start", [0.0, 0.1])
def test_warmup_shapes_are_monotone_and_continuous(shape, start):
    if shape == "exponential" and start == 0.0:
        with pytest.raises(ValueError, match="start_factor"):
            warmup(Constant(1.0), 20, shape, start)
        return
    s = warmup(Constant(2.0), 20, shape, start)
    values = curve(s, 25)
    assert values[0] == pytest.approx(2.0 * start)
    assert all(a <= b for a, b in itertools.pairwise(values))
    assert values[20] == 2.0
    assert values[19] > 1.7  # one step short of the target, no jump at the boundary


@pytest.mark.parametrize("name", ["warmup_cosine", "wsd-1-sqrt", "wsd-linear", "wsd-cosine", "join"])
def test_composite_presets_are_continuous(name):
    """No jump at a phase boundary: every step changes by at most the steepest in-phase change, here the
    first step of a 60-step 1-sqrt cooldown from 0.1 (0.1 * sqrt(1/60) = 0.0129)."""
    values = curve(EXAMPLES[name], 300)
    jumps = [abs(b - a) for a, b in itertools.pairwise(values)]
    assert max(jumps) <= 0.1 * math.sqrt(1 / 60) + 1e-12


def test_product_scale_clamp_operators():
    a, b = Cosine(1.0, 0.0, 10), Constant(0.5)
    assert (a * b)(5) == pytest.approx(0.25)
    assert (a * 0.5)(0) == 0.5
    assert (0.5 * a)(0) == 0.5
    assert isinstance(a.clamp(0.2), Clamp)
    assert a.clamp(0.2)(10) == 0.2


# ---- validation: one clear ValueError naming the argument ----------------------------------------------

@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Step(1.0, step_size=0), "step_size=0"),
        (lambda: Step(-1.0, step_size=2), "init_lr=-1.0"),
        (lambda: MultiStep(1.0, (10, -1)), "milestones=-1"),
        (lambda: Exponential(1.0, 0.0), "gamma=0.0"),
        (lambda: Anneal(0.0, 1.0, 5, "sigmoid"), "shape='sigmoid'"),
        (lambda: Anneal(0.0, 1.0, 5, "exponential"), "start_lr=0.0"),
        (lambda: Polynomial(1.0, 0.0, 0), "steps=0"),
        (lambda: Cosine(1.0, 0.0, 0), "steps=0"),
        (lambda: Cosine(1.0, 0.0, 10, cyclic=True, k=2.0), "k=2.0"),
        (lambda: Anneal(1.0, 0.0, 10, "exp-ratio", ratio=1.0), "ratio=1.0"),
        (lambda: Cosine(float("nan")), "init_lr=nan"),
        (lambda: CosineRestarts(1.0, 0.0, 10, 0.5), "period_mult=0.5"),
        (lambda: CosineRestarts(1.0, 0.0, 10, max_cycles=0), "max_cycles=0"),
        (lambda: Cyclic(0.1, 1.0, 10, mode="sawtooth"), "mode='sawtooth'"),
        (lambda: OneCycle(0.1, 100, pct_start=1.5), "pct_start=1.5"),
        (lambda: OneCycle(0.1, 100, anneal_strategy="cosine"), "anneal_strategy='cosine'"),
        (lambda: OneCycle(0.1, 0), "total_steps=0"),
        (lambda: InverseSqrt(1.0, 0.0), "timescale=0.0"),
        (lambda: Tanh(1.0, 0.0, 10, lower=3.0, upper=-3.0), "upper=-3.0"),
        (lambda: Function(3.0), "fn=3.0"),
        (lambda: Join((Constant(1.0),), (5,)), "boundaries=[5]"),
        (lambda: Join((Constant(1.0), Constant(2.0)), (-5,)), "boundaries=-5"),
        (lambda: Warmup(Constant(1.0), -1), "steps=-1"),
        (lambda: Warmup(Constant(1.0), 5, start_factor=2.0), "start_factor=2.0"),
        (lambda: warmup_cosine(1.0, 100, 100), "warmup_steps=100"),
        (lambda: wsd(1.0, 100, 80, warmup_steps=30), "warmup_steps=30 + decay_steps=80"),
        (lambda: wsd(1.0, 100, 20, decay_shape="step"), "decay_shape='step'"),
        (lambda: adam_warmup_steps(1.0), "beta2=1.0"),
    ],
)
def test_invalid_arguments_raise_a_value_error_naming_them(build, field):
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    assert field in message
    assert "\n" not in message
    assert "expected" in message


def test_growing_schedules_overflow_to_inf_like_torch() -> None:
    from lrlab.schedules import Exponential, MultiStep, Step

    assert Exponential(0.1, 2.0)(5000) == math.inf
    assert Step(1.0, 1, 10.0)(400) == math.inf
    assert MultiStep(1.0, list(range(1, 400)), 10.0)(399) == math.inf
    assert Exponential(0.0, 2.0)(5000) == 0.0  # not 0 * inf = nan


def test_sgdr_with_a_growing_peak_and_many_cycles_stays_defined() -> None:
    from lrlab.schedules import CosineRestarts, Cyclic

    assert CosineRestarts(0.0, 0.0, 1, 1.0, 2.0)(1025) == 0.0
    assert CosineRestarts(1.0, 0.0, 1, 1.0, 2.0)(1025) == math.inf
    assert Cyclic(0.1, 0.1, 1, mode="exp_range", gamma=2.0)(2000) == 0.1
    assert Cyclic(0.1, 0.2, 1, mode="triangular2")(3000) == 0.1


def test_shift_starts_part_way_into_its_curve():
    cosine = Cosine(1.0, 0.0, steps=10)
    shifted = schedules.shift(cosine, 4)
    assert [shifted(t) for t in range(8)] == [cosine(t + 4) for t in range(8)]
    assert schedules.shift(cosine, 0) == schedules.Shift(cosine, 0)
    with pytest.raises(ValueError, match="steps=-1"):
        schedules.shift(cosine, -1)


def test_cut_keeps_its_own_clock_and_length_and_shift_counts_from_by():
    from lrlab.spec import Horizon, build

    forever = Horizon(total_steps=1000)
    cut = build("cut(cosine(init_lr=1.0, steps=10), steps=4) >> constant(lr=0.5)", forever).lr
    cosine = Cosine(1.0, 0.0, steps=10)
    assert [cut(t) for t in range(6)] == [cosine(0), cosine(1), cosine(2), cosine(3), 0.5, 0.5]
    held = build("cut(linear(start_lr=1.0, end_lr=0.0, steps=2), steps=4) >> constant(lr=0.5)", forever).lr
    assert [held(t) for t in range(5)] == [1.0, 0.5, 0.0, 0.0, 0.5]  # past its curve's end: its end, held
    shifted = build("linear(start_lr=0.0, end_lr=1.0, steps=2) >> shift(cosine(init_lr=1.0, steps=10), by_steps=2)",
                    forever).lr
    assert [shifted(t) for t in (0, 2, 5, 10)] == [0.0, cosine(2), cosine(5), 0.0]  # the clock ran through the ramp


def test_the_plain_cosine_is_torchs_closed_form_bit_for_bit() -> None:
    # the order of operations of torch's CosineAnnealingLR._get_closed_form_lr: stored LRs stay bitwise stable
    from lrlab.schedules import Cosine

    for init, low, steps in ((0.1, 0.0, 1200), (0.05, 1e-4, 333), (1.0, 0.2, 7)):
        s = Cosine(init, low, steps=steps)
        assert all(s(t) == low + (init - low) * (1 + math.cos(math.pi * t / steps)) / 2 for t in range(steps))

"""lrlab.compat.optax side by side with optax's own schedule functions, on random configurations.

Convention tested: lrlab's ``schedule(t)`` equals optax's ``schedule(t)`` (``t`` = updates done, optax's
``count``) for every ``t`` from 0 to past the schedule's last change, with jax in float64 so float32
rounding does not dominate. Equal to ``rtol=1e-6`` (absolute floor 1e-12). optax's schedules are evaluated
at all ``t`` at once (``jax.vmap``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

from lrlab.compat import optax as compat  # noqa: E402
from lrlab.spec import Horizon, build  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
values = st.one_of(st.sampled_from([0.0, 1.0, 0.1]), st.floats(0.0, 2.0, allow_subnormal=False))
lengths = st.integers(1, 40)
begins = st.integers(-3, 20)


def assert_same(name: str, args: tuple, kwargs: dict, steps: int) -> None:
    """optax's ``name(*args, **kwargs)`` and lrlab's, at every step below ``steps``, and through the spec."""
    theirs_fn = getattr(optax, name)(*args, **kwargs)
    ts = np.arange(steps)
    theirs = np.broadcast_to(np.asarray(jax.vmap(lambda t: theirs_fn(t) + 0.0 * t)(ts), dtype=np.float64), ts.shape)
    ours = getattr(compat, name)(*args, **kwargs)
    spec = compat.to_spec(name, *args, **kwargs) if name != "join_schedules" else ours.spec
    rebuilt = build(spec, Horizon(total_steps=10**6)).lr
    for t, expected in enumerate(theirs):
        for got in (ours(t), rebuilt(t)):
            assert math.isclose(got, float(expected), rel_tol=1e-6, abs_tol=1e-12), (name, spec, t, got, expected)


@SETTINGS
@given(value=values)
def test_constant(value):
    assert_same("constant_schedule", (value,), {}, 5)


@SETTINGS
@given(init=values, end=values, power=st.one_of(st.just(1.0), st.floats(0.0, 4.0)), steps=st.integers(-1, 40),
       begin=begins, linear=st.booleans())
def test_polynomial_and_linear(init, end, power, steps, begin, linear):
    kwargs = dict(init_value=init, end_value=end, transition_steps=steps, transition_begin=begin)
    if linear:
        assert_same("linear_schedule", (), kwargs, max(begin, 0) + max(steps, 0) + 5)
    else:
        assert_same("polynomial_schedule", (), {**kwargs, "power": power}, max(begin, 0) + max(steps, 0) + 5)


@SETTINGS
@given(init=values, steps=st.integers(0, 20), rate=st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.05, 2.0)),
       begin=begins, staircase=st.booleans(), end=st.one_of(st.none(), values), warmup=st.one_of(st.none(), lengths),
       peak=values)
def test_exponential_decay_with_and_without_warmup(init, steps, rate, begin, staircase, end, warmup, peak):
    kwargs = dict(transition_steps=steps, decay_rate=rate, transition_begin=begin, staircase=staircase, end_value=end)
    horizon = (warmup or 0) + max(begin, 0) + 4 * max(steps, 1) + 5
    if warmup is None:
        assert_same("exponential_decay", (init,), kwargs, horizon)
    else:
        assert_same("warmup_exponential_decay_schedule", (init, peak, warmup), kwargs, horizon)


@SETTINGS
@given(init=values, steps=lengths, alpha=st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
       exponent=st.one_of(st.just(1.0), st.floats(0.2, 4.0)))
def test_cosine_decay(init, steps, alpha, exponent):
    assert_same("cosine_decay_schedule", (init, steps), dict(alpha=alpha, exponent=exponent), steps + 5)


@SETTINGS
@given(init=values, peak=values, warmup=st.integers(0, 20), decay=lengths, end=values,
       exponent=st.one_of(st.just(1.0), st.floats(0.2, 4.0)), constant=st.booleans())
def test_warmup_cosine_and_warmup_constant(init, peak, warmup, decay, end, exponent, constant):
    if constant:
        assert_same("warmup_constant_schedule", (init, peak, warmup), {}, warmup + 5)
    else:
        kwargs = dict(end_value=end, exponent=exponent)
        assert_same("warmup_cosine_decay_schedule", (init, peak, warmup, warmup + decay), kwargs, warmup + decay + 5)


boundaries_and_scales = st.dictionaries(st.integers(0, 40), st.one_of(st.just(0.1), st.floats(0.0, 3.0)), max_size=4)


@SETTINGS
@given(init=values, bs=st.one_of(st.none(), boundaries_and_scales), kind=st.sampled_from(["constant", "linear",
                                                                                          "cosine"]))
def test_piecewise(init, bs, kind):
    if kind == "constant":
        assert_same("piecewise_constant_schedule", (init, bs), {}, 45)
    else:
        assert_same("piecewise_interpolate_schedule", (kind, init, bs), {}, 45)


@SETTINGS
@given(steps=st.integers(1, 60), peak=values, pct_start=st.floats(0.0, 1.0), pct_final=st.floats(0.0, 1.0),
       div=st.floats(1.0, 30.0), final_div=st.sampled_from([1e4, 10.0, 1.0]), linear=st.booleans())
def test_onecycles_put_their_phase_boundaries_at_int_pct_times_steps(steps, peak, pct_start, pct_final, div,
                                                                     final_div, linear):
    kwargs = dict(pct_start=pct_start, div_factor=div, final_div_factor=final_div)
    if linear:
        assert_same("linear_onecycle_schedule", (steps, peak), {**kwargs, "pct_final": max(pct_start, pct_final)},
                    steps + 5)
    else:
        assert_same("cosine_onecycle_schedule", (steps, peak), kwargs, steps + 5)


@st.composite
def pieces(draw):
    """A random optax schedule of this module's functions: ``(name, args, kwargs)``."""
    name = draw(st.sampled_from(["constant_schedule", "cosine_decay_schedule", "polynomial_schedule",
                                 "warmup_cosine_decay_schedule", "exponential_decay"]))
    if name == "constant_schedule":
        return name, (draw(values),), {}
    if name == "cosine_decay_schedule":
        return name, (draw(values), draw(lengths)), {"alpha": draw(st.floats(0.0, 1.0))}
    if name == "polynomial_schedule":
        return name, (draw(values), draw(values), draw(st.floats(0.5, 3.0)), draw(lengths)), {}
    if name == "exponential_decay":
        return name, (draw(values), draw(lengths), draw(st.floats(0.1, 0.99))), {}
    warmup = draw(st.integers(0, 10))
    return name, (draw(values), draw(values), warmup, warmup + draw(lengths)), {}


@SETTINGS
@given(parts=st.lists(pieces(), min_size=1, max_size=4), gaps=st.lists(st.integers(0, 30), min_size=3, max_size=3))
def test_join_schedules_cuts_each_piece_on_its_own_clock(parts, gaps):
    boundaries = list(np.cumsum(gaps[: len(parts) - 1]).astype(int))
    theirs = optax.join_schedules([getattr(optax, n)(*a, **k) for n, a, k in parts], boundaries)
    ours = compat.join_schedules([getattr(compat, n)(*a, **k) for n, a, k in parts], boundaries)
    ts = np.arange(sum(gaps) + 50)
    expected = np.asarray(jax.vmap(lambda t: theirs(t) + 0.0 * t)(ts), dtype=np.float64)
    for t in ts:
        assert math.isclose(ours(int(t)), float(expected[t]), rel_tol=1e-6, abs_tol=1e-12), (ours.spec, t)


@SETTINGS
@given(cycles=st.lists(st.fixed_dictionaries({
    "init_value": values, "peak_value": values, "warmup_steps": st.integers(0, 8), "decay_steps": st.integers(9, 30),
    "end_value": values, "exponent": st.one_of(st.just(1.0), st.floats(0.5, 3.0))}), min_size=1, max_size=4))
def test_sgdr(cycles):
    assert_same("sgdr_schedule", (cycles,), {}, sum(c["decay_steps"] for c in cycles) + 10)


def test_a_cosine_cut_before_its_end_stays_cut():
    """optax's join evaluates a piece on its own clock up to the boundary: the cosine never reaches 0."""
    ours = compat.join_schedules([compat.cosine_decay_schedule(1.0, 100), compat.constant_schedule(0.1)], [50])
    assert ours.spec == "cut(cosine(init_lr=1.0, min_lr=0.0, steps=100), steps=50) >> constant(lr=0.1)"
    assert math.isclose(ours(49), 0.5 * (1 + math.cos(math.pi * 0.49)))
    assert ours(50) == 0.1


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="decay_steps=0"):
        compat.cosine_decay_schedule(1.0, 0)
    with pytest.raises(ValueError, match="boundaries=\\[5, 2\\]"):
        compat.join_schedules([compat.constant_schedule(1.0)] * 3, [5, 2])
    with pytest.raises(ValueError, match="name='nope'"):
        compat.to_spec("nope")

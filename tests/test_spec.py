"""The spec language: canonical text round-trips, every registered schedule builds, known values, and errors
that name the problem and point at its column."""

from __future__ import annotations

import doctest
import importlib
import itertools
import math
import pickle
import re
import subprocess
import sys
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrlab import spec as spec_module
from lrlab.adapter import ScheduledLR
from lrlab.controllers import Greedy
from lrlab.errors import ConfigError
from lrlab.spec import (
    REGISTRY,
    Call,
    Chain,
    GreedySettings,
    Horizon,
    Param,
    Plan,
    Product,
    Spec,
    SpecError,
    build,
    parse,
)

FN_PATH = "schedule_examples:half_life_100"  # a module-level user function the tests can import
H = Horizon(total_steps=1000, steps_per_epoch=20, base_lr=0.1, beta2=0.999)


def lrs(spec: str, horizon: Horizon = H, steps: tuple[int, ...] | range = (0, 1, 50, 100, 500, 999)) -> list[float]:
    plan = build(spec, horizon)
    return [plan.lr(t) for t in steps]


def spec_error(action: Any, text: str) -> SpecError:
    """The SpecError ``action(text)`` raises; checks it is one line and locates its column in ``text``."""
    with pytest.raises(SpecError) as info:
        action(text)
    error = info.value
    assert isinstance(error, ConfigError)
    assert "\n" not in str(error)
    assert error.text == text
    assert 0 <= error.column <= len(text) + 1
    return error


def at_column(error: SpecError) -> str:
    """The text from the error's column on (what a caret under the spec would point at)."""
    return error.text[error.column - 1:]


# ---------------------------------------------------------------------------------- random specs (hypothesis)

FINITE = {"allow_nan": False, "allow_infinity": False}
LEAF_NAMES = sorted(name for name, entry in REGISTRY.items()
                    if not any(p.kind == "spec" for p in entry.params))
LENGTH_NAMES = [name for name in LEAF_NAMES if "steps" in REGISTRY[name].arg_names()]  # all but plateau


def in_range(p: Param, value: float) -> bool:
    if p.low is not None and (value <= p.low if p.low_open else value < p.low):
        return False
    return not (p.high is not None and (value >= p.high if p.high_open else value > p.high))


def numbers(p: Param) -> st.SearchStrategy[Any]:
    """Valid values for a number/int parameter: ints and floats (any float, so repr exactness is exercised)."""
    low = -1e3 if p.low is None else p.low
    high = 1e3 if p.high is None else p.high
    if p.name in ("gamma", "decay"):  # > 1 grows without bound: float overflow far enough out, as the spec asks
        high = 1.0
    if p.name.endswith("div_factor"):  # max_lr / 5e-324 overflows: an LR of inf, as the spec asks
        low = 1e-3
    ints = st.integers(math.ceil(low), math.floor(high))
    ints = ints.filter(lambda v: in_range(p, v))
    if p.kind == "int":
        values = ints
    else:
        floats = st.floats(low, high, exclude_min=p.low_open, exclude_max=p.high_open, **FINITE)
        values = st.one_of(floats, ints)
    if p.inf_ok:
        values = st.one_of(values, st.just(math.inf))
    if p.optional:
        values = st.one_of(values, st.just("none"))
    if p.many:
        values = st.one_of(values, st.lists(values, min_size=1, max_size=3).map(tuple))
    return values


def durations(p: Param) -> st.SearchStrategy[tuple[str, Any]]:
    """``(argument name, value)`` for a duration parameter, in one of its three units."""
    steps_name, epochs_name, frac_name = p.names()
    low = int(p.low or 0)
    steps = st.integers(low, 5000)
    if p.auto:
        steps = st.one_of(steps, st.just("auto"))
    epochs = st.one_of(st.integers(0, 50), st.floats(0, 50, **FINITE))
    frac = st.one_of(st.floats(0, 1, **FINITE), st.sampled_from([0, 1]))
    if p.many:
        steps, epochs, frac = (st.one_of(s, st.lists(s, min_size=1, max_size=3).map(tuple))
                               for s in (steps, epochs, frac))
    return st.one_of(steps.map(lambda v: (steps_name, v)), epochs.map(lambda v: (epochs_name, v)),
                     frac.map(lambda v: (frac_name, v)))


def arg_values(p: Param) -> st.SearchStrategy[tuple[str, Any]]:
    """``(argument name, valid value)`` for one parameter (not a spec-valued one)."""
    if p.kind == "duration":
        return durations(p)
    if p.kind in ("number", "int"):
        values = numbers(p)
    elif p.kind == "bool":
        values = st.booleans()
    elif p.kind == "choice":
        values = st.sampled_from(p.choices)
    else:  # word: fn's path, mostly one that imports (no random text: `import this` prints, and more)
        values = st.sampled_from([FN_PATH, FN_PATH, FN_PATH, "schedule_examples:nothing", ".relative:f",
                                  "no_such_module_here:f", "math:pi", "with space:f", "a:b:c"])
    return values.map(lambda v: (p.name, v))


@st.composite
def calls(draw: Any, name: str | None = None, length: bool = False) -> Call:
    """A call of a registered schedule with some of its arguments; ``length=True`` gives it ``steps=``."""
    if name is None:
        name = draw(st.sampled_from(LENGTH_NAMES if length else LEAF_NAMES))
    entry = REGISTRY[name]
    params = [p for p in entry.params if p.kind != "spec"]
    chosen = draw(st.lists(st.sampled_from(params), unique_by=lambda p: p.name, max_size=4)) if params else []
    args = dict(draw(arg_values(p)) for p in chosen)
    for p in entry.params:
        if p.default is spec_module.REQUIRED and p.kind == "word":
            args[p.name] = FN_PATH
    if length:
        for unit in ("epochs", "frac"):
            args.pop(unit, None)
        args["steps"] = draw(st.integers(1, 300))
    return Call(name, args)


def products(children: st.SearchStrategy[Spec]) -> st.SearchStrategy[Spec]:
    """A schedule times numbers, envelopes and a plateau, in any order."""
    extra = st.one_of(st.floats(0, 10, **FINITE), st.integers(0, 10), calls(), calls(name="plateau"))
    return st.tuples(children, st.lists(extra, min_size=1, max_size=3)).flatmap(
        lambda pair: st.permutations([pair[0], *pair[1]])).map(lambda factors: Product(tuple(factors)))


def chains(children: st.SearchStrategy[Spec]) -> st.SearchStrategy[Spec]:
    """Pieces with a length, then any spec."""
    return st.tuples(st.lists(calls(length=True), min_size=1, max_size=3), children).map(
        lambda pair: Chain((*pair[0], pair[1])))


def clamps(children: st.SearchStrategy[Spec]) -> st.SearchStrategy[Spec]:
    bounds = st.fixed_dictionaries({}, optional={"min": st.floats(0, 1, **FINITE),
                                                 "max": st.one_of(st.floats(1, 10, **FINITE), st.just(math.inf))})
    return st.tuples(children, bounds).map(lambda pair: Call("clamp", {"schedule": pair[0], **pair[1]}))


specs = st.recursive(calls(), lambda children: st.one_of(products(children), chains(children), clamps(children)),
                     max_leaves=6)

# tokens of the documented grammar, to re-space a canonical text without touching its strings
TOKEN = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|>>|[*()\[\],=]|[^\s*()\[\],="']+)""")


def respaced(text: str, spaces: list[str]) -> str:
    tokens = TOKEN.findall(text)
    out = [spaces[i % len(spaces)] + token for i, token in enumerate(tokens)]
    return "".join(out) + spaces[len(tokens) % len(spaces)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs, spaces=st.lists(st.sampled_from(["", " ", "  ", "\t", "\n", " \n "]), min_size=1, max_size=5))
def test_canonical_text_round_trips(spec, spaces):
    text = str(spec)
    assert parse(text) == spec
    assert str(parse(text)) == text
    variant = respaced(text, spaces)
    assert parse(variant) == spec
    assert str(parse(variant)) == text


@settings(max_examples=100, deadline=None)
@given(path=st.text(max_size=12))
def test_any_string_value_round_trips(path):
    """Words are written bare only when they read back as the same word; anything else is quoted."""
    spec = Call("fn", {"path": path})
    assert parse(str(spec)) == spec
    assert parse(str(spec)).arg("path") == path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs, total=st.integers(1, 3000), per_epoch=st.one_of(st.none(), st.integers(1, 200)),
       base_lr=st.floats(1e-4, 10), beta2=st.one_of(st.none(), st.sampled_from([0.9, 0.99, 0.999])))
def test_build_gives_finite_values_or_a_spec_error(spec, total, per_epoch, base_lr, beta2):
    """Any spec of valid arguments either builds, giving finite LRs >= 0, or fails with a SpecError."""
    horizon = Horizon(total, per_epoch, base_lr, beta2)
    try:
        plan = build(spec, horizon)
    except SpecError as error:
        assert "\n" not in str(error)
        return
    for t in {0, 1, total // 2, total - 1, total, 2 * total}:
        value = plan.lr(t)
        assert math.isfinite(value) and value >= 0, (str(spec), t, value)


# --------------------------------------------------------------------------------------------- the registry


def default_call(name: str) -> str:
    """``name(...)`` with only its required arguments."""
    required = {"fn": f"path={FN_PATH}", "clamp": "cosine()", "shift": "cosine(), by_steps=10",
                "cut": "cosine(), steps=10"}
    return f"{name}({required.get(name, '')})"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_schedule_builds_with_its_defaults(name):
    text = default_call(name)
    plan = build(text, H)
    values = [plan.lr(t) for t in (0, 1, 7, 250, 500, 999, 1000, 5000)]
    assert all(math.isfinite(v) and v >= 0 for v in values), values
    assert str(plan.spec) == text
    entry = REGISTRY[name]
    assert entry.description and all(p.help for p in entry.params)
    assert all(p.default_text() for p in entry.params)


def test_required_arguments_are_named_when_missing():
    assert "fn needs path=" in spec_error(lambda s: build(s, H), "fn()").reason
    assert "clamp needs schedule=" in spec_error(lambda s: build(s, H), "clamp(min=0.1)").reason


def docstring_specs() -> list[str]:
    """The example specs listed at the top of lrlab.spec's docstring."""
    doc = spec_module.__doc__
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()]


def test_the_docstring_lists_examples():
    assert len(docstring_specs()) >= 10


@pytest.mark.parametrize("text", docstring_specs())
def test_docstring_examples_parse_and_build(text):
    spec = parse(text)
    assert parse(str(spec)) == spec
    plan = build(spec, Horizon(3000, steps_per_epoch=50, base_lr=0.1))
    assert all(math.isfinite(v) and v >= 0 for v in plan.lr_values())


def test_docstring_doctests_pass():
    result = doctest.testmod(spec_module)
    assert result.attempted >= 4 and result.failed == 0


@pytest.mark.parametrize("name", ["errors", "language", "parser", "plan", "args", "builder", "builtins"])
def test_the_package_modules_doctests_pass(name):
    result = doctest.testmod(importlib.import_module(f"lrlab.spec.{name}"))
    assert result.failed == 0


# ---------------------------------------------------------------------------------------------- known values


def cosine(t: int, top: float, bottom: float, length: int) -> float:
    return bottom + (top - bottom) * (1 + math.cos(math.pi * t / length)) / 2


def test_warmup_then_cosine():
    plan = build("warmup(steps=100) >> cosine(min_lr=1e-5)", Horizon(1000, base_lr=0.1))
    assert [plan.lr(t) for t in (0, 50, 100)] == pytest.approx([0.0, 0.05, 0.1], rel=1e-12, abs=1e-15)
    for t in (100, 101, 550, 999):
        assert plan.lr(t) == pytest.approx(cosine(t - 100, 0.1, 1e-5, 900), rel=1e-12)
    assert plan.lr(1000) == pytest.approx(1e-5, rel=1e-12)  # the cosine ends at min_lr...
    assert plan.lr(5000) == pytest.approx(1e-5, rel=1e-12)  # ...and stays there
    assert plan.momentum is None and plan.plateau is None


def test_step_every_epochs_uses_steps_per_epoch():
    plan = build("step(every_epochs=10, gamma=0.1)", H)  # 20 steps per epoch: a decay every 200 steps
    for t in (0, 199, 200, 399, 400, 999):
        assert plan.lr(t) == pytest.approx(0.1 * 0.1 ** (t // 200), rel=1e-12)


def test_fraction_durations_are_of_the_whole_run_rounded_to_the_nearest_step():
    plan = build("cosine(frac=0.25) >> constant(lr=0.01)", H)
    assert plan.lr(125) == pytest.approx(cosine(125, 0.1, 0.0, 250), rel=1e-12)
    assert plan.lr(249) < 1e-3 and plan.lr(250) == 0.01
    assert lrs("step(every_frac=0.1)") == lrs("step(every_steps=100)")
    # 0.0125 * 1000 = 12.5 steps: halves round up, so the ramp is 13 steps long
    ramp = build("warmup(frac=0.0125) >> constant()", H)
    assert ramp.lr(12) < 0.1 and ramp.lr(13) == 0.1
    assert lrs("multistep(milestones_frac=[0.5, 0.75])", steps=range(1000)) == \
        lrs("multistep(milestones_steps=[500, 750])", steps=range(1000)) == \
        lrs("multistep()", steps=range(1000))


def test_epoch_durations_may_be_fractional():
    assert lrs("warmup(epochs=2.5) >> constant()", steps=range(100)) == \
        lrs("warmup(steps=50) >> constant()", steps=range(100))


@pytest.mark.parametrize(("beta2", "steps"), [(0.999, 2000), (0.99, 200), (0.9, 20)])
def test_auto_warmup_is_two_over_one_minus_beta2(beta2, steps):
    plan = build("warmup(steps=auto) >> constant()", Horizon(10_000, base_lr=1.0, beta2=beta2))
    assert plan.lr(0) == 0.0
    assert plan.lr(steps // 2) == pytest.approx(0.5, rel=1e-12)
    assert plan.lr(steps - 1) < 1.0 and plan.lr(steps) == 1.0
    assert steps == round(2 / (1 - beta2))


def test_auto_warmup_without_beta2_is_an_error_naming_the_field():
    error = spec_error(lambda s: build(s, Horizon(10_000)), "warmup(steps=auto) >> cosine()")
    assert "steps=auto" in error.reason and "beta2" in error.reason
    assert at_column(error).startswith("auto")


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_wsd_cooldown_in_steps_or_as_a_fraction(shape):
    by_steps = lrs(f"wsd(decay_steps=200, shape={shape})", steps=range(1200))
    assert by_steps == lrs(f"wsd(decay_frac=0.2, shape={shape})", steps=range(1200))
    assert set(by_steps[:801]) == {0.1}  # stable until the cooldown starts at 1000 - 200
    assert all(a >= b for a, b in itertools.pairwise(by_steps))
    assert by_steps[1000] == pytest.approx(0.0, abs=1e-15)


def test_wsd_linear_cooldown_values():
    plan = build("wsd(decay_steps=200, shape=linear, min_lr=0.001, warmup_steps=100)", H)
    assert plan.lr(50) == pytest.approx(0.05, rel=1e-12)
    assert plan.lr(900) == pytest.approx((0.1 + 0.001) / 2, rel=1e-12)


@pytest.mark.parametrize(("text", "start"), [
    ("cosine() * plateau(patience=3)", 0),
    ("warmup(steps=100) >> cosine() * plateau(patience=3)", 100),
    ("warmup(epochs=1) >> plateau(patience=3)", 20),
    ("warmup(steps=50) >> constant(steps=30) >> plateau()", 80),
    ("warmup(frac=0.1) >> (constant(frac=0.1) >> cosine()) * plateau()", 100),  # where its piece starts
])
def test_plateau_starts_listening_after_the_pieces_before_it(text, start):
    plan = build(text, H)
    assert plan.plateau is not None and plan.plateau.start_step == start
    controller = plan.new_controller()
    assert controller.start_step == start and controller is not plan.new_controller()
    assert plan.plateau.patience == (3 if "patience" in text else 10)


@pytest.mark.parametrize(("text", "start"), [
    ("cosine() * greedy(patience=3)", 0),
    ("warmup(steps=100) >> cosine() * greedy(patience=3, min_lr=[0.001, 0.002])", 100),
    ("warmup(epochs=1) >> greedy(patience=3)", 20),
])
def test_greedy_is_a_controller_like_plateau(text, start):
    plan = build(text, H)
    assert isinstance(plan.controller, GreedySettings) and plan.plateau is None
    controller = plan.new_controller()
    assert isinstance(controller, Greedy) and controller.start_step == start and controller.patience == 3
    assert plan.lr(start) == pytest.approx(H.base_lr)  # the LR is the schedule's until the metric says otherwise
    groups = 2 if "[" in text else 1  # a list of floors: one per param group
    controller.bind(groups)
    for step in range(start):  # during the warmup the metric is not heard
        controller.observe(-float(step), step, [plan.lr(step)] * groups)
    assert controller.scales == [1.0] * groups
    for step in range(start, start + 4):  # four improvements in a row: more than patience, the LR goes up
        controller.observe(-float(step), step, [plan.lr(step)] * groups)
    assert controller.scales == [pytest.approx(1 / 0.95)] * groups


def test_greedy_arguments_are_checked():
    error = spec_error(lambda s: build(s, H), "greedy(factor=1.0)")
    assert "factor=1.0" in error.reason
    error = spec_error(lambda s: build(s, H), "greedy(patience=2) >> constant()")
    assert "can only be in the last piece" in error.reason



def test_spec_is_torch_free():
    """Parsing and building never load torch: a plan drives torch only through ScheduledLR.from_plan."""
    code = ("import sys; from lrlab.spec import Horizon, build; "
            "plan = build('warmup(steps=5) >> onecycle() * plateau()', Horizon(100, steps_per_epoch=10)); "
            "plan.new_controller(); print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert not hasattr(Plan, "scheduler")

def test_plateau_controller_scales_the_scheduler_lr():
    plan = build("warmup(steps=10) >> constant() * plateau(patience=0, factor=0.5)", H)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    sched = ScheduledLR.from_plan(opt, plan)
    for t in range(20):
        if t >= 10:
            sched.step(1.0)  # the same loss every step: no improvement, patience 0
        else:
            sched.step()
    assert opt.param_groups[0]["lr"] < 0.1 / 2 ** 8


def test_onecycle_schedules_momentum():
    plan = build("onecycle(max_lr=0.5, pct_start=0.25)", H)
    assert plan.momentum is not None
    # torch's phases: the peak is at step pct_start * total_steps - 1 = 249, the minimum at total_steps - 1
    assert plan.momentum(0) == pytest.approx(0.95) and plan.momentum(249) == pytest.approx(0.85)
    assert plan.lr(0) == pytest.approx(0.5 / 25, rel=1e-12) and plan.lr(249) == pytest.approx(0.5, rel=1e-12)
    assert plan.lr(999) == pytest.approx(0.5 / 25 / 1e4, rel=1e-12)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
    sched = ScheduledLR.from_plan(opt, plan)
    for _ in range(249):
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5) and opt.param_groups[0]["momentum"] == pytest.approx(0.85)
    assert build("onecycle(cycle_momentum=false)", H).momentum is None
    assert build("cosine()", H).momentum is None


def test_momentum_is_held_through_chain_pieces_without_it():
    plan = build("warmup(steps=100) >> onecycle(steps=500) >> constant()", H)
    assert plan.momentum is not None
    assert plan.momentum(0) == plan.momentum(100) == pytest.approx(0.95)
    assert plan.momentum(900) == pytest.approx(plan.momentum(600)) == pytest.approx(0.95)


def test_lr_parameters_default_to_the_optimizer_lr_and_envelopes_to_one():
    assert build("cosine()", H).lr(0) == 0.1
    plan = build("cosine() * exponential(gamma=0.99)", H)
    assert plan.lr(10) == pytest.approx(cosine(10, 0.1, 0.0, 1000) * 0.99 ** 10, rel=1e-12)
    assert build("constant() * 0.5 * 2", H).lr(3) == pytest.approx(0.1)


def test_a_longer_last_piece_is_cut_at_the_end_of_training():
    assert lrs("warmup(steps=100) >> cosine(steps=5000)", steps=range(1000))[-1] > 0.09


def test_warmup_alone_ramps_to_the_optimizer_lr():
    plan = build("warmup(steps=100, shape=cosine)", H)
    assert plan.lr(0) == 0.0 and plan.lr(50) == pytest.approx(0.05) and plan.lr(100) == plan.lr(999) == 0.1


def test_a_warmup_into_a_warmup_ramps_to_its_start():
    plan = build("warmup(steps=4) >> warmup(steps=2, start=0.5) >> constant(lr=1.0)", Horizon(10))
    assert plan.lr_values(8) == pytest.approx([0.0, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0, 1.0], abs=1e-15)


def test_a_chain_of_2000_pieces_builds_evaluates_and_pickles():
    """A chain is one flat join: its length is not limited by Python's recursion limit."""
    pieces = ["constant(lr=1.0, steps=1)", "warmup(steps=1)", "constant(lr=0.5, steps=1)", "warmup(steps=1)"] * 500
    text = " >> ".join([*pieces[:-1], "cosine()"])
    assert str(parse(text)) == text and parse(text).parts[-1] == Call("cosine")
    plan = pickle.loads(pickle.dumps(build(text, Horizon(total_steps=2100, base_lr=0.1))))
    values = plan.lr_values()
    expected = [1.0, 0.0, 0.5, 0.0] * 500  # every warmup lasts one step, so it is at its start, 0
    assert values[:1996] == expected[:1996]
    assert values[1999:] == pytest.approx([cosine(t, 0.1, 0.0, 101) for t in range(101)], rel=1e-12)


def test_build_without_loading_functions_imports_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "schedule_examples", raising=False)
    plan = build(f"warmup(steps=10) >> fn(path={FN_PATH})", H, load_functions=False)
    assert "schedule_examples" not in sys.modules
    with pytest.raises(ConfigError, match=f"path={FN_PATH} was not imported"):
        plan.lr(10)
    error = spec_error(lambda s: build(s, H, load_functions=False), "fn(path=.relative:f)")
    assert "expected package.module:function" in error.reason  # the path's form is still checked
    assert build(f"fn(path={FN_PATH})", H).lr(100) == pytest.approx(0.05)  # and by default it is imported


def test_plan_and_spec_error_pickle():
    plan = build("warmup(steps=10) >> cosine() * plateau()", H)
    copy = pickle.loads(pickle.dumps(plan))
    assert copy.lr_values() == plan.lr_values()
    error = spec_error(parse, "cosine(mn_lr=1)")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_specs_compose_in_python():
    spec = parse("warmup(steps=5)") >> parse("cosine()") * 0.5
    assert str(spec) == "warmup(steps=5) >> cosine() * 0.5"
    assert 2 * parse("cosine()") == parse("2 * cosine()")
    assert parse("cosine(min_lr=1e-5, init_lr=1)") == Call("cosine", {"init_lr": 1, "min_lr": 1e-5})
    assert str(parse("clamp( min = 1e-4 , schedule = exponential() )")) == "clamp(exponential(), min=0.0001)"


@pytest.mark.parametrize(("text", "canonical"), [
    ("cosine", "cosine()"),
    ("warmup(steps=5) >> cosine", "warmup(steps=5) >> cosine()"),
    ("cosine * 0.5 * plateau", "cosine() * 0.5 * plateau()"),
    ("clamp(exponential, min=0.01)", "clamp(exponential(), min=0.01)"),
    ("(constant)", "constant()"),
    ("warmup(steps=5, shape=cosine) >> constant", "warmup(steps=5, shape=cosine) >> constant()"),  # a value
])
def test_a_bare_schedule_name_is_the_call_without_arguments(text, canonical):
    spec = parse(text)
    assert str(spec) == canonical and parse(canonical) == spec and parse(str(spec)) == spec
    assert build(spec, H).lr_values() == build(canonical, H).lr_values()


# -------------------------------------------------------------------------------------------- parse errors


def test_unknown_schedule_suggests_a_close_name():
    error = spec_error(parse, "warmup(steps=100) >> cosin(min_lr=1e-5)")
    assert error.column == 22 and at_column(error).startswith("cosin(")
    assert "unknown schedule 'cosin'" in error.reason and "did you mean 'cosine'?" in error.reason
    assert "at column 22" in str(error)


def test_unknown_argument_suggests_a_close_name():
    error = spec_error(parse, "cosine(init_lr=0.1, minlr=1e-5)")
    assert at_column(error).startswith("minlr=")
    assert "unknown argument 'minlr' for cosine" in error.reason and "did you mean 'min_lr'?" in error.reason


def test_bad_number():
    # a factor of '*' must be a number or a schedule
    error = spec_error(parse, "cosine() * 1e-")
    assert error.column == 12 and at_column(error) == "1e-"
    # as an argument, '1e-' reads as a word (like 1-sqrt); build checks the value and points at it
    error = spec_error(lambda s: build(s, H), "cosine(min_lr=1e-)")
    assert error.column == 15 and at_column(error).startswith("1e-)")
    assert "min_lr=1e-" in error.reason and "expected a number >= 0" in error.reason
    error = spec_error(lambda s: build(s, H), "step(every_steps=2.5)")
    assert at_column(error).startswith("2.5") and "every_steps=2.5" in error.reason


@pytest.mark.parametrize(("text", "column", "found"), [
    ("cosine(min_lr=0.1", 18, ""),  # the end of the spec
    ("cosine(min_lr=0.1))", 19, ")"),
    ("(cosine() >> constant()", 24, ""),
    ("clamp(cosine(), min=[0.1, 0.2)", 30, ")"),
    ("cosine min_lr=0.1)", 8, "min_lr"),
])
def test_unbalanced_brackets(text, column, found):
    error = spec_error(parse, text)
    assert error.column == column and at_column(error).startswith(found)


@pytest.mark.parametrize("text", ["warmup(steps=100) >>", "warmup(steps=100) >> ", "cosine() * "])
def test_a_trailing_operator_points_at_the_end(text):
    error = spec_error(parse, text)
    assert error.column == len(text) + 1 and "found the end of the spec" in error.reason


@pytest.mark.parametrize(("text", "found", "words"), [
    ("", "", "empty"),
    ("cosine() cosine()", "cosine()", "join pieces with '>>' or '*'"),
    ("0.5", "0.5", "expected a schedule"),
    ("true", "true", "expected a schedule"),
    ("cosin", "cosin", "unknown schedule 'cosin'"),
    ("warmup(steps=5) >> cosin * 0.5", "cosin", "did you mean 'cosine'?"),
    ("cosine(min_lr=)", ")", "expected a value for 'min_lr'"),
    ("cosine(min_lr=1, min_lr=2)", "min_lr=2", "given twice"),
    ("cosine(0.1)", "0.1", "no more positional arguments"),
    ("clamp(min=0.1, cosine())", "cosine()", "cannot follow"),
    ("cosine() >> 0.5", "0.5", "'>>' joins schedules"),
    ("2 * 3", "2", "needs at least one schedule"),
    ("fn(path='unterminated)", "'unterminated", "unterminated string"),
    ("cosine() ; constant()", "; constant()", "unexpected character ';'"),
])
def test_other_parse_errors_point_at_the_token(text, found, words):
    error = spec_error(parse, text)
    assert at_column(error).startswith(found) and words in error.reason


def test_brackets_nested_too_deeply_are_one_line():
    error = spec_error(parse, "(" * 1000 + "cosine()" + ")" * 1000)
    assert "nested too deeply" in error.reason and len(str(error)) < 200


def test_an_error_in_a_long_spec_shows_the_text_around_its_column():
    text = " >> ".join(["constant(steps=1)"] * 500 + ["cosin()"])
    error = spec_error(parse, text)
    assert "unknown schedule 'cosin'" in error.reason and len(str(error)) < 400
    assert str(error).startswith(f"spec error at column {error.column} in ...'") and "cosin()'" in str(error)


def test_a_multiline_spec_gives_a_one_line_error():
    error = spec_error(parse, "warmup(steps=100)\n  >> cosin()")
    assert at_column(error).startswith("cosin()")


# -------------------------------------------------------------------------------------------- build errors


def test_warmup_longer_than_training():
    error = spec_error(lambda s: build(s, H), "warmup(steps=2000) >> cosine()")
    assert error.column == 1 and "warmup(steps=2000) lasts 2000 steps" in error.reason
    assert "training has 1000 steps" in error.reason
    error = spec_error(lambda s: build(s, H), "warmup(steps=1000)")
    assert "warmup lasts 1000 steps" in error.reason
    error = spec_error(lambda s: build(s, Horizon(1000, beta2=0.999)), "warmup(steps=auto) >> cosine()")
    assert "2000 steps" in error.reason


def test_epochs_without_steps_per_epoch():
    error = spec_error(lambda s: build(s, Horizon(1000)), "step(every_epochs=10)")
    assert at_column(error).startswith("10)")
    assert "every_epochs=10" in error.reason and "steps_per_epoch" in error.reason
    assert "every_steps or every_frac" in error.reason
    error = spec_error(lambda s: build(s, Horizon(1000)), "warmup(epochs=1) >> cosine()")
    assert "epochs=1" in error.reason and "steps or frac" in error.reason


@pytest.mark.parametrize(("text", "found"), [
    ("cosine() * plateau() * plateau(patience=2)", "plateau(patience=2)"),
    ("clamp(cosine() * plateau()) * plateau(patience=2)", "plateau(patience=2)"),
    ("cosine() * plateau() * greedy(patience=2)", "greedy(patience=2)"),
    ("greedy() * cosine() * greedy(patience=2)", "greedy(patience=2)"),
])
def test_two_controllers(text, found):
    error = spec_error(lambda s: build(s, H), text)
    assert at_column(error).startswith(found) and "only one controller" in error.reason


def test_plateau_before_the_last_piece():
    error = spec_error(lambda s: build(s, H), "warmup(steps=10) >> cosine(steps=100) * plateau() >> constant()")
    assert at_column(error).startswith("cosine(steps=100) * plateau()") and "last piece" in error.reason


def test_a_piece_before_the_last_needs_a_length():
    error = spec_error(lambda s: build(s, H), "warmup(steps=10) >> cosine(min_lr=0.01) >> constant()")
    assert at_column(error).startswith("cosine(min_lr=0.01)")
    assert "needs a length (steps=, epochs= or frac=)" in error.reason


@pytest.mark.parametrize(("text", "found", "words"), [
    ("cosine(min_lr=-1)", "-1", "min_lr=-1 is invalid for cosine: expected a number >= 0"),
    ("cosine(steps=10, frac=0.5)", "0.5", "not both steps and frac"),
    ("cosine(frac=1.5)", "1.5", "a fraction of training in [0, 1]"),
    ("onecycle(anneal_strategy=cosine)", "cosine", "expected one of cos, linear"),
    ("plateau(factor=1)", "1", "factor=1 is invalid for plateau"),
    ("cosine() * -2", "-2", "-2 is invalid as a factor"),
    ("warmup(steps=10) * cosine()", "warmup", "cannot be multiplied"),
    ("warmup(shape=exponential) >> cosine()", "exponential", "needs start > 0"),
    ("fn(path=nowhere.at_all:f)", "nowhere.at_all:f", "cannot be imported"),
    ("fn(path=.relative:f)", ".relative:f", "expected package.module:function"),
    ("fn(path=math:pi)", "math:pi", "'pi' is not callable"),
    ("clamp(cosine(), min=0.5, max=0.1)", "0.1", "expected a number >= min=0.5"),
])
def test_bad_values_point_at_the_value(text, found, words):
    error = spec_error(lambda s: build(s, H), text)
    assert at_column(error).startswith(found) and words in error.reason


def test_build_errors_of_a_spec_object_point_into_its_canonical_text():
    with pytest.raises(SpecError) as info:
        build(parse("cosine(min_lr = -1)"), H)
    assert info.value.text == "cosine(min_lr=-1)" and at_column(info.value).startswith("-1")


@pytest.mark.parametrize(("field", "value"), [("total_steps", 0), ("steps_per_epoch", 0), ("base_lr", 0.0),
                                              ("beta2", 1.0), ("total_steps", 10.0)])
def test_horizon_fields_are_checked(field, value):
    with pytest.raises(ConfigError, match=f"{field}={value!r} is invalid"):
        Horizon(**{"total_steps": 10, field: value})


# ------------------------------------------------------------------------------------- closed form, resume

EXACT = [
    "warmup(steps=100) >> cosine(min_lr=1e-5)",
    "warmup(frac=0.05, shape=cosine) >> wsd(decay_frac=0.2, shape=1-sqrt)",
    "sgdr(period_epochs=5, mult=2, decay=0.8)",
    "onecycle(max_lr=0.1, pct_start=0.3)",
    "cyclic(up_steps=37, mode=triangular2, steps=400) >> constant()",
    "clamp(exponential(gamma=0.99), min=1e-4) * 0.5",
    "warmup(steps=auto) >> inverse_sqrt()",
    f"fn(path={FN_PATH}, steps=300) >> multistep(milestones_epochs=[10, 20])",
]


@settings(max_examples=40, deadline=None)
@given(text=st.sampled_from(EXACT), order=st.lists(st.integers(0, 2500), min_size=1, max_size=40))
def test_lr_does_not_depend_on_call_order(text, order):
    horizon = Horizon(2000, steps_per_epoch=20, base_lr=0.1, beta2=0.99)
    plan, fresh = build(text, horizon), build(text, horizon)
    asked = [plan.lr(t) for t in order]  # the same plan, asked in a random order, repeats included
    backwards = {t: fresh.lr(t) for t in sorted(set(order), reverse=True)}
    assert asked == [backwards[t] for t in order]
    assert asked == [plan.lr(t) for t in order]  # asking again changes nothing
    if plan.momentum is not None:
        assert [plan.momentum(t) for t in order] == [fresh.momentum(t) for t in reversed(order)][::-1]


@settings(max_examples=15, deadline=None)
@given(text=st.sampled_from(EXACT), split=st.integers(0, 500))
def test_a_resumed_scheduler_continues_the_same_curve(text, split):
    plan = build(text, Horizon(2000, steps_per_epoch=20, base_lr=0.1, beta2=0.99))

    def optimizer() -> torch.optim.Optimizer:
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)

    opt = optimizer()
    sched = ScheduledLR.from_plan(opt, plan)
    whole = []
    for _ in range(500):
        whole.append(opt.param_groups[0]["lr"])
        sched.step()
    opt = optimizer()
    sched = ScheduledLR.from_plan(opt, plan)
    resumed = []
    for _ in range(split):
        resumed.append(opt.param_groups[0]["lr"])
        sched.step()
    state = sched.state_dict()
    opt = optimizer()
    sched = ScheduledLR.from_plan(opt, plan)
    sched.load_state_dict(state)
    for _ in range(split, 500):
        resumed.append(opt.param_groups[0]["lr"])
        sched.step()
    assert resumed == whole == [plan.lr(t) for t in range(500)]

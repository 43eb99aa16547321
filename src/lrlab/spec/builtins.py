"""The built-in schedules of :data:`~lrlab.spec.language.REGISTRY` (what ``lrlab schedules`` lists)."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lrlab.controllers import PLATEAU_MODES, THRESHOLD_MODES
from lrlab.errors import ConfigError
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
    MultiStep,
    OneCycle,
    OneCycleMomentum,
    Polynomial,
    Shift,
    Step,
    Tanh,
    join,
)
from lrlab.schedules import wsd as wsd_schedule
from lrlab.schedules.combinators import WARMUP_SHAPES
from lrlab.schedules.cyclic import ANNEAL_STRATEGIES, CYCLIC_MODES, RESTART_SHAPES
from lrlab.schedules.presets import WSD_DECAY_SHAPES
from lrlab.spec.args import Args, Built, Context, Ramp, round_steps
from lrlab.spec.builder import as_schedule, build_node
from lrlab.spec.language import BASE_LR, REQUIRED, Param, Spec, format_value, register
from lrlab.spec.plan import GreedySettings, PlateauSettings


def _lr(name: str, help: str) -> Param:
    return Param(name, "number", BASE_LR, help, low=0)


def _num(name: str, default: Any, help: str, **options: Any) -> Param:
    return Param(name, "number", default, help, **options)


def _int(name: str, default: Any, help: str, low: int = 0, **options: Any) -> Param:
    return Param(name, "int", default, help, low=low, **options)


def _flag(name: str, default: bool, help: str) -> Param:
    return Param(name, "bool", default, help)


def _choice(name: str, default: str, choices: tuple[str, ...], help: str) -> Param:
    return Param(name, "choice", default, help, choices=tuple(choices))


def _dur(name: str, default: tuple[str, Any] | None, help: str, low: int = 1, **options: Any) -> Param:
    return Param(name, "duration", default, help, low=low, **options)


LENGTH = _dur("", None, "length of this piece (needed only before '>>')", shown="rest of training")


# ---------------------------------------------------------------------------------------------- schedules


@register("constant", "the same LR at every step (the baseline; or a flat piece of a '>>' chain)",
          _lr("lr", "the LR"), LENGTH)
def _constant(a: Args, ctx: Context) -> Built:
    return Built(a.make(Constant, a["lr"]), a.steps(""))


@register("step", "init_lr * gamma ** (steps done // every): decay by gamma at a fixed interval (StepLR)",
          _lr("init_lr", "LR before the first decay"),
          _dur("every", ("frac", 0.3), "interval between two decays"),
          _num("gamma", 0.1, "LR factor at each decay", low=0), LENGTH)
def _step(a: Args, ctx: Context) -> Built:
    return Built(a.make(Step, a["init_lr"], a.steps("every"), a["gamma"]), a.steps(""))


@register("multistep", "decay by gamma at each milestone (MultiStepLR)",
          _lr("init_lr", "LR before the first milestone"),
          _dur("milestones", ("frac", (0.5, 0.75)), "when to decay: a list such as [30, 60] (or one value)",
               low=0, many=True),
          _num("gamma", 0.1, "LR factor at each milestone", low=0), LENGTH)
def _multistep(a: Args, ctx: Context) -> Built:
    return Built(a.make(MultiStep, a["init_lr"], a.steps("milestones"), a["gamma"]), a.steps(""))


@register("exponential", "init_lr * gamma ** step: a decay by gamma at every optimizer step (ExponentialLR)",
          _lr("init_lr", "LR at step 0"),
          _num("gamma", 0.999, "LR factor per optimizer step", low=0, low_open=True), LENGTH)
def _exponential(a: Args, ctx: Context) -> Built:
    return Built(a.make(Exponential, a["init_lr"], a["gamma"]), a.steps(""))


@register("linear", "a straight line from start_lr to end_lr over the piece, then end_lr (LinearLR)",
          _lr("start_lr", "LR at the start"), _num("end_lr", 0.0, "LR at the end", low=0), LENGTH)
def _linear(a: Args, ctx: Context) -> Built:
    steps = a.steps("")
    return Built(a.make(Anneal, a["start_lr"], a["end_lr"], ctx.length(steps), "linear"), steps)


@register("polynomial", "min_lr + (init_lr - min_lr) * (1 - t / T) ** power over the piece (PolynomialLR)",
          _lr("init_lr", "LR at the start"), _num("min_lr", 0.0, "LR at the end", low=0),
          _num("power", 1.0, "exponent of the decay", low=0),
          _num("k", 1.0, "time warp: 1 - t**k / T**k (timm's k_decay)", low=0, low_open=True), LENGTH)
def _polynomial(a: Args, ctx: Context) -> Built:
    steps = a.steps("")
    return Built(a.make(Polynomial, a["init_lr"], a["min_lr"], ctx.length(steps), a["power"], a["k"]), steps)


@register("cosine", "half a cosine from init_lr down to min_lr over the piece (CosineAnnealingLR)",
          _lr("init_lr", "LR at the start"), _num("min_lr", 0.0, "LR at the end (eta_min)", low=0),
          _flag("cyclic", False, "keep following the cosine wave after the piece's length, as torch does"),
          _num("cycles", 0.5, "cosine waves over the piece, may be fractional (HF's num_cycles; 0.5: half a wave "
                              "down; otherwise the wave goes on past the piece)", low=0, low_open=True),
          _num("k", 1.0, "time warp: cos(pi * t**k / T**k) (timm's k_decay)", low=0, low_open=True),
          _num("exponent", 1.0, "power of the cosine factor: min + (init - min) * c**exponent (optax's exponent)",
               low=0, low_open=True),
          LENGTH)
def _cosine(a: Args, ctx: Context) -> Built:
    steps = a.steps("")
    length, cycles = ctx.length(steps), a["cycles"]
    if cycles != 0.5:
        return Built(a.make(Cosine, a["init_lr"], a["min_lr"], length / (2 * cycles), True, a["exponent"], a["k"]),
                     steps)
    return Built(a.make(Cosine, a["init_lr"], a["min_lr"], length, a["cyclic"], a["exponent"], a["k"]), steps)


@register("sgdr", "cosine annealing with warm restarts (SGDR; CosineAnnealingWarmRestarts); shape=poly or tanh "
                  "restarts those curves (timm's cycles)",
          _lr("init_lr", "peak LR of the first cycle"), _num("min_lr", 0.0, "LR at the end of each cycle", low=0),
          _dur("period", ("frac", 0.25), "length of the first cycle"),
          _num("mult", 1.0, "each cycle is mult times longer than the one before (may be fractional)", low=1),
          _num("decay", 1.0, "peak LR factor from one cycle to the next", low=0),
          _int("max_cycles", None, "after this many cycles the LR stays at min_lr", low=1, optional=True),
          _num("cycles", None, "instead of period: this many equal cycles over the piece, may be fractional "
                               "(HF's cosine_with_restarts num_cycles); min_lr after the piece", low=0, low_open=True),
          _num("k", 1.0, "time warp in each cycle: cos(pi * t**k / T**k) (timm's k_decay)", low=0, low_open=True),
          _choice("shape", "cosine", RESTART_SHAPES, "each cycle's curve of x = t**k / T**k: cosine "
                  "(1 + cos(pi x)) / 2, poly (1 - x)**power, tanh (1 - tanh(lower + (upper - lower) x)) / 2"),
          _num("power", 1.0, "shape=poly: the exponent (timm's PolyLRScheduler power)", low=0),
          _num("lower", -7.0, "shape=tanh: tanh argument at a cycle's start (timm's lb)"),
          _num("upper", 3.0, "shape=tanh: tanh argument at a cycle's end (timm's ub)"),
          LENGTH)
def _sgdr(a: Args, ctx: Context) -> Built:
    steps = a.steps("")
    curve = (a["k"], a["shape"], a["power"], a["lower"], a["upper"])
    if a["cycles"] is None:
        schedule = a.make(CosineRestarts, a["init_lr"], a["min_lr"], a.steps("period"), a["mult"], a["decay"],
                          a["max_cycles"], *curve)
        return Built(schedule, steps)
    if any(a.given(name) for name in ("period_steps", "period_epochs", "period_frac")):
        a.fail("cycles", "give sgdr one of period or cycles, not both")
    length = ctx.length(steps)
    restarts = a.make(CosineRestarts, a["init_lr"], a["min_lr"], length / a["cycles"], a["mult"], a["decay"],
                      a["max_cycles"], *curve)
    return Built(join([restarts, Constant(a["min_lr"])], [length]), steps)


@register("cyclic", "cyclical LR between min_lr and max_lr (CyclicLR); momentum cycles the other way",
          _lr("max_lr", "top of each cycle"),
          _num("min_lr", None, "bottom of each cycle", low=0, shown="max_lr / 10"),
          _dur("up", ("frac", 0.125), "rise from min_lr to max_lr (torch's step_size_up)"),
          _dur("down", None, "fall back to min_lr (torch's step_size_down)", low=0, shown="same as up"),
          _choice("mode", "triangular", CYCLIC_MODES, "amplitude: constant, halved each cycle, or gamma ** step"),
          _num("gamma", 1.0, "exp_range: amplitude factor per step", low=0, low_open=True),
          _flag("cycle_momentum", True, "cycle momentum (or Adam's beta1) between max and base momentum"),
          _num("base_momentum", 0.8, "momentum at the LR's top", low=0, high=1),
          _num("max_momentum", 0.9, "momentum at the LR's bottom", low=0, high=1), LENGTH)
def _cyclic(a: Args, ctx: Context) -> Built:
    max_lr = a["max_lr"]
    min_lr = max_lr / 10 if a["min_lr"] is None else a["min_lr"]
    up = a.steps("up")
    down = up if a.steps("down") is None else a.steps("down")
    lr = a.make(Cyclic, min_lr, max_lr, up, down, a["mode"], a["gamma"])
    momentum = None
    if a["cycle_momentum"]:
        momentum = a.make(Cyclic, a["base_momentum"], a["max_momentum"], up, down, a["mode"], a["gamma"],
                          descending=True)
    return Built(lr, a.steps(""), momentum)


@register("onecycle", "the 1cycle policy (OneCycleLR): up to max_lr, then far below; momentum cycles too",
          _lr("max_lr", "peak LR"),
          _num("pct_start", 0.3, "fraction of the cycle spent rising", low=0, high=1),
          _choice("anneal_strategy", "cos", ANNEAL_STRATEGIES, "shape of each phase"),
          _num("div_factor", 25.0, "initial LR = max_lr / div_factor", low=0, low_open=True),
          _num("final_div_factor", 1e4, "final LR = initial LR / final_div_factor", low=0, low_open=True),
          _flag("three_phase", False, "back to the initial LR, then a third phase down to the final LR"),
          _flag("cycle_momentum", True, "cycle momentum (or Adam's beta1) opposite to the LR"),
          _num("base_momentum", 0.85, "momentum at the LR's peak", low=0, high=1),
          _num("max_momentum", 0.95, "momentum at the start and the end", low=0, high=1),
          _dur("", None, "length of the cycle (torch's total_steps)", shown="rest of training"))
def _onecycle(a: Args, ctx: Context) -> Built:
    steps = a.steps("")
    total = ctx.length(steps)
    lr = a.make(OneCycle, a["max_lr"], total, a["pct_start"], a["anneal_strategy"], a["div_factor"],
                a["final_div_factor"], a["three_phase"])
    momentum = None
    if a["cycle_momentum"]:
        momentum = a.make(OneCycleMomentum, total, a["pct_start"], a["anneal_strategy"], a["base_momentum"],
                          a["max_momentum"], a["three_phase"])
    return Built(lr, steps, momentum)


@register("inverse_sqrt", "init_lr * sqrt(timescale / (step + timescale)): the Transformer's 1/sqrt decay",
          _lr("init_lr", "LR at step 0"),
          _dur("timescale", None, "steps over which the LR falls by 1/sqrt(2)",
               shown="the warmup just before it, else timescale_frac=0.1"),
          LENGTH)
def _inverse_sqrt(a: Args, ctx: Context) -> Built:
    timescale = a.steps("timescale")
    if timescale is None:  # after warmup(w): peak * sqrt(w / t) at absolute step t, as Vaswani et al.
        timescale = ctx.warmup_before or max(1, round_steps(0.1 * ctx.horizon.total_steps))
    return Built(a.make(InverseSqrt, a["init_lr"], float(timescale)), a.steps(""))


@register("wsd", "warmup-stable-decay: hold peak_lr, then a cooldown to min_lr that ends with the piece",
          _lr("peak_lr", "LR of the stable phase"), _num("min_lr", 0.0, "LR at the end", low=0),
          _dur("decay", ("frac", 0.2), "length of the cooldown", low=0),
          _choice("shape", "1-sqrt", WSD_DECAY_SHAPES, "shape of the cooldown"),
          _dur("warmup", ("steps", 0), "length of a linear warmup at the start", low=0),
          _num("power", 0.5, "shape=power: the cooldown is 1 - x**power (timm's decay_power)", low=0, low_open=True),
          _num("ratio", 0.1, "shape=exp-ratio: (ratio**x - ratio) / (1 - ratio) (timm's exp decay_ratio)",
               low=0, high=1, low_open=True, high_open=True), LENGTH)
def _wsd(a: Args, ctx: Context) -> Built:
    steps = a.steps("")
    schedule = a.make(wsd_schedule, a["peak_lr"], ctx.length(steps), a.steps("decay"), a.steps("warmup"),
                      a["min_lr"], a["shape"], a["power"], a["ratio"])
    return Built(schedule, steps)


@register("tanh", "hyperbolic-tangent decay from init_lr to min_lr over the piece (Hsueh et al., 2019)",
          _lr("init_lr", "LR at the start (about)"), _num("min_lr", 0.0, "LR at the end (about)", low=0),
          _num("lower", -6.0, "tanh argument at the start"), _num("upper", 3.0, "tanh argument at the end"),
          LENGTH)
def _tanh(a: Args, ctx: Context) -> Built:
    steps = a.steps("")
    return Built(a.make(Tanh, a["init_lr"], a["min_lr"], ctx.length(steps), a["lower"], a["upper"]), steps)


@dataclass(frozen=True)
class _NotLoaded:
    """What ``fn(path=...)`` calls when built with ``load_functions=False``: nothing was imported."""

    path: str

    def __call__(self, step: int) -> float:
        raise ConfigError(f"path={format_value(self.path)} was not imported: this plan was built from stored "
                          "results (load_functions=False), which never run code")


def _load_function(a: Args, ctx: Context) -> Callable[[int], float]:
    path = a["path"]
    module_name, _, attribute = path.partition(":")
    if not module_name or module_name.startswith(".") or not attribute:  # import_module(".x") raises TypeError
        a.fail("path", f"path={format_value(path)} is invalid for fn: expected package.module:function")
    if not ctx.load_functions:
        return _NotLoaded(path)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        a.fail("path", f"path={format_value(path)} cannot be imported: {exc}")
    for part in attribute.split("."):
        if not hasattr(target, part):
            a.fail("path", f"path={format_value(path)} is invalid for fn: {module_name} has no {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        a.fail("path", f"path={format_value(path)} is invalid for fn: {attribute!r} is not callable")
    return target


@register("fn", "init_lr * f(step) for a user function f (LambdaLR)",
          Param("path", "word", REQUIRED, "the function, as package.module:function"),
          _lr("init_lr", "multiplies the function's value"), LENGTH)
def _fn(a: Args, ctx: Context) -> Built:
    return Built(a.make(Function, _load_function(a, ctx), a["init_lr"]), a.steps(""))


@register("warmup", "a ramp up to the starting LR of what follows '>>' (alone: up to the optimizer's LR)",
          _dur("", ("frac", 0.05), "length of the ramp; steps=auto is 2 / (1 - beta2) for Adam (Ma & Yarats)",
               low=0, auto=True),
          _choice("shape", "linear", WARMUP_SHAPES, "shape of the ramp (exponential needs start > 0)"),
          _num("start", 0.0, "LR at step 0, as a fraction of the ramp's target", low=0, high=1))
def _warmup(a: Args, ctx: Context) -> Built:
    steps, shape, start = a.steps(""), a["shape"], a["start"]
    if shape == "exponential" and start <= 0:
        a.fail("shape", "shape=exponential needs start > 0 (a geometric ramp cannot start at 0): add e.g. start=0.01")
    return Built(None, steps, ramp=Ramp(steps, shape, start))


@register("plateau", "ReduceLROnPlateau: cut the LR by factor when the watched metric stops improving",
          _choice("mode", "min", PLATEAU_MODES, "min: lower is better; max: higher is better"),
          _num("factor", 0.1, "LR factor at each reduction", low=0, high=1, high_open=True),
          _int("patience", 10, "observations without improvement before a reduction"),
          _num("threshold", 1e-4, "smallest change that counts as an improvement", low=0),
          _choice("threshold_mode", "rel", THRESHOLD_MODES, "rel: a fraction of the best value; abs: an amount"),
          _int("cooldown", 0, "observations ignored after a reduction"),
          _num("min_lr", 0.0, "LR floor (one number, or a list with one per param group)", low=0, many=True),
          _num("eps", 1e-8, "a reduction smaller than this is skipped", low=0),
          _flag("sign_safe", False, "a rel threshold that works for metrics below 0 (torch's does not)"),
          controller=True)
def _plateau(a: Args, ctx: Context) -> Built:
    settings = PlateauSettings(a["mode"], a["factor"], a["patience"], a["threshold"], a["threshold_mode"],
                               a["cooldown"], a["min_lr"], a["eps"], a["sign_safe"], start_step=ctx.offset)
    a.make(settings.controller)  # the controller's own checks, once, at build time
    return Built(Constant(ctx.base_lr), None, controller=settings, neutral=True)


@register("greedy", "GreedyLR (HF transformers): LR / factor after more than patience improvements in a row "
                    "(up to max_lr), LR * factor after more than patience non-improvements (down to min_lr)",
          _choice("mode", "min", PLATEAU_MODES, "min: lower is better; max: higher is better"),
          _num("factor", 0.95, "LR factor at each reduction; an increase divides by it", low=0, high=1,
               low_open=True, high_open=True),
          _int("patience", 10, "observations in a row, improving or not, before a change"),
          _num("threshold", 1e-6, "smallest change that counts as an improvement", low=0),
          _choice("threshold_mode", "abs", THRESHOLD_MODES, "rel: a fraction of the best value; abs: an amount"),
          _int("cooldown", 0, "observations ignored after a reduction"),
          _int("warmup", 0, "observations ignored after an increase"),
          _num("min_lr", 1e-3, "LR floor (one number, or a list with one per param group)", low=0, many=True),
          _num("max_lr", 1.0, "LR ceiling (one number, or a list with one per param group)", low=0, many=True),
          _num("eps", 1e-8, "a change smaller than this is skipped", low=0),
          _flag("smooth", False, "watch the mean of the last window_size observations"),
          _int("window_size", 50, "observations in smooth's mean", low=1),
          _int("reset_start", 500, "reductions in a row with every group at min_lr before starting afresh"),
          controller=True)
def _greedy(a: Args, ctx: Context) -> Built:
    settings = GreedySettings(a["mode"], a["factor"], a["patience"], a["threshold"], a["threshold_mode"],
                              a["cooldown"], a["warmup"], a["min_lr"], a["max_lr"], a["eps"], a["smooth"],
                              a["window_size"], a["reset_start"], start_step=ctx.offset)
    a.make(settings.controller)  # the controller's own checks, once, at build time
    return Built(Constant(ctx.base_lr), None, controller=settings, neutral=True)


@register("clamp", "a schedule's LR bounded to [min, max]",
          Param("schedule", "spec", REQUIRED, "the schedule to bound", positional=True),
          _num("min", 0.0, "lowest LR", low=0), _num("max", math.inf, "highest LR", low=0, inf_ok=True))
def _clamp(a: Args, ctx: Context) -> Built:
    inner: Spec = a["schedule"]
    built = build_node(inner, ctx)
    low, high = a["min"], a["max"]
    if high < low:
        a.fail("max", f"max={format_value(high)} is invalid for clamp: expected a number >= min={format_value(low)}")
    lr = a.make(Clamp, as_schedule(built, ctx, inner.col), low, high)
    return replace(built, lr=lr, duration=None if built.ramp else built.duration, ramp=None, neutral=False)


@register("shift", "a schedule started part-way into its own curve: its clock runs from -by (a phase offset)",
          Param("schedule", "spec", REQUIRED, "the schedule to shift; its length counts from by before here",
                positional=True),
          _dur("by", REQUIRED, "how far into its curve it starts (timm's warmup_prefix=False: the warmup's length)",
               low=0))
def _shift(a: Args, ctx: Context) -> Built:
    inner: Spec = a["schedule"]
    by = a.steps("by")
    built = build_node(inner, replace(ctx, span=ctx.span + by))
    duration = None if built.duration is None or built.ramp else built.duration - by
    if duration is not None and duration < 0:
        a.fail("by", f"shift by {by} steps leaves nothing of a {built.duration}-step piece: expected by < its length")
    momentum = None if built.momentum is None else Shift(built.momentum, by)
    lr = Shift(as_schedule(built, replace(ctx, span=ctx.span + by), inner.col), by)
    return replace(built, lr=lr, duration=duration, momentum=momentum, ramp=None, neutral=False)


@register("cut", "a schedule's curve run for its own length, cut before its end (or holding its end after it)",
          Param("schedule", "spec", REQUIRED, "the schedule; its curve keeps the length it is given",
                positional=True),
          _dur("", REQUIRED, "length of this piece (optax's join_schedules boundary)", low=0))
def _cut(a: Args, ctx: Context) -> Built:
    inner: Spec = a["schedule"]
    built = build_node(inner, ctx)
    return replace(built, lr=as_schedule(built, ctx, inner.col), duration=a.steps(""), ramp=None, neutral=False)

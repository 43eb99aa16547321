"""What a schedule's builder works with: where it is built (:class:`Context`), its arguments checked and
resolved to steps (:class:`Args`), and what it gives back (:class:`Built`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from lrlab.schedules import Schedule, adam_warmup_steps
from lrlab.spec.errors import LocatedError
from lrlab.spec.language import BASE_LR, REQUIRED, UNITS, Call, Entry, Param, Spec, format_value, is_number
from lrlab.spec.plan import ControllerSettings, Horizon


@dataclass(frozen=True)
class Context:
    """Where a piece is built: the steps it may take, where it starts, what LR parameters default to."""

    horizon: Horizon
    span: int  # steps from this piece's start to the end of what contains it
    base_lr: float  # the default of LR parameters (1.0 for the envelopes of a product)
    offset: int = 0  # absolute step at which this piece starts
    warmup_before: int | None = None  # length of a warmup just before this piece
    load_functions: bool = True  # import fn(path=...); False: a stand-in that never imports (see build)

    def length(self, steps: int | None) -> int:
        """A piece's length: its own when given, else all the steps it may take."""
        return self.span if steps is None else steps


@dataclass(frozen=True)
class Ramp:
    steps: int
    shape: str
    start: float


@dataclass(frozen=True)
class Built:
    """What building one node gives: its LR schedule and what comes with it."""

    lr: Schedule | None
    duration: int | None = None  # its own length in steps; None: it takes the span it is given
    momentum: Schedule | None = None
    controller: ControllerSettings | None = None  # plateau(...) or greedy(...)
    neutral: bool = False  # the LR is only a default (a controller's): a product drops it
    ramp: Ramp | None = None  # a warmup: ramps into what follows '>>'


class Args:
    """A call's arguments as its builder sees them: converted, checked, defaulted.

    ``args["min_lr"]`` gives a value (a default when not given), ``args.steps("every")`` a duration
    resolved to steps. Every mistake raises an error that points at the offending value.
    """

    def __init__(self, call: Call, entry: Entry, ctx: Context) -> None:
        self.call, self.entry, self.ctx = call, entry, ctx
        self.values = dict(call.args)
        self.cols = dict(call.arg_cols)

    def given(self, name: str) -> bool:
        """Whether argument ``name`` was written in the spec."""
        return name in self.values

    def fail(self, name: str | None, reason: str) -> NoReturn:
        """Raise a spec error about argument ``name`` (None: the call itself)."""
        raise LocatedError(self.cols.get(name, self.call.col) if name else self.call.col, reason)

    def make(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``factory(*args, **kwargs)``, its ``ValueError`` turned into a spec error about this call."""
        try:
            return factory(*args, **kwargs)
        except ValueError as exc:
            self.fail(None, f"{self.call.name}: {exc}")

    def __getitem__(self, name: str) -> Any:
        p = self.entry.param(name)
        if name not in self.values:
            if p.default is REQUIRED:
                self.fail(None, f"{self.call.name} needs {name}= ({p.help})")
            return self.ctx.base_lr if p.default is BASE_LR else p.default
        value = self.values[name]
        if p.optional and value == "none":
            return None
        if p.many and isinstance(value, tuple) and p.kind == "number":
            if not value:
                self._bad(p, name, value)
            return tuple(self._convert(p, name, v, value) for v in value)
        return self._convert(p, name, value, value)

    def _bad(self, p: Param, name: str, whole: Any, expected: str | None = None) -> NoReturn:
        if expected is None:
            expected = _expected(p)
        self.fail(name, f"{name}={format_value(whole)} is invalid for {self.call.name}: expected {expected}")

    def _convert(self, p: Param, name: str, value: Any, whole: Any) -> Any:
        if p.kind in ("number", "int"):
            ok = is_number(value) and (math.isfinite(value) or (p.inf_ok and value == math.inf))
            if p.kind == "int":
                ok = ok and float(value).is_integer()
            if not ok or not _in_range(p, value):
                self._bad(p, name, whole)
            return int(value) if p.kind == "int" else float(value)
        if p.kind == "bool" and isinstance(value, bool):
            return value
        if p.kind == "choice" and value in p.choices and isinstance(value, str):
            return value
        if p.kind == "word" and isinstance(value, str) and value:
            return value
        if p.kind == "spec" and isinstance(value, Spec):
            return value
        self._bad(p, name, whole)

    def steps(self, base: str) -> Any:
        """The duration ``base`` (``""`` for the piece's own length) in steps; None when not given and no default.

        For a ``many`` duration, a tuple of steps.
        """
        p = self.entry.param(base)
        names = p.names()
        given = [(unit, name) for unit, name in zip(UNITS, names, strict=True) if name in self.values]
        if len(given) > 1:
            self.fail(given[1][1], f"give one of {', '.join(names)} for {self.call.name}, "
                                   f"not both {given[0][1]} and {given[1][1]}")
        if given:
            unit, name = given[0]
            value = self.values[name]
        elif p.default is None:
            return None
        elif p.default is REQUIRED:
            self.fail(None, f"{self.call.name} needs one of {', '.join(names)}")
        else:
            unit, value = p.default
            name = names[UNITS.index(unit)]
        if p.many:
            points = value if isinstance(value, tuple) else (value,)
            return tuple(self._to_steps(p, name, unit, v, value) for v in points)
        return self._to_steps(p, name, unit, value, value)

    def _to_steps(self, p: Param, name: str, unit: str, value: Any, whole: Any) -> int:
        horizon = self.ctx.horizon
        low = int(p.low or 0)
        if unit == "steps":
            if p.auto and value == "auto":
                if horizon.beta2 is None:
                    self.fail(name, f"{name}=auto needs the optimizer's beta2 (Adam, AdamW) for 2 / (1 - beta2) "
                                    "steps, and this run has none: give a number of steps")
                steps = adam_warmup_steps(horizon.beta2)
            elif is_number(value) and math.isfinite(value) and float(value).is_integer():
                steps = int(value)
            else:
                self._bad(p, name, whole, f"a whole number of steps >= {low}" + (" or auto" if p.auto else ""))
        elif unit == "epochs":
            if not (is_number(value) and math.isfinite(value) and value >= 0):
                self._bad(p, name, whole, "a number of epochs >= 0")
            if horizon.steps_per_epoch is None:
                alternatives = " or ".join(n for n in p.names() if not n.endswith("epochs"))
                self.fail(name, f"{name}={format_value(whole)} needs the number of steps per epoch, which is not set "
                                f"(Horizon.steps_per_epoch): give it, or use {alternatives}")
            steps = round_steps(value * horizon.steps_per_epoch)
        else:
            if not (is_number(value) and 0 <= value <= 1):
                self._bad(p, name, whole, "a fraction of training in [0, 1]")
            steps = round_steps(value * horizon.total_steps)
        if steps < low:
            self.fail(name, f"{name}={format_value(whole)} is {steps} steps (training has {horizon.total_steps}): "
                            f"expected at least {low}")
        return steps


def round_steps(x: float) -> int:
    """To the nearest whole step (halves up)."""
    return math.floor(x + 0.5)


def _num_text(x: float) -> str:
    return f"{x:g}"


def _in_range(p: Param, value: float) -> bool:
    if p.low is not None and (value <= p.low if p.low_open else value < p.low):
        return False
    return not (p.high is not None and (value >= p.high if p.high_open else value > p.high))


def _expected(p: Param) -> str:
    """What a parameter accepts, in words: ``a number in [0, 1)``, ``one of min, max``..."""
    if p.kind in ("number", "int"):
        noun = "an integer" if p.kind == "int" else "a number"
        if p.low is not None and p.high is not None:
            left, right = "(" if p.low_open else "[", ")" if p.high_open else "]"
            text = f"{noun} in {left}{_num_text(p.low)}, {_num_text(p.high)}{right}"
        elif p.low is not None:
            text = f"{noun} {'>' if p.low_open else '>='} {_num_text(p.low)}"
        elif p.high is not None:
            text = f"{noun} {'<' if p.high_open else '<='} {_num_text(p.high)}"
        else:
            text = f"a finite {noun[2:] if noun.startswith('a ') else noun[3:]}"
        if p.many:
            text += ", or a list of them"
    elif p.kind == "bool":
        text = "true or false"
    elif p.kind == "choice":
        text = f"one of {', '.join(p.choices)}"
    elif p.kind == "spec":
        text = "a schedule such as cosine()"
    else:
        text = "a word or a quoted string"
    return text + (" or none" if p.optional else "")


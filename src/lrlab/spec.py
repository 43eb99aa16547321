"""Schedule specs: one textual form for every schedule, the same in the CLI, YAML configs and Python.

A spec is a small expression over the schedules of a registry (``lrlab schedules`` lists them)::

    constant()
    step(every_epochs=10, gamma=0.1)
    warmup(steps=500) >> cosine(min_lr=1e-5)
    onecycle(max_lr=0.1, pct_start=0.3)
    cosine(epochs=30) * plateau(patience=3)
    warmup(frac=0.05, shape=cosine) >> plateau(patience=3, factor=0.5)
    wsd(decay_frac=0.2, shape=1-sqrt)
    sgdr(period_epochs=5, mult=2, decay=0.8)
    clamp(exponential(gamma=0.99), min=1e-4)
    constant() * 0.5

Grammar (spaces between tokens are ignored)::

    spec    := chain
    chain   := product ( ">>" product )*        one piece after another
    product := atom ( "*" atom )*              binds tighter than ">>"
    atom    := call | NAME | number | "(" chain ")"   a bare NAME is the call without arguments
    call    := NAME "(" [ arg ( "," arg )* [","] ] ")"
    arg     := NAME "=" value | value          positional only where a schedule takes it (clamp's schedule)
    value   := chain | number | bool | word | string | list
    list    := "[" [ value ( "," value )* [","] ] "]"
    number  := 30 | -2 | 0.5 | 1e-5 | inf      an int stays an int, a float a float
    bool    := true | false
    word    := a run of letters, digits and _ . : + -   (cosine, 1-sqrt, auto, none, pkg.mod:fn)
    string  := "..." or '...'                   a backslash takes the next character literally

What it means:

- ``name(...)`` is a schedule; a parameter not given takes its default. A bare ``name`` where a schedule
  belongs is ``name()``: ``warmup(steps=5) >> cosine`` reads as ``warmup(steps=5) >> cosine()`` (inside a
  call's arguments, a word is a value: ``warmup(shape=cosine)``). LR parameters (``lr``, ``init_lr``,
  ``max_lr``, ``peak_lr``, ``start_lr``) default to the optimizer's LR (``Horizon.base_lr``), so
  ``cosine(min_lr=1e-5)`` decays from the optimizer's LR to 1e-5 over the rest of training.
- ``a >> b >> c``: a, then b, then c. Time is re-based at each boundary (b sees its own step 0). Every piece
  but the last needs a length (``steps=``, ``epochs=`` or ``frac=``); the last takes the rest of training
  (a last piece given a longer length is cut at the end of training). ``warmup(...) >> x`` ramps up to
  x's starting value, then runs x from its step 0. A ``warmup(...)`` with nothing after it ramps up to the
  optimizer's LR and holds it.
- ``a * b``: ``a * 0.5`` scales; ``a * plateau(...)`` adds a ReduceLROnPlateau controller (at most one per
  spec, in the last piece of a chain); ``a * b`` with b a schedule multiplies by b as an envelope: only the
  first schedule of a product gives an LR, the LR parameters of the others default to 1
  (``cosine() * exponential(gamma=0.999)`` is a cosine with an exponential envelope).
- Durations: ``<name>_steps``, ``<name>_epochs`` or ``<name>_frac`` (one of them), e.g. ``every_epochs``,
  ``period_frac``, ``decay_steps``, ``milestones_epochs=[10, 20]``; a piece's own length is plain
  ``steps``, ``epochs`` or ``frac``. Epochs need the run's steps per epoch; fractions are of the whole
  run. They are resolved to whole steps (rounded to the nearest) once, by :func:`build`.

``str(spec)`` is canonical: arguments in the registry's order as ``name=value`` (clamp's schedule first,
without its name), `` >> `` and `` * `` between pieces, floats written as ``repr`` writes them, so
``parse(str(spec)) == spec`` and every number comes back exactly.

>>> spec = parse("warmup(steps=100)>>cosine(min_lr=1e-5)")
>>> str(spec)
'warmup(steps=100) >> cosine(min_lr=1e-05)'
>>> plan = build(spec, Horizon(total_steps=1000, base_lr=0.1))
>>> [round(plan.lr(t), 6) for t in (0, 50, 100, 550, 999)]
[0.0, 0.05, 0.1, 0.050005, 1e-05]
>>> build("warmup(epochs=1) >> plateau(patience=3)", Horizon(300, steps_per_epoch=30)).new_controller().start_step
30
"""

from __future__ import annotations

import difflib
import importlib
import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, NoReturn

from lrlab.controllers import PLATEAU_MODES, THRESHOLD_MODES, Plateau
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
    Schedule,
    Step,
    Tanh,
    Warmup,
    adam_warmup_steps,
    join,
)
from lrlab.schedules import wsd as wsd_schedule
from lrlab.schedules.combinators import WARMUP_SHAPES
from lrlab.schedules.cyclic import ANNEAL_STRATEGIES, CYCLIC_MODES
from lrlab.schedules.presets import WSD_DECAY_SHAPES

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from lrlab.adapter import ScheduledLR

__all__ = [
    "REGISTRY",
    "UNITS",
    "Args",
    "Call",
    "Chain",
    "Entry",
    "Horizon",
    "Param",
    "Plan",
    "PlateauSettings",
    "Product",
    "Spec",
    "SpecError",
    "build",
    "format_value",
    "parse",
    "register",
]


# --------------------------------------------------------------------------------------------------- errors


class SpecError(ConfigError):
    """A spec that cannot be parsed or built. The message is one line naming the problem and its column.

    Attributes:
        text: the spec as given.
        column: 1-based column of the offending token in ``text`` (0 when no single token is to blame).
        reason: the problem, without the location.
    """

    def __init__(self, text: str, column: int, reason: str) -> None:
        self.text, self.column, self.reason = text, column, reason
        where = f" at column {column}" if column > 0 else ""
        super().__init__(f"spec error{where} in {_excerpt(text, column)}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return SpecError, (self.text, self.column, self.reason)


def _excerpt(text: str, column: int, width: int = 100) -> str:
    """``repr(text)``, or for a longer text the ``width`` characters around ``column`` with ``...`` for the rest."""
    if len(text) <= width:
        return repr(text)
    start = min(max(0, column - 1 - width // 2), len(text) - width)
    head = "..." if start > 0 else ""
    tail = "..." if start + width < len(text) else ""
    return f"{head}{text[start:start + width]!r}{tail}"


class _AtError(Exception):
    """Raised inside the parser and builders; :func:`parse`/:func:`build` turn it into a :class:`SpecError`."""

    def __init__(self, column: int, reason: str) -> None:
        super().__init__(reason)
        self.column, self.reason = column, reason


# ------------------------------------------------------------------------------------------------------ AST


class Spec:
    """A parsed spec: a :class:`Call` (``cosine()``), a :class:`Chain` (``a >> b``) or a :class:`Product`
    (``a * b``). Immutable and hashable; ``str(spec)`` is its canonical text.

    Specs compose in Python with the same operators: ``parse("warmup(steps=5)") >> parse("cosine()")``.
    Columns remembered from parsing (``col``) are not part of equality.
    """

    col: int

    def __str__(self) -> str:
        return _format_node(self)

    def __rshift__(self, other: Spec) -> Chain:
        return Chain((self, other))

    def __mul__(self, other: Spec | float) -> Product:
        return Product((self, other))

    def __rmul__(self, other: float) -> Product:
        return Product((other, self))


def _freeze(value: Any) -> Any:
    """A spec value in its immutable form (lists become tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, (Spec, str, bool, int, float)):
        return value
    raise TypeError(f"{value!r} is not a spec value: expected a number, bool, string, list or Spec")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Call(Spec):
    """``name(arg=value, ...)``: one registered schedule with its arguments.

    ``args`` may be given as a mapping; it is kept as ``(name, value)`` pairs in the registry's parameter
    order, so argument order never matters. Values are numbers, bools, strings, tuples or nested specs.
    """

    name: str
    args: tuple[tuple[str, Any], ...] = ()
    col: int = field(default=0, compare=False, repr=False)
    arg_cols: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        items = self.args.items() if isinstance(self.args, Mapping) else self.args
        pairs = [(str(name), _freeze(value)) for name, value in items]
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"args={names} is invalid: an argument is given twice")
        entry = REGISTRY.get(self.name)
        if entry is not None:
            order = {name: i for i, name in enumerate(entry.arg_names())}
            pairs.sort(key=lambda pair: (order.get(pair[0], len(order)), pair[0]))
        object.__setattr__(self, "args", tuple(pairs))

    def arg(self, name: str, default: Any = None) -> Any:
        """The value given for argument ``name``, or ``default``."""
        return dict(self.args).get(name, default)


@dataclass(frozen=True)
class Chain(Spec):
    """``a >> b >> ...``: pieces one after another. Nested chains are flattened (``>>`` is associative)."""

    parts: tuple[Spec, ...]
    col: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        flat: list[Spec] = []
        for part in self.parts:
            if isinstance(part, Chain):
                flat.extend(part.parts)
            elif isinstance(part, Spec):
                flat.append(part)
            else:
                raise TypeError(f"{part!r} is not a Spec: '>>' joins schedules")
        if len(flat) < 2:
            raise ValueError("a Chain needs two or more parts")
        object.__setattr__(self, "parts", tuple(flat))
        if not self.col:
            object.__setattr__(self, "col", flat[0].col)


@dataclass(frozen=True)
class Product(Spec):
    """``a * b * ...``: schedules, numbers (scales) and at most one ``plateau(...)``, multiplied.

    Nested products are flattened; at least one factor must be a spec.
    """

    factors: tuple[Spec | int | float, ...]
    col: int = field(default=0, compare=False, repr=False)
    cols: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        flat: list[Spec | int | float] = []
        cols: list[int] = []
        for i, factor in enumerate(self.factors):
            col = self.cols[i] if i < len(self.cols) else getattr(factor, "col", 0)
            if isinstance(factor, Product):
                flat.extend(factor.factors)
                cols.extend(factor.factor_col(j) for j in range(len(factor.factors)))
            elif isinstance(factor, Spec) or _is_number(factor):
                flat.append(factor)
                cols.append(col)
            else:
                raise TypeError(f"{factor!r} is not a Spec or a number: '*' multiplies schedules and numbers")
        if len(flat) < 2:
            raise ValueError("a Product needs two or more factors")
        if not any(isinstance(f, Spec) for f in flat):
            raise ValueError("a Product needs at least one schedule")
        object.__setattr__(self, "factors", tuple(flat))
        object.__setattr__(self, "cols", tuple(cols))
        if not self.col:
            object.__setattr__(self, "col", cols[0])

    def factor_col(self, i: int) -> int:
        """The column of factor ``i`` in the parsed text (0 when unknown)."""
        return self.cols[i] if i < len(self.cols) else 0


# ---------------------------------------------------------------------------------------- canonical text

_BARE = re.compile(r"[A-Za-z0-9_.:+\-]+")
_INT = re.compile(r"[+-]?\d+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|inf)", re.ASCII)


def _classify(word: str) -> Any:
    """A bare token's value: an int, a float, a bool, or the word itself."""
    if _INT.fullmatch(word):
        return int(word)
    if _FLOAT.fullmatch(word):
        return float(word)
    if word.lower() in ("true", "false"):
        return word.lower() == "true"
    return word


def format_value(value: Any) -> str:
    """The canonical text of a spec value (exact: ``float`` values are written as ``repr`` writes them)."""
    if isinstance(value, Spec):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        if _BARE.fullmatch(value) and isinstance(_classify(value), str):
            return value  # a bare word that reads back as the same word
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    raise TypeError(f"{value!r} is not a spec value")


def _format_node(node: Spec) -> str:
    if isinstance(node, Call):
        entry = REGISTRY.get(node.name)
        args = dict(node.args)
        parts = []
        for name in entry.positional() if entry is not None else ():
            if name not in args:
                break
            parts.append(format_value(args.pop(name)))
        parts += [f"{name}={format_value(value)}" for name, value in args.items()]
        return f"{node.name}({', '.join(parts)})"
    if isinstance(node, Chain):
        return " >> ".join(str(part) for part in node.parts)
    if isinstance(node, Product):
        return " * ".join(f"({f})" if isinstance(f, Chain) else format_value(f) for f in node.factors)
    raise TypeError(f"{node!r} is not a Spec")


# ------------------------------------------------------------------------------------------------- parser

_TOKEN = re.compile(r"""(?P<space>\s+)|(?P<op>>>|[*()\[\],=])|(?P<bare>[A-Za-z0-9_.:+\-]+)"""
                    r"""|(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""", re.DOTALL)


@dataclass(frozen=True)
class _Token:
    kind: str  # op, bare, str, end
    text: str
    col: int  # 1-based

    def describe(self) -> str:
        return "the end of the spec" if self.kind == "end" else repr(self.text)


def _tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            char = text[pos]
            reason = "unterminated string" if char in "'\"" else f"unexpected character {char!r}"
            raise _AtError(pos + 1, reason)
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup or "", match.group(), pos + 1))
        pos = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    """Recursive descent over the tokens; every method returns ``(value, column)``."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.pos += 1
        return token

    def at(self, op: str) -> bool:
        token = self.peek()
        return token.kind == "op" and token.text == op

    def expect(self, op: str, context: str) -> _Token:
        if not self.at(op):
            token = self.peek()
            raise _AtError(token.col, f"expected {op!r} {context}, found {token.describe()}")
        return self.take()

    def chain(self) -> tuple[Any, int]:
        parts = [self.product()]
        while self.at(">>"):
            self.take()
            parts.append(self.product())
        if len(parts) == 1:
            return parts[0]
        parts = [_schedule_word(value, col) for value, col in parts]
        for value, col in parts:
            if not isinstance(value, Spec):
                raise _AtError(col, f"'>>' joins schedules, but {format_value(value)} is not one")
        return Chain(tuple(value for value, _ in parts), col=parts[0][1]), parts[0][1]

    def product(self) -> tuple[Any, int]:
        factors = [self.atom()]
        while self.at("*"):
            self.take()
            factors.append(self.atom())
        if len(factors) == 1:
            return factors[0]
        factors = [_schedule_word(value, col) for value, col in factors]
        for value, col in factors:
            if not (isinstance(value, Spec) or _is_number(value)):
                raise _AtError(col, f"'*' multiplies schedules and numbers, but {format_value(value)} is neither")
        first_col = factors[0][1]
        if not any(isinstance(value, Spec) for value, _ in factors):
            raise _AtError(first_col, "a product needs at least one schedule, as in constant() * 0.5")
        return Product(tuple(v for v, _ in factors), col=first_col, cols=tuple(c for _, c in factors)), first_col

    def atom(self) -> tuple[Any, int]:
        token = self.peek()
        if token.kind == "op" and token.text == "(":
            self.take()
            value, _ = self.chain()
            self.expect(")", f"to close the '(' at column {token.col}")
            return value, token.col
        if token.kind == "op" and token.text == "[":
            return self.list()
        if token.kind == "str":
            self.take()
            return re.sub(r"\\(.)", r"\1", token.text[1:-1], flags=re.DOTALL), token.col
        if token.kind == "bare":
            self.take()
            if self.at("("):
                return self.call(token), token.col
            return _classify(token.text), token.col
        raise _AtError(token.col, f"expected a schedule such as cosine(), a number or '(', found {token.describe()}")

    def list(self) -> tuple[tuple[Any, ...], int]:
        opening = self.take()
        items = []
        while not self.at("]"):
            items.append(self.chain()[0])
            if not self.at("]"):
                self.expect(",", f"or ']' in the list opened at column {opening.col}")
        self.take()
        return tuple(items), opening.col

    def call(self, name: _Token) -> Call:
        entry = REGISTRY.get(name.text)
        if entry is None:
            raise _AtError(name.col, _unknown("schedule", name.text, list(REGISTRY)))
        self.take()  # "("
        allowed = entry.arg_names()
        positional = list(entry.positional())
        args: dict[str, Any] = {}
        cols: dict[str, int] = {}
        keyword_seen = False
        while not self.at(")"):
            token = self.peek()
            if token.kind == "bare" and self.peek(1).kind == "op" and self.peek(1).text == "=":
                if token.text not in allowed:
                    raise _AtError(token.col, _unknown("argument", token.text, allowed, f" for {name.text}"))
                if token.text in args:
                    raise _AtError(token.col, f"argument {token.text!r} is given twice")
                self.take()
                self.take()
                if self.at(",") or self.at(")") or self.peek().kind == "end":
                    raise _AtError(self.peek().col, f"expected a value for {token.text!r}")
                arg, keyword_seen = token.text, True
            else:
                if token.kind == "end":
                    break
                if keyword_seen:
                    raise _AtError(token.col, "a positional argument cannot follow name=value arguments")
                if not positional:
                    took = ", ".join(entry.positional()) or "none"
                    raise _AtError(token.col, f"{name.text} takes no more positional arguments (positional: {took}): "
                                              f"write name=value, one of {', '.join(allowed)}")
                arg = positional.pop(0)
            value, col = self.chain()
            if entry.param(arg).kind == "spec":
                value, col = _schedule_word(value, col)
            args[arg], cols[arg] = value, col
            if not self.at(")"):
                self.expect(",", f"or ')' after the argument {arg!r}")
        self.expect(")", f"to close {name.text}( at column {name.col}")
        return Call(name.text, tuple(args.items()), col=name.col, arg_cols=tuple(cols.items()))


def _schedule_word(value: Any, col: int) -> tuple[Any, int]:
    """A bare word where a schedule belongs: ``cosine`` is ``cosine()``; an unknown name is an error.

    Only where a schedule is the one meaning (a piece of ``>>`` or ``*``, clamp's schedule, the whole spec):
    elsewhere a word is a value, as in ``warmup(shape=cosine)``.
    """
    if not isinstance(value, str) or not _BARE.fullmatch(value):
        return value, col
    if value not in REGISTRY:
        raise _AtError(col, _unknown("schedule", value, list(REGISTRY)))
    return Call(value, col=col), col


def _unknown(kind: str, name: str, known: list[str] | tuple[str, ...], where: str = "") -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    label = "allowed" if kind == "argument" else "known"
    return f"unknown {kind} {name!r}{where} ({label}: {', '.join(known)}){hint}"


def parse(text: str) -> Spec:
    """Parse a spec string into its immutable form (see the module docstring for the grammar).

    Schedule and argument names are checked against :data:`REGISTRY` here; values are checked by
    :func:`build`. Raises :class:`SpecError` (one line, with the column of the offending token).
    Example: ``str(parse("cosine(min_lr=1e-5)")) == "cosine(min_lr=1e-05)"``.
    """
    if isinstance(text, Spec):
        return text
    if not isinstance(text, str):
        raise TypeError(f"spec={text!r} is invalid: expected a string")
    try:
        parser = _Parser(text)
        if parser.peek().kind == "end":
            raise _AtError(1, "the spec is empty: expected a schedule such as cosine()")
        value, col = _schedule_word(*parser.chain())
        token = parser.peek()
        if token.kind != "end":
            if token.kind == "op" and token.text == ")":
                raise _AtError(token.col, "unmatched ')'")
            raise _AtError(token.col, f"unexpected {token.describe()} after a complete schedule: "
                                      "join pieces with '>>' or '*'")
        if not isinstance(value, Spec):
            raise _AtError(col, f"expected a schedule such as cosine(), found {format_value(value)}")
    except _AtError as problem:
        raise SpecError(text, problem.column, problem.reason) from None
    except RecursionError:  # brackets or clamp(...) nested hundreds deep; a long '>>' chain is fine
        raise SpecError(text, 0, "brackets are nested too deeply") from None
    return value


# ------------------------------------------------------------------------------------------ horizon, plan


@dataclass(frozen=True)
class Horizon:
    """What a spec's durations and default LRs are resolved against, once, by :func:`build`.

    Args:
        total_steps: optimizer updates in the whole run (>= 1).
        steps_per_epoch: updates per epoch, needed by ``*_epochs`` durations (None: not known).
        base_lr: the optimizer's LR; LR parameters (init_lr, max_lr, ...) default to it.
        beta2: Adam's beta2, for ``warmup(steps=auto)`` = ``2 / (1 - beta2)`` steps (None: not Adam).
    """

    total_steps: int
    steps_per_epoch: int | None = None
    base_lr: float = 1.0
    beta2: float | None = None

    def __post_init__(self) -> None:
        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not is_int(self.total_steps) or self.total_steps < 1:
            raise ConfigError(f"total_steps={self.total_steps!r} is invalid: expected an integer >= 1")
        if self.steps_per_epoch is not None and (not is_int(self.steps_per_epoch) or self.steps_per_epoch < 1):
            raise ConfigError(f"steps_per_epoch={self.steps_per_epoch!r} is invalid: expected an integer >= 1")
        if not _is_number(self.base_lr) or not math.isfinite(self.base_lr) or self.base_lr <= 0:
            raise ConfigError(f"base_lr={self.base_lr!r} is invalid: expected a number > 0")
        if self.beta2 is not None and (not _is_number(self.beta2) or not 0 <= self.beta2 < 1):
            raise ConfigError(f"beta2={self.beta2!r} is invalid: expected a number in [0, 1)")


@dataclass(frozen=True)
class PlateauSettings:
    """The arguments of a :class:`~lrlab.controllers.Plateau` (ReduceLROnPlateau), ``start_step`` included."""

    mode: str = "min"
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    cooldown: int = 0
    min_lr: float | tuple[float, ...] = 0.0
    eps: float = 1e-8
    sign_safe: bool = False
    start_step: int = 0

    def controller(self) -> Plateau:
        """A fresh controller with these settings."""
        return Plateau(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class Plan:
    """A spec built for one run: absolute LR (and momentum) schedules plus the plateau settings, if any.

    Attributes:
        lr: the LR at each step, in absolute units (``base_lr`` already applied).
        momentum: the momentum (or Adam's beta1) at each step, for onecycle/cyclic; None leaves it alone.
        plateau: ReduceLROnPlateau settings when the spec has ``plateau(...)``; its ``start_step`` is where
            the controller starts listening (the end of a warmup before it).
        spec: the parsed spec (``str(plan.spec)`` is its canonical text).
        horizon: what the durations were resolved against.
    """

    lr: Schedule
    momentum: Schedule | None = None
    plateau: PlateauSettings | None = None
    spec: Spec | None = None
    horizon: Horizon | None = None

    def new_controller(self) -> Plateau | None:
        """A fresh :class:`~lrlab.controllers.Plateau` for one run (None when the spec has no plateau)."""
        return None if self.plateau is None else self.plateau.controller()

    def scheduler(self, optimizer: Optimizer) -> ScheduledLR:
        """A :class:`~lrlab.adapter.ScheduledLR` driving ``optimizer`` with this plan (and a fresh controller).

        The LR written into the optimizer is :attr:`lr` itself, so it replaces the optimizer's own LR.
        """
        from lrlab.adapter import ScheduledLR  # torch only where a scheduler is wanted

        return ScheduledLR(optimizer, self.lr, controller=self.new_controller(), momentum=self.momentum)

    def lr_values(self, steps: int | None = None) -> list[float]:
        """``[lr(0), ..., lr(steps - 1)]``; ``steps`` defaults to the horizon's ``total_steps``."""
        return [self.lr(t) for t in range(self._steps(steps))]

    def momentum_values(self, steps: int | None = None) -> list[float] | None:
        """Like :meth:`lr_values` for the momentum schedule; None when the plan has none."""
        if self.momentum is None:
            return None
        return [self.momentum(t) for t in range(self._steps(steps))]

    def _steps(self, steps: int | None) -> int:
        if steps is not None:
            return steps
        if self.horizon is None:
            raise ValueError("steps=None is invalid for a Plan without a horizon: expected a number of steps")
        return self.horizon.total_steps


# ------------------------------------------------------------------------------------------------ registry

UNITS = ("steps", "epochs", "frac")


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED = _Marker("REQUIRED")
BASE_LR = _Marker("BASE_LR")  # the default of LR parameters: the optimizer's LR (1 inside a product's envelope)


@dataclass(frozen=True)
class Param:
    """One parameter of a registered schedule.

    ``kind`` is ``number``, ``int``, ``bool``, ``choice``, ``word``, ``spec`` or ``duration``. A duration
    is a family of three arguments ``<name>_steps|_epochs|_frac`` (plain ``steps|epochs|frac`` when
    ``name`` is empty) whose default is ``(unit, value)`` or None; ``low`` is then its minimum in steps.
    """

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False  # the word `none` is accepted (no value)
    positional: bool = False  # may be given without its name (first, in order)
    auto: bool = False  # a duration whose steps may be `auto` (Adam's 2 / (1 - beta2))
    many: bool = False  # a list is accepted (numbers: one per param group; durations: a list of points)
    inf_ok: bool = False
    shown: str | None = None  # how to describe a default that is not a plain value

    def names(self) -> tuple[str, ...]:
        """The argument names this parameter answers to (three for a duration)."""
        if self.kind == "duration":
            return tuple(f"{self.name}_{unit}" if self.name else unit for unit in UNITS)
        return (self.name,)

    def default_text(self) -> str:
        """The default, as ``lrlab schedules`` shows it."""
        if self.shown is not None:
            return self.shown
        if self.default is REQUIRED:
            return "required"
        if self.default is BASE_LR:
            return "optimizer's LR"
        if self.default is None:
            return "none"
        if self.kind == "duration":
            unit, value = self.default
            return f"{self.names()[UNITS.index(unit)]}={format_value(value)}"
        return format_value(self.default)


@dataclass(frozen=True)
class Entry:
    """A registered schedule: its builder, a one-line description and its parameters."""

    name: str
    description: str
    params: tuple[Param, ...]
    builder: Callable[[Args, _Context], _Built]
    controller: bool = False  # contributes only a controller, no LR of its own (plateau)

    def arg_names(self) -> tuple[str, ...]:
        """Every argument name the schedule accepts, in canonical order."""
        return tuple(name for p in self.params for name in p.names())

    def positional(self) -> tuple[str, ...]:
        """The arguments that may be given without their name, in order."""
        return tuple(p.name for p in self.params if p.positional)

    def param(self, name: str) -> Param:
        """The parameter an argument (or a duration's base name) belongs to."""
        for p in self.params:
            if name == p.name or name in p.names():
                return p
        raise KeyError(f"{self.name} has no parameter {name!r}")


REGISTRY: dict[str, Entry] = {}


def register(name: str, description: str, *params: Param,
             controller: bool = False) -> Callable[[Callable[[Args, _Context], _Built]], Callable]:
    """Decorator adding a builder ``(args, context) -> built`` to :data:`REGISTRY` under ``name``."""

    def decorate(builder: Callable[[Args, _Context], _Built]) -> Callable[[Args, _Context], _Built]:
        if name in REGISTRY:
            raise ValueError(f"name={name!r} is invalid: a schedule with this name is already registered")
        REGISTRY[name] = Entry(name, description, tuple(params), builder, controller)
        return builder

    return decorate


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


# ----------------------------------------------------------------------------------------------- building


@dataclass(frozen=True)
class _Context:
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
class _Ramp:
    steps: int
    shape: str
    start: float


@dataclass(frozen=True)
class _Built:
    """What building one node gives: its LR schedule and what comes with it."""

    lr: Schedule | None
    duration: int | None = None  # its own length in steps; None: it takes the span it is given
    momentum: Schedule | None = None
    plateau: PlateauSettings | None = None
    neutral: bool = False  # the LR is only a default (plateau's): a product drops it
    ramp: _Ramp | None = None  # a warmup: ramps into what follows '>>'


class Args:
    """A call's arguments as its builder sees them: converted, checked, defaulted.

    ``args["min_lr"]`` gives a value (a default when not given), ``args.steps("every")`` a duration
    resolved to steps. Every mistake raises an error that points at the offending value.
    """

    def __init__(self, call: Call, entry: Entry, ctx: _Context) -> None:
        self.call, self.entry, self.ctx = call, entry, ctx
        self.values = dict(call.args)
        self.cols = dict(call.arg_cols)

    def given(self, name: str) -> bool:
        """Whether argument ``name`` was written in the spec."""
        return name in self.values

    def fail(self, name: str | None, reason: str) -> NoReturn:
        """Raise a spec error about argument ``name`` (None: the call itself)."""
        raise _AtError(self.cols.get(name, self.call.col) if name else self.call.col, reason)

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
            ok = _is_number(value) and (math.isfinite(value) or (p.inf_ok and value == math.inf))
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
            elif _is_number(value) and math.isfinite(value) and float(value).is_integer():
                steps = int(value)
            else:
                self._bad(p, name, whole, f"a whole number of steps >= {low}" + (" or auto" if p.auto else ""))
        elif unit == "epochs":
            if not (_is_number(value) and math.isfinite(value) and value >= 0):
                self._bad(p, name, whole, "a number of epochs >= 0")
            if horizon.steps_per_epoch is None:
                alternatives = " or ".join(n for n in p.names() if not n.endswith("epochs"))
                self.fail(name, f"{name}={format_value(whole)} needs the number of steps per epoch, which is not set "
                                f"(Horizon.steps_per_epoch): give it, or use {alternatives}")
            steps = _round(value * horizon.steps_per_epoch)
        else:
            if not (_is_number(value) and 0 <= value <= 1):
                self._bad(p, name, whole, "a fraction of training in [0, 1]")
            steps = _round(value * horizon.total_steps)
        if steps < low:
            self.fail(name, f"{name}={format_value(whole)} is {steps} steps (training has {horizon.total_steps}): "
                            f"expected at least {low}")
        return steps


def _round(x: float) -> int:
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


def _short(node: Spec, width: int = 40) -> str:
    text = str(node)
    return text if len(text) <= width else text[: width - 3] + "..."


def _is_controller(node: Any) -> bool:
    entry = REGISTRY.get(node.name) if isinstance(node, Call) else None
    return entry is not None and entry.controller


def _build_node(node: Spec, ctx: _Context) -> _Built:
    if isinstance(node, Call):
        entry = REGISTRY.get(node.name)
        if entry is None:
            raise _AtError(node.col, _unknown("schedule", node.name, list(REGISTRY)))
        for name, _ in node.args:
            if name not in entry.arg_names():
                raise _AtError(node.col, _unknown("argument", name, entry.arg_names(), f" for {node.name}"))
        return entry.builder(Args(node, entry, ctx), ctx)
    if isinstance(node, Chain):
        return _build_chain(node, ctx)
    if isinstance(node, Product):
        return _build_product(node, ctx)
    raise TypeError(f"{node!r} is not a Spec")


def _as_schedule(built: _Built, ctx: _Context, col: int) -> Schedule:
    """The LR schedule of a built node that ends a chain (a lone warmup ramps up to ``base_lr`` and holds)."""
    if built.ramp is None:
        assert built.lr is not None
        return built.lr
    if built.ramp.steps >= ctx.span:
        raise _AtError(col, f"warmup lasts {built.ramp.steps} steps, but only {ctx.span} steps are left for it and "
                            f"what follows (training has {ctx.horizon.total_steps} steps)")
    return Warmup(Constant(ctx.base_lr), built.ramp.steps, built.ramp.shape, built.ramp.start)


def _build_chain(chain: Chain, ctx: _Context) -> _Built:
    pieces: list[_Built] = []
    used = 0  # steps taken by the pieces built so far
    warmup_before = None
    last = len(chain.parts) - 1
    for i, part in enumerate(chain.parts):
        remaining = ctx.span - used
        piece_ctx = replace(ctx, span=remaining, offset=ctx.offset + used, warmup_before=warmup_before)
        built = _build_node(part, piece_ctx)
        if i < last:
            if built.plateau is not None:
                raise _AtError(part.col, "plateau(...) can only be in the last piece of a '>>' chain: "
                                         "a controller runs until the end of training")
            if built.duration is None:
                raise _AtError(part.col, f"{_short(part)} needs a length (steps=, epochs= or frac=): "
                                         "every piece before '>>' does")
            if built.duration >= remaining:
                raise _AtError(part.col, f"{_short(part)} lasts {built.duration} steps, but only {remaining} steps "
                                         f"are left for it and the pieces after it "
                                         f"(training has {ctx.horizon.total_steps} steps)")
            used += built.duration
        else:
            built = replace(built, lr=_as_schedule(built, piece_ctx, part.col),
                            duration=None if built.ramp else built.duration, ramp=None)
        pieces.append(built)
        warmup_before = built.ramp.steps if built.ramp else None
    duration = None if pieces[-1].duration is None else used + pieces[-1].duration
    return _Built(_chain_lr(pieces), duration, _chain_momentum(pieces), pieces[-1].plateau)


def _chain_lr(pieces: list[_Built]) -> Schedule:
    """The pieces' LR schedules as one flat :class:`~lrlab.schedules.Join` (never nested, so a chain of any
    length is evaluated without recursion). A warmup ramps up to the start of the piece after it."""
    schedules: list[Schedule] = []
    for piece in reversed(pieces):
        if piece.ramp is None:
            assert piece.lr is not None
            schedules.append(piece.lr)
            continue
        following = schedules[-1]
        if isinstance(following, Warmup):  # a warmup into a warmup: ramp to its (fixed) start, not through it
            following = Constant(following(0))
        schedules.append(Warmup(following, piece.ramp.steps, piece.ramp.shape, piece.ramp.start))
    schedules.reverse()
    boundaries = list(itertools.accumulate(piece.duration or 0 for piece in pieces[:-1]))
    return join(schedules, boundaries)


def _chain_momentum(pieces: list[_Built]) -> Schedule | None:
    """The pieces' momentum schedules joined; a piece without one holds the value of the nearest one before
    it (its end), else after it (its start)."""
    scheduled = [p.momentum for p in pieces if p.momentum is not None]
    if not scheduled:
        return None
    held = scheduled[0](0)
    schedules, boundaries, at = [], [], 0
    for i, piece in enumerate(pieces):
        if i:
            boundaries.append(at)
        if piece.momentum is not None:
            schedules.append(piece.momentum)
            if piece.duration is not None:
                held = piece.momentum(piece.duration)
        else:
            schedules.append(Constant(held))
        at += piece.duration or 0
    return join(schedules, boundaries)


def _build_product(product: Product, ctx: _Context) -> _Built:
    lead = next((i for i, f in enumerate(product.factors) if isinstance(f, Spec) and not _is_controller(f)), None)
    schedules: list[Schedule] = []
    factor = 1.0
    momentum: Schedule | None = None
    plateau: PlateauSettings | None = None
    durations: list[int] = []
    for i, node in enumerate(product.factors):
        col = product.factor_col(i)
        if not isinstance(node, Spec):
            if not (math.isfinite(node) and node >= 0):
                raise _AtError(col, f"{format_value(node)} is invalid as a factor: expected a finite number >= 0")
            factor *= node
            continue
        built = _build_node(node, ctx if i == lead else replace(ctx, base_lr=1.0))
        if built.ramp is not None:
            raise _AtError(col, "warmup(...) cannot be multiplied: it ramps into the piece after it, "
                                "as in warmup(steps=100) >> cosine()")
        if built.momentum is not None:
            if momentum is not None:
                raise _AtError(col, "only one factor of a product may schedule momentum")
            momentum = built.momentum
        if built.plateau is not None:
            if plateau is not None:
                raise _AtError(col, "only one plateau(...) is allowed in a spec")
            plateau = built.plateau
        if built.duration is not None:
            durations.append(built.duration)
        if not built.neutral:
            assert built.lr is not None
            schedules.append(built.lr)
    lr = schedules[0] if schedules else Constant(ctx.base_lr)
    for schedule in schedules[1:]:
        lr = lr * schedule
    if factor != 1.0:
        lr = lr * factor
    return _Built(lr, max(durations) if durations else None, momentum, plateau)


def build(spec: Spec | str, horizon: Horizon, *, load_functions: bool = True) -> Plan:
    """Build a spec for one run: resolve its durations against ``horizon`` and make its schedules.

    Args:
        spec: a spec string or a parsed :class:`Spec`.
        horizon: the run's length (steps, steps per epoch), the optimizer's LR and Adam's beta2.
        load_functions: import the module of each ``fn(path=module:function)``. False for a spec read from
            stored results, which is data and must never run code: the path is only checked for its form,
            and the plan's LR raises :class:`ConfigError` at the steps where that function would be called.

    Returns:
        a :class:`Plan` with absolute LR values. Raises :class:`SpecError` (a :class:`ConfigError`) for any
        mistake: unknown names, bad values, durations that do not fit the run.

    Example: ``build("cosine(min_lr=0.01)", Horizon(100, base_lr=0.1)).lr(0) == 0.1``.
    """
    if not isinstance(horizon, Horizon):
        raise TypeError(f"horizon={horizon!r} is invalid: expected a Horizon")
    text = spec if isinstance(spec, str) else str(spec)
    node = parse(text)  # a Spec given directly is re-read from its text, so errors can point at a column
    ctx = _Context(horizon, horizon.total_steps, horizon.base_lr, load_functions=load_functions)
    try:
        built = _build_node(node, ctx)
        lr = _as_schedule(built, ctx, node.col)
    except _AtError as problem:
        raise SpecError(text, problem.column, problem.reason) from None
    return Plan(lr, built.momentum, built.plateau, node, horizon)


# ---------------------------------------------------------------------------------------------- schedules


@register("constant", "the same LR at every step (the baseline; or a flat piece of a '>>' chain)",
          _lr("lr", "the LR"), LENGTH)
def _constant(a: Args, ctx: _Context) -> _Built:
    return _Built(a.make(Constant, a["lr"]), a.steps(""))


@register("step", "init_lr * gamma ** (steps done // every): decay by gamma at a fixed interval (StepLR)",
          _lr("init_lr", "LR before the first decay"),
          _dur("every", ("frac", 0.3), "interval between two decays"),
          _num("gamma", 0.1, "LR factor at each decay", low=0), LENGTH)
def _step(a: Args, ctx: _Context) -> _Built:
    return _Built(a.make(Step, a["init_lr"], a.steps("every"), a["gamma"]), a.steps(""))


@register("multistep", "decay by gamma at each milestone (MultiStepLR)",
          _lr("init_lr", "LR before the first milestone"),
          _dur("milestones", ("frac", (0.5, 0.75)), "when to decay: a list such as [30, 60] (or one value)",
               low=0, many=True),
          _num("gamma", 0.1, "LR factor at each milestone", low=0), LENGTH)
def _multistep(a: Args, ctx: _Context) -> _Built:
    return _Built(a.make(MultiStep, a["init_lr"], a.steps("milestones"), a["gamma"]), a.steps(""))


@register("exponential", "init_lr * gamma ** step: a decay by gamma at every optimizer step (ExponentialLR)",
          _lr("init_lr", "LR at step 0"),
          _num("gamma", 0.999, "LR factor per optimizer step", low=0, low_open=True), LENGTH)
def _exponential(a: Args, ctx: _Context) -> _Built:
    return _Built(a.make(Exponential, a["init_lr"], a["gamma"]), a.steps(""))


@register("linear", "a straight line from start_lr to end_lr over the piece, then end_lr (LinearLR)",
          _lr("start_lr", "LR at the start"), _num("end_lr", 0.0, "LR at the end", low=0), LENGTH)
def _linear(a: Args, ctx: _Context) -> _Built:
    steps = a.steps("")
    return _Built(a.make(Anneal, a["start_lr"], a["end_lr"], ctx.length(steps), "linear"), steps)


@register("polynomial", "min_lr + (init_lr - min_lr) * (1 - t / T) ** power over the piece (PolynomialLR)",
          _lr("init_lr", "LR at the start"), _num("min_lr", 0.0, "LR at the end", low=0),
          _num("power", 1.0, "exponent of the decay", low=0), LENGTH)
def _polynomial(a: Args, ctx: _Context) -> _Built:
    steps = a.steps("")
    return _Built(a.make(Polynomial, a["init_lr"], a["min_lr"], ctx.length(steps), a["power"]), steps)


@register("cosine", "half a cosine from init_lr down to min_lr over the piece (CosineAnnealingLR)",
          _lr("init_lr", "LR at the start"), _num("min_lr", 0.0, "LR at the end (eta_min)", low=0),
          _flag("cyclic", False, "keep following the cosine wave after the piece's length, as torch does"),
          LENGTH)
def _cosine(a: Args, ctx: _Context) -> _Built:
    steps = a.steps("")
    return _Built(a.make(Cosine, a["init_lr"], a["min_lr"], ctx.length(steps), a["cyclic"]), steps)


@register("sgdr", "cosine annealing with warm restarts (SGDR; CosineAnnealingWarmRestarts)",
          _lr("init_lr", "peak LR of the first cycle"), _num("min_lr", 0.0, "LR at the end of each cycle", low=0),
          _dur("period", ("frac", 0.25), "length of the first cycle"),
          _num("mult", 1.0, "each cycle is mult times longer than the one before (may be fractional)", low=1),
          _num("decay", 1.0, "peak LR factor from one cycle to the next", low=0),
          _int("max_cycles", None, "after this many cycles the LR stays at min_lr", low=1, optional=True),
          LENGTH)
def _sgdr(a: Args, ctx: _Context) -> _Built:
    schedule = a.make(CosineRestarts, a["init_lr"], a["min_lr"], a.steps("period"), a["mult"], a["decay"],
                      a["max_cycles"])
    return _Built(schedule, a.steps(""))


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
def _cyclic(a: Args, ctx: _Context) -> _Built:
    max_lr = a["max_lr"]
    min_lr = max_lr / 10 if a["min_lr"] is None else a["min_lr"]
    up = a.steps("up")
    down = up if a.steps("down") is None else a.steps("down")
    lr = a.make(Cyclic, min_lr, max_lr, up, down, a["mode"], a["gamma"])
    momentum = None
    if a["cycle_momentum"]:
        momentum = a.make(Cyclic, a["base_momentum"], a["max_momentum"], up, down, a["mode"], a["gamma"],
                          descending=True)
    return _Built(lr, a.steps(""), momentum)


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
def _onecycle(a: Args, ctx: _Context) -> _Built:
    steps = a.steps("")
    total = ctx.length(steps)
    lr = a.make(OneCycle, a["max_lr"], total, a["pct_start"], a["anneal_strategy"], a["div_factor"],
                a["final_div_factor"], a["three_phase"])
    momentum = None
    if a["cycle_momentum"]:
        momentum = a.make(OneCycleMomentum, total, a["pct_start"], a["anneal_strategy"], a["base_momentum"],
                          a["max_momentum"], a["three_phase"])
    return _Built(lr, steps, momentum)


@register("inverse_sqrt", "init_lr * sqrt(timescale / (step + timescale)): the Transformer's 1/sqrt decay",
          _lr("init_lr", "LR at step 0"),
          _dur("timescale", None, "steps over which the LR falls by 1/sqrt(2)",
               shown="the warmup just before it, else timescale_frac=0.1"),
          LENGTH)
def _inverse_sqrt(a: Args, ctx: _Context) -> _Built:
    timescale = a.steps("timescale")
    if timescale is None:  # after warmup(w): peak * sqrt(w / t) at absolute step t, as Vaswani et al.
        timescale = ctx.warmup_before or max(1, _round(0.1 * ctx.horizon.total_steps))
    return _Built(a.make(InverseSqrt, a["init_lr"], float(timescale)), a.steps(""))


@register("wsd", "warmup-stable-decay: hold peak_lr, then a cooldown to min_lr that ends with the piece",
          _lr("peak_lr", "LR of the stable phase"), _num("min_lr", 0.0, "LR at the end", low=0),
          _dur("decay", ("frac", 0.2), "length of the cooldown", low=0),
          _choice("shape", "1-sqrt", WSD_DECAY_SHAPES, "shape of the cooldown"),
          _dur("warmup", ("steps", 0), "length of a linear warmup at the start", low=0), LENGTH)
def _wsd(a: Args, ctx: _Context) -> _Built:
    steps = a.steps("")
    schedule = a.make(wsd_schedule, a["peak_lr"], ctx.length(steps), a.steps("decay"), a.steps("warmup"),
                      a["min_lr"], a["shape"])
    return _Built(schedule, steps)


@register("tanh", "hyperbolic-tangent decay from init_lr to min_lr over the piece (Hsueh et al., 2019)",
          _lr("init_lr", "LR at the start (about)"), _num("min_lr", 0.0, "LR at the end (about)", low=0),
          _num("lower", -6.0, "tanh argument at the start"), _num("upper", 3.0, "tanh argument at the end"),
          LENGTH)
def _tanh(a: Args, ctx: _Context) -> _Built:
    steps = a.steps("")
    return _Built(a.make(Tanh, a["init_lr"], a["min_lr"], ctx.length(steps), a["lower"], a["upper"]), steps)


@dataclass(frozen=True)
class _NotLoaded:
    """What ``fn(path=...)`` calls when built with ``load_functions=False``: nothing was imported."""

    path: str

    def __call__(self, step: int) -> float:
        raise ConfigError(f"path={format_value(self.path)} was not imported: this plan was built from stored "
                          "results (load_functions=False), which never run code")


def _load_function(a: Args, ctx: _Context) -> Callable[[int], float]:
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
def _fn(a: Args, ctx: _Context) -> _Built:
    return _Built(a.make(Function, _load_function(a, ctx), a["init_lr"]), a.steps(""))


@register("warmup", "a ramp up to the starting LR of what follows '>>' (alone: up to the optimizer's LR)",
          _dur("", ("frac", 0.05), "length of the ramp; steps=auto is 2 / (1 - beta2) for Adam (Ma & Yarats)",
               low=0, auto=True),
          _choice("shape", "linear", WARMUP_SHAPES, "shape of the ramp (exponential needs start > 0)"),
          _num("start", 0.0, "LR at step 0, as a fraction of the ramp's target", low=0, high=1))
def _warmup(a: Args, ctx: _Context) -> _Built:
    steps, shape, start = a.steps(""), a["shape"], a["start"]
    if shape == "exponential" and start <= 0:
        a.fail("shape", "shape=exponential needs start > 0 (a geometric ramp cannot start at 0): add e.g. start=0.01")
    return _Built(None, steps, ramp=_Ramp(steps, shape, start))


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
def _plateau(a: Args, ctx: _Context) -> _Built:
    settings = PlateauSettings(a["mode"], a["factor"], a["patience"], a["threshold"], a["threshold_mode"],
                               a["cooldown"], a["min_lr"], a["eps"], a["sign_safe"], start_step=ctx.offset)
    a.make(settings.controller)  # the controller's own checks, once, at build time
    return _Built(Constant(ctx.base_lr), None, plateau=settings, neutral=True)


@register("clamp", "a schedule's LR bounded to [min, max]",
          Param("schedule", "spec", REQUIRED, "the schedule to bound", positional=True),
          _num("min", 0.0, "lowest LR", low=0), _num("max", math.inf, "highest LR", low=0, inf_ok=True))
def _clamp(a: Args, ctx: _Context) -> _Built:
    inner: Spec = a["schedule"]
    built = _build_node(inner, ctx)
    low, high = a["min"], a["max"]
    if high < low:
        a.fail("max", f"max={format_value(high)} is invalid for clamp: expected a number >= min={format_value(low)}")
    lr = a.make(Clamp, _as_schedule(built, ctx, inner.col), low, high)
    return replace(built, lr=lr, duration=None if built.ramp else built.duration, ramp=None, neutral=False)

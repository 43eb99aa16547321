"""The spec language: its values (:class:`Spec`: :class:`Call`, :class:`Chain`, :class:`Product`), their
canonical text (:func:`format_value`), and the vocabulary they are written in (:data:`REGISTRY` of
:class:`Entry`, each with its :class:`Param` list).

These three live together because each needs the others: a :class:`Call` keeps its arguments in the
registry's order, its text writes the registry's positional arguments without their names, and a
:class:`Param` shows its default in the canonical text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrlab.spec.args import Args, Built, Context


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


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (a bool is not a number here)."""
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
            elif isinstance(factor, Spec) or is_number(factor):
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

BARE_WORD = re.compile(r"[A-Za-z0-9_.:+\-]+")  # a word written without quotes
_INT = re.compile(r"[+-]?\d+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|inf)", re.ASCII)


def classify(word: str) -> Any:
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
        if BARE_WORD.fullmatch(value) and isinstance(classify(value), str):
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
    builder: Callable[[Args, Context], Built]
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
             controller: bool = False) -> Callable[[Callable[[Args, Context], Built]], Callable]:
    """Decorator adding a builder ``(args, context) -> built`` to :data:`REGISTRY` under ``name``."""

    def decorate(builder: Callable[[Args, Context], Built]) -> Callable[[Args, Context], Built]:
        if name in REGISTRY:
            raise ValueError(f"name={name!r} is invalid: a schedule with this name is already registered")
        REGISTRY[name] = Entry(name, description, tuple(params), builder, controller)
        return builder

    return decorate


"""The spec parser: text to a :class:`~lrlab.spec.language.Spec` (the grammar is in :mod:`lrlab.spec`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lrlab.spec.errors import LocatedError, SpecError, unknown_name
from lrlab.spec.language import BARE_WORD, REGISTRY, Call, Chain, Product, Spec, classify, format_value, is_number

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
            raise LocatedError(pos + 1, reason)
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
            raise LocatedError(token.col, f"expected {op!r} {context}, found {token.describe()}")
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
                raise LocatedError(col, f"'>>' joins schedules, but {format_value(value)} is not one")
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
            if not (isinstance(value, Spec) or is_number(value)):
                raise LocatedError(col, f"'*' multiplies schedules and numbers, but {format_value(value)} is neither")
        first_col = factors[0][1]
        if not any(isinstance(value, Spec) for value, _ in factors):
            raise LocatedError(first_col, "a product needs at least one schedule, as in constant() * 0.5")
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
            return classify(token.text), token.col
        raise LocatedError(token.col,
                           f"expected a schedule such as cosine(), a number or '(', found {token.describe()}")

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
            raise LocatedError(name.col, unknown_name("schedule", name.text, list(REGISTRY)))
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
                    raise LocatedError(token.col, unknown_name("argument", token.text, allowed, f" for {name.text}"))
                if token.text in args:
                    raise LocatedError(token.col, f"argument {token.text!r} is given twice")
                self.take()
                self.take()
                if self.at(",") or self.at(")") or self.peek().kind == "end":
                    raise LocatedError(self.peek().col, f"expected a value for {token.text!r}")
                arg, keyword_seen = token.text, True
            else:
                if token.kind == "end":
                    break
                if keyword_seen:
                    raise LocatedError(token.col, "a positional argument cannot follow name=value arguments")
                if not positional:
                    took = ", ".join(entry.positional()) or "none"
                    raise LocatedError(token.col, f"{name.text} takes no more positional arguments "
                                                  f"(positional: {took}): write name=value, "
                                                  f"one of {', '.join(allowed)}")
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
    if not isinstance(value, str) or not BARE_WORD.fullmatch(value):
        return value, col
    if value not in REGISTRY:
        raise LocatedError(col, unknown_name("schedule", value, list(REGISTRY)))
    return Call(value, col=col), col



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
            raise LocatedError(1, "the spec is empty: expected a schedule such as cosine()")
        value, col = _schedule_word(*parser.chain())
        token = parser.peek()
        if token.kind != "end":
            if token.kind == "op" and token.text == ")":
                raise LocatedError(token.col, "unmatched ')'")
            raise LocatedError(token.col, f"unexpected {token.describe()} after a complete schedule: "
                                           "join pieces with '>>' or '*'")
        if not isinstance(value, Spec):
            raise LocatedError(col, f"expected a schedule such as cosine(), found {format_value(value)}")
    except LocatedError as problem:
        raise SpecError(text, problem.column, problem.reason) from None
    except RecursionError:  # brackets or clamp(...) nested hundreds deep; a long '>>' chain is fine
        raise SpecError(text, 0, "brackets are nested too deeply") from None
    return value


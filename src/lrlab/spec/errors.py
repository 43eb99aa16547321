"""Spec errors: :class:`SpecError` for users, :class:`LocatedError` inside the parser and builders."""

from __future__ import annotations

import difflib
from typing import Any

from lrlab.errors import ConfigError


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


class LocatedError(Exception):
    """Raised inside the parser and builders; :func:`parse`/:func:`build` turn it into a :class:`SpecError`."""

    def __init__(self, column: int, reason: str) -> None:
        super().__init__(reason)
        self.column, self.reason = column, reason


def unknown_name(kind: str, name: str, known: list[str] | tuple[str, ...], where: str = "") -> str:
    """The reason for an unknown schedule or argument ``name``: what is known, and the closest match."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    label = "allowed" if kind == "argument" else "known"
    return f"unknown {kind} {name!r}{where} ({label}: {', '.join(known)}){hint}"


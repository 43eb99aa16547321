"""lrlab's error for a user's mistake in a config, spec or command line, and how values are shown in one."""

import reprlib

_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40
_REPR.maxtuple = _REPR.maxlist = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 4


class ConfigError(ValueError):
    """A user-supplied value is invalid; the message is one line naming the field, the value and what is allowed."""


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` for an error line: at most ``limit`` characters, nested or huge values abridged with ``...``
    without ever building their full repr (a YAML alias bomb's repr would take gigabytes).

    >>> short_repr([[1, 2, 3, 4, 5]] * 3)
    '[[1, 2, 3, 4, ...], [1, 2, 3, 4, ...], [1, 2, 3, 4, ...]]'
    """
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."

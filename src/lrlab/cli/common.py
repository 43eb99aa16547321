"""What the commands share: exit codes, argparse types, the console, names for files and counts."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

EXIT_USAGE = 2  # a user's mistake, as argparse's own errors
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it takes Ctrl-C's orderly path (exit 143, not 130)."""


#: SIGTERMs since the command started: a library may turn the Terminated raised in its call into a plain
#: KeyboardInterrupt (Ray's ``ray.wait`` does), and the exit code must still say SIGTERM
_terminated: list[int] = []


def start_command() -> None:
    """Forget the SIGTERMs of an earlier command (``main`` runs once per process, but tests call it often)."""
    _terminated.clear()


def raise_terminated(signum: int, frame: object) -> None:
    _terminated.append(signum)
    raise Terminated


def interrupted_code(stop: KeyboardInterrupt) -> int:
    """The exit code of a stop: 143 after SIGTERM (even re-raised by a library as a plain KeyboardInterrupt), else
    130."""
    return EXIT_TERMINATED if isinstance(stop, Terminated) or _terminated else EXIT_INTERRUPTED


# ------------------------------------------------------------------------------------------------- helpers


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (anything else is a usage error, exit code 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected an integer >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected an integer >= 1")
    return value


def peak_lr_arg(text: str) -> float | str:
    """``--peak-lr``: a number, ``auto`` or ``tune``."""
    if text in ("auto", "tune"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number, 'auto' or 'tune'") from None


def console_for(stderr: bool = False) -> Console:
    """A rich console; when not writing to a terminal, 160 columns wide (unless COLUMNS says otherwise)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    wide = stream.isatty() or "COLUMNS" in os.environ
    return Console(stderr=stderr, markup=False, highlight=False, width=None if wide else 160)


def can_show(text: str) -> bool:
    """Whether stdout's encoding can write ``text`` (block characters need UTF-8 or similar)."""
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def plural(n: int, noun: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def dir_name(task: str) -> str:
    """A task name as a directory name (``pkg.mod:fn`` -> ``pkg.mod-fn``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", task).strip("-") or "task"



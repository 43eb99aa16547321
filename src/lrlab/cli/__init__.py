"""The ``lrlab`` command: list schedules and tasks, plot schedules, compare schedules on a task, report.

Thin on purpose: each command parses its flags, builds a spec or config, calls the library and prints. A
user's mistake (:class:`~lrlab.errors.ConfigError`) is one line on stderr and exit code 2, never a traceback.
torch, matplotlib and the report are imported inside the commands that need them, so ``lrlab --help`` and
``lrlab schedules`` are instant.

Examples::

    lrlab schedules
    lrlab plot "warmup(steps=100) >> cosine()" "onecycle()" --steps 1000 --out lr.png --csv lr.csv
    lrlab compare --task digits-mlp --epochs 5 --seeds 3 --schedules "constant()" "cosine()"
    lrlab report results/digits-mlp
    lrlab claims --budget small
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from lrlab.cli.claims import cmd_claims
from lrlab.cli.common import EXIT_USAGE, dir_name, interrupted_code, start_command
from lrlab.cli.compare import cmd_compare, cmd_report, cmd_tune_lr
from lrlab.cli.export import cmd_export
from lrlab.cli.parser import build_parser
from lrlab.cli.tools import cmd_find_lr, cmd_plot, cmd_schedules, cmd_tasks
from lrlab.errors import ConfigError

__all__ = ["build_parser", "dir_name", "main"]

#: command name -> handler; a handler returns the exit code
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "schedules": cmd_schedules,
    "plot": cmd_plot,
    "compare": cmd_compare,
    "find-lr": cmd_find_lr,
    "tune-lr": cmd_tune_lr,
    "report": cmd_report,
    "export": cmd_export,
    "claims": cmd_claims,
    "tasks": cmd_tasks,
}


def main(argv: list[str] | None = None) -> int:
    """Run the ``lrlab`` command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    0: done; 2: a usage or config mistake (one line on stderr); 1: a file could not be read or written;
    130: interrupted (SIGINT); 143: terminated (SIGTERM).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or argparse's own usage error (code 2)
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    start_command()
    try:
        return HANDLERS[args.command](args)
    except ConfigError as error:
        print(f"lrlab: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as stop:
        print("interrupted", file=sys.stderr)
        return interrupted_code(stop)
    except BrokenPipeError:  # `lrlab schedules | head`: stop quietly, and let the exit's flush of stdout be quiet
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except OSError as error:
        print(f"lrlab: error: {error}", file=sys.stderr)
        return 1

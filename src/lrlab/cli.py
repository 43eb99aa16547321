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
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib.util
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrlab import __version__
from lrlab.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from lrlab.report import Report
    from lrlab.spec import Param

GRAMMAR = ("grammar: 'a >> b' runs a, then b (time re-based; every piece but the last needs steps=, epochs= or "
           "frac=); 'a * 0.5' scales, 'a * b' multiplies, 'a * plateau(...)' adds ReduceLROnPlateau; durations "
           "are <name>_steps, <name>_epochs or <name>_frac (one of them). Example: "
           "warmup(steps=500) >> cosine(min_lr=1e-5)")
EXIT_USAGE = 2  # a user's mistake, as argparse's own errors
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM


# ------------------------------------------------------------------------------------------------- helpers


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (anything else is a usage error, exit code 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected an integer >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected an integer >= 1")
    return value


def _peak_lr(text: str) -> float | str:
    """``--peak-lr``: a number, or ``auto``."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or 'auto'") from None


def _console(stderr: bool = False) -> Console:
    """A rich console; when not writing to a terminal, 160 columns wide (unless COLUMNS says otherwise)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    wide = stream.isatty() or "COLUMNS" in os.environ
    return Console(stderr=stderr, markup=False, highlight=False, width=None if wide else 160)


def _can_show(text: str) -> bool:
    """Whether stdout's encoding can write ``text`` (block characters need UTF-8 or similar)."""
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _count(n: int, noun: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _dir_name(task: str) -> str:
    """A task name as a directory name (``pkg.mod:fn`` -> ``pkg.mod-fn``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", task).strip("-") or "task"


def _named_schedules(texts: Sequence[str]) -> dict[str, str]:
    """``--schedules`` values -> ``{name: canonical spec}``.

    ``name=spec`` names a schedule when the part before the first ``=`` has no ``(`` (so ``cosine(min_lr=0)``
    is a spec, ``cos=cosine(min_lr=0)`` a named one); otherwise the name is the spec's canonical text.
    """
    from lrlab.spec import parse

    named: dict[str, str] = {}
    for text in texts:
        name, sep, rest = text.partition("=")
        if sep and "(" not in name and not name.strip():
            raise ConfigError(f"--schedules {text!r} is invalid: the name before '=' is empty: "
                              "write name=spec, or the spec alone")
        if sep and "(" not in name:
            name, spec_text = name.strip(), rest
        else:
            name, spec_text = "", text
        spec = str(parse(spec_text))
        name = name or spec
        if name in named:
            raise ConfigError(f"--schedules {text!r} is invalid: a schedule named {name!r} is already given")
        named[name] = spec
    return named


# ---------------------------------------------------------------------------------------------- schedules


def _param_text(p: Param) -> str:
    """``name=default`` for ``lrlab schedules`` (durations: ``every_frac=0.3``, or ``up_*=...`` with no default)."""
    if p.kind != "duration":
        return f"{p.name}={p.default_text()}"
    if isinstance(p.default, tuple) and p.shown is None:
        return p.default_text()
    stem = f"{p.name}_*" if p.name else "steps|epochs|frac"
    return f"{stem}={p.default_text()}"


def cmd_schedules(args: argparse.Namespace) -> int:
    """Print every registered schedule (or the named ones, with each parameter's help)."""
    from rich.table import Table
    from rich.text import Text

    from lrlab.spec import REGISTRY

    console = _console()
    for name in args.names:
        if name not in REGISTRY:
            close = difflib.get_close_matches(name, list(REGISTRY), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"schedule={name!r} is unknown{hint}: expected one of {', '.join(REGISTRY)}")
    if args.names:
        for name in args.names:
            entry = REGISTRY[name]
            table = Table(title=f"{name}: {entry.description}", title_justify="left")
            table.add_column("argument", no_wrap=True)
            table.add_column("default")
            table.add_column("meaning")
            for p in entry.params:
                arg = "|".join(p.names()) if p.kind == "duration" else p.name
                table.add_row(Text(arg), Text(p.default_text()), Text(p.help))
            console.print(table)
    else:
        table = Table(title="Schedules (a spec is name(arg=value, ...); a parameter left out takes its default)",
                      title_justify="left")
        table.add_column("schedule", no_wrap=True, style="bold")
        table.add_column("parameters (name=default)")
        table.add_column("description")
        for entry in REGISTRY.values():
            params = ", ".join(_param_text(p) for p in entry.params)
            table.add_row(Text(entry.name), Text(params), Text(entry.description))
        console.print(table)
    console.print(GRAMMAR, soft_wrap=True)
    console.print("lrlab schedules NAME shows what each parameter means.")
    return 0


# --------------------------------------------------------------------------------------------------- plot


def cmd_plot(args: argparse.Namespace) -> int:
    """Build each spec for ``--steps`` steps; print a preview; write the PNG and, if asked, the CSV."""
    from lrlab.plotting import BLOCKS, Curve, draw_curves, text_preview, write_curves_csv
    from lrlab.spec import Horizon, build

    horizon = Horizon(total_steps=args.steps, steps_per_epoch=args.steps_per_epoch, base_lr=args.base_lr,
                      beta2=args.beta2)
    plans = [build(text, horizon) for text in args.specs]
    curves = [Curve(str(plan.spec), plan.lr_values(), plan.momentum_values()) for plan in plans]
    ascii_only = not _can_show(BLOCKS)
    for curve in curves:
        print(text_preview(curve, ascii_only=ascii_only))
    for plan in plans:
        if plan.plateau is not None:
            print(f"note: {plan.spec}: plateau(...) lowers the LR when a watched metric stops improving; "
                  "there are no metrics here, so the curve is drawn without reductions")
    if args.csv:
        print(f"wrote {write_curves_csv(args.csv, curves)}")
    if args.out:
        path = draw_curves(curves, args.out, log=args.log, steps_per_epoch=args.steps_per_epoch)
        print(f"wrote {path}")
    return 0


# ------------------------------------------------------------------------------------------------ compare


def _config_data(args: argparse.Namespace) -> dict[str, Any]:
    """The config file's mapping (or ``{}``) with the command line's flags written over it."""
    from lrlab.experiment import load_config

    data = load_config(args.config) if args.config else {}
    overrides = {"task": args.task, "epochs": args.epochs, "batch_size": args.batch_size, "seeds": args.seeds,
                 "trainer": args.trainer, "peak_lr": args.peak_lr,
                 "max_members": args.max_members}
    data.update({key: value for key, value in overrides.items() if value is not None})
    if args.schedules:
        data["schedules"] = _named_schedules(args.schedules)
    return data


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it takes Ctrl-C's orderly path (exit 143, not 130)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def cmd_compare(args: argparse.Namespace) -> int:
    """Train every schedule × seed of the experiment not yet in ``--out``, then write and print the report."""
    from lrlab.experiment import (
        check_plan_size,
        open_store,
        parse_config,
        pending_runs,
        plan_size,
        prepare,
        resolve_peak_lr,
        run_experiment,
        set_threads_for_small_models,
    )
    from lrlab.progress import SweepProgress
    from lrlab.workers import WorkerLostError

    config = parse_config(_config_data(args))
    experiment = prepare(config)
    size = plan_size(experiment)
    check_plan_size(size, confirmed=args.yes)
    out = Path(args.out) if args.out else Path("results") / _dir_name(config.task)
    set_threads_for_small_models()
    console = _console()
    store = open_store(out, config, fresh=args.fresh)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if config.peak_lr == "auto":
            console.print("peak LR: auto, running the LR range test (once per results directory)")
            experiment = resolve_peak_lr(experiment, store)
            console.print(f"peak LR: {experiment.peak_lr:.3g}, the optimizer LR every schedule peaks at")
        pending = len(pending_runs(experiment, store))
        if pending == 0:
            console.print(f"all {size.runs} runs are already in {out}: nothing to train")
        else:
            shape = f"{_count(len(config.schedules), 'schedule')} × {_count(len(config.seed_list()), 'seed')}"
            console.print(f"{experiment.task.name}: {shape}, {size.describe()}; {size.runs - pending} already in "
                          f"{out}, {pending} to train", soft_wrap=True)
        start = time.perf_counter()
        try:
            if pending:
                with SweepProgress(size.runs, size.steps_per_run, console=_console(stderr=True)) as progress:
                    trainer = run_experiment(experiment, store, progress.on_start, progress.on_step)
                    progress.finish(size.runs)
                console.print(f"trained {_count(pending, 'run')} in {time.perf_counter() - start:.1f} s; "
                              f"results in {out}\ntrainer: {trainer}", soft_wrap=True)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (_Terminated): the finished runs are stored
            stored = len(store.finished_runs())
            print(f"interrupted: {stored} runs stored; run the same command to resume", file=sys.stderr)
            return EXIT_TERMINATED if isinstance(stop, _Terminated) else EXIT_INTERRUPTED
        except WorkerLostError as error:
            stored = len(store.finished_runs())
            print(f"lrlab: error: {error}; {stored} runs stored; run the same command to resume", file=sys.stderr)
            return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        store.close()
    if not args.no_report:
        from lrlab.report import make_report

        _print_report(make_report(out), console)
    return 0


# ------------------------------------------------------------------------------------------------- find-lr


def cmd_find_lr(args: argparse.Namespace) -> int:
    """The LR range test on a task, over seeds: print the recommendation, write finder.png and finder.json."""
    from lrlab.experiment import set_threads_for_small_models
    from lrlab.finder import describe, find_lr_for_task, plot_finder
    from lrlab.tasks import load_task
    from lrlab.trainer import steps_per_epoch

    task = load_task(args.task)
    set_threads_for_small_models()
    try:
        result = find_lr_for_task(task, seeds=range(args.seeds), min_lr=args.min_lr, max_lr=args.max_lr,
                                  num_steps=args.num_steps, mode=args.mode, batch_size=args.batch_size,
                                  epochs=args.epochs, val=args.val)
    except ValueError as error:  # an argument out of range: name it, as for a config mistake
        raise ConfigError(str(error)) from None
    out = Path(args.out) if args.out else Path("results") / f"{_dir_name(task.name)}-find-lr"
    out.mkdir(parents=True, exist_ok=True)
    figure = plot_finder(result, out / "finder.png")
    (out / "finder.json").write_text(json.dumps(result.to_dict(), indent=1))
    total_steps = (args.epochs or task.epochs) * steps_per_epoch(task, args.batch_size or task.batch_size)
    print(describe(result, total_steps=total_steps))
    print(f"wrote {figure} and {out / 'finder.json'}")
    return 0


# ------------------------------------------------------------------------------------------------- report


_VERDICT_STYLES = {"supported": "green", "contradicted": "red", "tie (within seed noise)": "yellow"}


def _print_report(result: Report, console: Console) -> None:
    """The summary table, one line per claim, the notes and where the report is."""
    from rich.text import Text

    from lrlab.report import summary_table

    console.print(summary_table(result.rows))
    console.print("claims:")
    width = max((len(c.verdict) for c in result.claims), default=0)
    for claim in result.claims:
        style = _VERDICT_STYLES.get(claim.verdict, "dim")
        console.print(Text.assemble("  ", (claim.verdict.ljust(width), style), "  ", claim.statement), soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)
    if result.recommendation is not None:
        console.print(f"which schedule? {result.recommendation.text}", soft_wrap=True)
    console.print(f"report: {result.html}", soft_wrap=True)


def cmd_report(args: argparse.Namespace) -> int:
    """Rewrite the report of a results directory and print its table and paths."""
    from lrlab.report import make_report

    console = _console()
    result = make_report(args.directory)
    _print_report(result, console)
    console.print(f"summary: {result.csv}", soft_wrap=True)
    if result.figures:
        folder = Path(next(iter(result.figures.values()))).parent
        console.print(f"figures: {folder} ({', '.join(result.figures)})", soft_wrap=True)
    return 0


# -------------------------------------------------------------------------------------------------- tasks


def _first_line(doc: str | None) -> str:
    """A docstring's first line as plain text: no ``literal`` name prefix, no :role:`x` markup."""
    line = doc.strip().splitlines()[0] if doc and doc.strip() else ""
    line = re.sub(r"^(The )?``[^`]+``[^:]*:\s*", "", line)  # "``name`` (the default task): a..." -> "a..."
    line = re.sub(r":\w+:`~?([^`]+)`", r"\1", line)
    return line.replace("``", "")


def _task_docs(target: str) -> tuple[str, str]:
    """First lines of a task's module docstring and of its function's, read from the source without importing it
    (no torch, no data)."""
    module, _, function = target.partition(":")
    try:
        found = importlib.util.find_spec(module)
        origin = found.origin if found is not None else None
        tree = ast.parse(Path(origin).read_text()) if origin else None
    except (ImportError, OSError, SyntaxError, ValueError):
        tree = None
    if tree is None:
        return "", ""
    func = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function), None)
    return _first_line(ast.get_docstring(tree)), _first_line(ast.get_docstring(func) if func else None)


def cmd_tasks(args: argparse.Namespace) -> int:
    """Print the built-in task names, each with the first lines of its module's and its function's docstrings."""
    from lrlab.tasks import DEFAULT_TASK, TASKS

    labels = {name: name + (" (default)" if name == DEFAULT_TASK else "") for name in TASKS}
    width = max(len(label) for label in labels.values())
    for name, target in TASKS.items():
        about, detail = _task_docs(target)
        print(f"{labels[name].ljust(width)}  {about}")
        if detail:
            print(f"{'':{width}}  {detail}")
    print("or your own: --task package.module:function, a function returning an lrlab.tasks.Task")
    return 0


# --------------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="lrlab", formatter_class=raw,
        description="A learning-rate laboratory: exact, composable schedules and schedule comparisons.",
        epilog="examples:\n"
               "  lrlab schedules\n"
               "  lrlab plot 'warmup(steps=100) >> cosine()' 'onecycle()' --steps 1000\n"
               "  lrlab compare --task digits-mlp --epochs 5 --seeds 3 --schedules 'constant()' 'cosine()'\n"
               "  lrlab report results/digits-mlp")
    parser.add_argument("--version", action="version", version=f"lrlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("schedules", help="list the schedules a spec can use, with their parameters",
                            description="List the schedules a spec can use, their parameters and defaults.")
    p.add_argument("names", nargs="*", metavar="NAME", help="show these schedules' parameters in detail")

    p = commands.add_parser(
        "plot", help="plot schedules' LR (and momentum) against step", formatter_class=raw,
        description="Build each spec for --steps steps; print a preview, write a PNG (--out) and a CSV (--csv).\n"
                    "LR parameters default to --base-lr, so the default 1 plots multipliers of the optimizer's LR.",
        epilog="example:\n  lrlab plot 'warmup(frac=0.05) >> cosine()' 'onecycle()' --steps 3000 "
               "--steps-per-epoch 100 --base-lr 0.1 --csv lr.csv")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="a schedule spec, e.g. 'warmup(steps=100) >> cosine()'")
    p.add_argument("--steps", type=_positive_int, required=True, metavar="N", help="optimizer steps in the whole run")
    p.add_argument("--steps-per-epoch", type=_positive_int, metavar="M", help="needed by *_epochs durations")
    p.add_argument("--base-lr", type=float, default=1.0, metavar="LR",
                   help="the optimizer's LR; LR parameters default to it (default: 1, relative values)")
    p.add_argument("--beta2", type=float, metavar="B", help="Adam's beta2, for warmup(steps=auto)")
    p.add_argument("--out", default="lr.png", metavar="FILE.png", help="the figure to write (default: lr.png)")
    p.add_argument("--csv", metavar="FILE.csv", help="also write every value: step,<spec>,... (exact floats)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--log", dest="log", action="store_const", const=True, default=None,
                       help="log LR axis (default: log when every LR is > 0 and they span 10x or more)")
    scale.add_argument("--linear", dest="log", action="store_const", const=False, help="linear LR axis")

    p = commands.add_parser(
        "compare", help="train a task under several schedules and seeds, then report", formatter_class=raw,
        description="Train every schedule x seed of an experiment (skipping runs already in --out), then write\n"
                    "report.html, summary.csv and figures there. Without --config or flags: the default study\n"
                    "(6 schedules x 5 seeds on mnist1d-mlp). Ctrl-C or SIGTERM keeps the finished runs; run again\n"
                    "to resume.",
        epilog="examples:\n  lrlab compare\n  lrlab compare --config examples/mnist1d-cnn.yaml\n"
               "  lrlab compare --task digits-mlp --seeds 3 --schedules 'constant()' 'warm=warmup(epochs=1) >> "
               "cosine()'")
    p.add_argument("--config", metavar="FILE.yaml", help="experiment file (flags below override its keys)")
    p.add_argument("--task", help="a built-in task (lrlab tasks) or package.module:function")
    p.add_argument("--schedules", nargs="+", metavar="SPEC",
                   help="specs to compare; 'name=spec' names one (default name: the spec's text)")
    p.add_argument("--seeds", type=_positive_int, metavar="N", help="seeds 0..N-1 per schedule")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help="epochs per run (default: the task's)")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="examples per step (default: the task's)")
    p.add_argument("--out", metavar="DIR", help="results directory (default: results/<task>)")
    p.add_argument("--trainer", choices=["auto", "sequential", "vectorized"],
                   help="auto (default): vectorized (all runs as one batched model) where the task's model allows "
                        "and pays, else sequential, saying why")
    p.add_argument("--max-members", type=_positive_int, metavar="K",
                   help="at most K runs per vectorized group (bounds memory)")
    p.add_argument("--peak-lr", type=_peak_lr, metavar="LR|auto",
                   help="the optimizer's LR, which schedules peak at; auto: the LR range test's pick (lrlab find-lr)")
    p.add_argument("--fresh", action="store_true", help="delete the results already in --out first")
    p.add_argument("--yes", action="store_true",
                   help="confirm a sweep of more than 10,000,000 steps (all runs together), refused without it")
    p.add_argument("--no-report", action="store_true", help="train only; `lrlab report DIR` writes it later")

    p = commands.add_parser(
        "find-lr", help="the LR range test: which peak LR to use", formatter_class=raw,
        description="Sweep the LR from --min-lr to --max-lr on fresh models of a task (one sweep per seed), then\n"
                    "suggest a peak LR (steepest descent, valley, minimum/10, combined over seeds) with an interval.",
        epilog="example:\n  lrlab find-lr --task mnist1d-cnn --seeds 3")
    p.add_argument("--task", default="mnist1d-mlp", help="a built-in task (lrlab tasks) or package.module:function")
    p.add_argument("--seeds", type=_positive_int, default=3, metavar="N", help="sweeps with seeds 0..N-1 (default 3)")
    p.add_argument("--min-lr", type=float, default=1e-6, metavar="LR", help="first LR of the sweep (default 1e-6)")
    p.add_argument("--max-lr", type=float, default=10.0, metavar="LR", help="last LR of the sweep (default 10)")
    p.add_argument("--num-steps", type=_positive_int, metavar="N",
                   help="updates per sweep (default: 30%% of the run's updates, at least 100)")
    p.add_argument("--mode", choices=["exp", "linear"], default="exp", help="LR spacing (default exp)")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="examples per update (default: the task's)")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help="the run's epochs, for the default --num-steps")
    p.add_argument("--val", action="store_true", help="record the validation loss instead of the training loss")
    p.add_argument("--out", metavar="DIR", help="where finder.png and finder.json go (default results/<task>-find-lr)")

    p = commands.add_parser("report", help="(re)write the report of a results directory",
                            description="Write report.html, summary.csv and figures from DIR's store; print the "
                                        "table.")
    p.add_argument("directory", metavar="DIR", help="a directory written by lrlab compare")

    commands.add_parser("tasks", help="list the built-in tasks", description="List the built-in tasks.")
    return parser


#: command name -> handler; a handler returns the exit code
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "schedules": cmd_schedules,
    "plot": cmd_plot,
    "compare": cmd_compare,
    "find-lr": cmd_find_lr,
    "report": cmd_report,
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
    try:
        return HANDLERS[args.command](args)
    except ConfigError as error:
        print(f"lrlab: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as stop:
        print("interrupted", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(stop, _Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:  # `lrlab schedules | head`: stop quietly, and let the exit's flush of stdout be quiet
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except OSError as error:
        print(f"lrlab: error: {error}", file=sys.stderr)
        return 1

"""The commands that look at schedules and tasks (``schedules``, ``plot``, ``tasks``) and the LR range test."""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib.util
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from lrlab.cli.common import can_show, console_for, dir_name
from lrlab.errors import ConfigError

if TYPE_CHECKING:
    from lrlab.spec import Param

GRAMMAR = ("grammar: 'a >> b' runs a, then b (time re-based; every piece but the last needs steps=, epochs= or "
           "frac=); 'a * 0.5' scales, 'a * b' multiplies, 'a * plateau(...)' adds ReduceLROnPlateau; durations "
           "are <name>_steps, <name>_epochs or <name>_frac (one of them). Example: "
           "warmup(steps=500) >> cosine(min_lr=1e-5)")


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

    console = console_for()
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
    ascii_only = not can_show(BLOCKS)
    for curve in curves:
        print(text_preview(curve, ascii_only=ascii_only))
    for plan in plans:
        if plan.plateau is not None:
            print(f"note: {plan.spec}: plateau(...) lowers the LR when a watched metric stops improving; "
                  "there are no metrics here, so the curve is drawn without reductions")
        elif plan.controller is not None:
            print(f"note: {plan.spec}: greedy(...) raises or lowers the LR as a watched metric improves or not; "
                  "there are no metrics here, so the curve is drawn without changes")
    if args.csv:
        print(f"wrote {write_curves_csv(args.csv, curves)}")
    if args.out:
        path = draw_curves(curves, args.out, log=args.log, steps_per_epoch=args.steps_per_epoch)
        print(f"wrote {path}")
    return 0


# ------------------------------------------------------------------------------------------------- find-lr


def cmd_find_lr(args: argparse.Namespace) -> int:
    """The LR range test on a task, over seeds: print the recommendation, write finder.png and finder.json."""
    from lrlab.devices import resolve_device
    from lrlab.finder import describe, find_lr_for_task, plot_finder
    from lrlab.runner import set_threads_for_small_models
    from lrlab.runs import steps_per_epoch
    from lrlab.tasks import load_task

    device = resolve_device(args.device or "auto")
    task = load_task(args.task)
    set_threads_for_small_models()
    try:
        result = find_lr_for_task(task, seeds=range(args.seeds), min_lr=args.min_lr, max_lr=args.max_lr,
                                  num_steps=args.num_steps, mode=args.mode, batch_size=args.batch_size,
                                  epochs=args.epochs, val=args.val, device=device,
                                  precision=args.precision or "fp32")
    except ValueError as error:  # an argument out of range: name it, as for a config mistake
        raise ConfigError(str(error)) from None
    out = Path(args.out) if args.out else Path("results") / f"{dir_name(task.name)}-find-lr"
    out.mkdir(parents=True, exist_ok=True)
    figure = plot_finder(result, out / "finder.png")
    (out / "finder.json").write_text(json.dumps(result.to_dict(), indent=1))
    total_steps = (args.epochs or task.epochs) * steps_per_epoch(task, args.batch_size or task.batch_size)
    print(describe(result, total_steps=total_steps))
    print(f"wrote {figure} and {out / 'finder.json'}")
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
    print("or your own: --task package.module:function, a function returning an lrlab.tasks.Task (data in memory) "
          "or an lrlab.tasks.LoaderTask (your loaders, optimizer and step; docs/own-training.md)")
    return 0



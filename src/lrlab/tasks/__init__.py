"""Built-in tasks and the loader for a user's own (``package.module:function`` returning a :class:`Task`, data in
memory, or a :class:`LoaderTask`, your own loaders, optimizer and step).

>>> sorted(TASKS)[:2]
['charlm-transformer', 'charlm-transformer-pre']
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

from lrlab.errors import ConfigError

if TYPE_CHECKING:
    from lrlab.tasks.base import Task
    from lrlab.tasks.loop import LoaderTask

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "LoaderTask",
    "OptimizerDefaults",
    "Task",
    "accuracy",
    "cross_entropy",
    "load_task",
    "make_optimizer",
    "tensors_sha256",
]

#: name a user types -> the ``module:function`` that builds it (modules import lazily: the CLI stays fast)
TASKS: dict[str, str] = {
    "mnist1d-mlp": "lrlab.tasks.mnist1d_mlp:make_task",
    "mnist1d-cnn": "lrlab.tasks.mnist1d_cnn:make_task",
    "digits-mlp": "lrlab.tasks.digits_mlp:make_task",
    "charlm-transformer": "lrlab.tasks.charlm_transformer:make_task",
    "charlm-transformer-pre": "lrlab.tasks.charlm_transformer:make_pre_ln_task",
}

DEFAULT_TASK = "mnist1d-mlp"

_BASE_NAMES = ("OptimizerDefaults", "Task", "accuracy", "cross_entropy", "make_optimizer", "tensors_sha256")


def __getattr__(name: str) -> Any:
    # the task protocol needs torch; listing task names (the CLI) should not import it
    if name in _BASE_NAMES:
        return getattr(importlib.import_module("lrlab.tasks.base"), name)
    if name == "LoaderTask":
        return importlib.import_module("lrlab.tasks.loop").LoaderTask
    raise AttributeError(f"module 'lrlab.tasks' has no attribute {name!r}")


def load_task(name: str) -> Task | LoaderTask:
    """The task called ``name``: a built-in (see :data:`TASKS`) or ``package.module:function``.

    A user's function takes no arguments and returns a :class:`Task` (see ``examples/my_task.py``) or a
    :class:`LoaderTask` (``examples/loader_task.py``); the current
    directory is importable, as with ``python -m``. Raises
    :class:`ConfigError` with one line for an unknown name, a module that does not import or a function that
    does not return a Task.
    """
    entry = TASKS.get(name)
    if entry is None:
        if ":" not in name:
            close = difflib.get_close_matches(name, TASKS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"task={name!r} is invalid{hint}: expected one of {sorted(TASKS)} "
                              "or package.module:function")
        entry = name
    module_name, _, function_name = entry.partition(":")
    if entry is name and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a user's module next to where lrlab runs, as with `python -m`
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"task={name!r} is invalid: cannot import module {module_name!r} ({error})") from None
    make = getattr(module, function_name, None)
    if not callable(make):
        raise ConfigError(f"task={name!r} is invalid: module {module_name!r} has no function {function_name!r}")
    task = make()
    from lrlab.tasks.base import Task
    from lrlab.tasks.loop import LoaderTask

    if not isinstance(task, Task | LoaderTask):
        raise ConfigError(f"task={name!r} is invalid: {entry} returned {type(task).__name__}, expected "
                          "lrlab.tasks.Task or lrlab.tasks.LoaderTask")
    return task

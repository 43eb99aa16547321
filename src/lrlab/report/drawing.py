"""Drawing a study's figures (:mod:`lrlab.report.figures`), each once, several at a time where the machine allows.

On Linux with more than one CPU the figures are drawn in processes forked from this one, one per CPU: forking
shares the imported matplotlib and the loaded study at no cost (nothing is pickled to a worker but a figure's
name), and each figure comes out with the same pixels as when drawn one by one. Figures that need only the study
start at once, so they are drawn while the caller computes the summary rows that order the ``final`` figure.

Stopping, as for :mod:`lrlab.workers`: a worker ignores Ctrl-C (the parent decides; it stops once the figures in
flight are drawn) and never outlives its parent.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from lrlab.children import become_child_of
from lrlab.plotting import any_script
from lrlab.report.data import Study
from lrlab.report.figures import plot_final, plot_lr, plot_lr_finder, plot_train_loss, plot_val_metric
from lrlab.report.sensitivity import plot_sensitivity
from lrlab.report.summary import summary_rows
from lrlab.tune import TuneResult


@any_script()
def _draw(name: str, rows: Sequence[dict[str, Any]] | None = None) -> Path:
    """Draw figure ``name`` of the study being drawn (:class:`FigureDrawing`; a worker has the copy it was forked
    with); ``rows`` order the ``final`` figure."""
    study, out = _drawing
    path = out / f"{name}.png"
    if name == "lr":
        return plot_lr(study, path)
    if name == "train_loss":
        return plot_train_loss(study, path)
    if name in ("val_loss", "val_acc"):
        return plot_val_metric(study, name, path)
    if name == "final":
        return plot_final(study, rows, path)
    if name == "lr_sensitivity":
        return plot_sensitivity({n: TuneResult.from_dict(grid) for n, grid in (study.tuned or {}).items()}, path)
    return plot_lr_finder(study, path)


_drawing: tuple[Study, Path]  # the study and the folder _draw draws into; set while a FigureDrawing is open


def _workers(figures: int) -> int:
    """Processes to draw ``figures`` figures with: one per CPU, forked, on Linux; 1 (in this process) elsewhere.

    Forking copies the imported matplotlib and the loaded study for free; it is not done where it is unsafe
    (macOS) or where other threads are running (a fork copies only the calling thread).
    """
    if sys.platform != "linux" or threading.active_count() > 1:
        return 1
    return max(1, min(figures, len(os.sched_getaffinity(0))))


class FigureDrawing:
    """A study's figures, each drawn once: those that need only the study start when it opens, ``final`` (ordered
    by the summary rows) when :meth:`finish` gets the rows.

    The drawing goes on while this process does (see the module docstring); one drawing at a time per process.
    Example::

        with FigureDrawing(study, directory) as drawing:
            rows = summary_rows(study)
            figures = drawing.finish(rows)
    """

    def __init__(self, study: Study, directory: str | Path) -> None:
        global _drawing
        self.names = ["lr", "train_loss", "val_loss", *(["val_acc"] if study.has_accuracy else []), "final"]
        if isinstance(study.peak_lr, dict) and "finder" in study.peak_lr:  # compare --peak-lr auto
            self.names.append("lr_finder")
        if study.tuned:  # compare --peak-lr tune
            self.names.append("lr_sensitivity")
        _drawing = (study, Path(directory) / "figures")
        workers = _workers(len(self.names))
        self._pool = None if workers == 1 else ProcessPoolExecutor(
            workers, mp_context=get_context("fork"), initializer=become_child_of, initargs=(os.getpid(),))
        self._started = {} if self._pool is None else \
            {name: self._pool.submit(_draw, name) for name in self.names if name != "final"}

    def finish(self, rows: Sequence[dict[str, Any]]) -> dict[str, Path]:
        """Draw what is left and wait for the rest; return ``name -> path`` in display order."""
        if self._pool is None:
            return {name: _draw(name, rows) for name in self.names}
        final = self._pool.submit(_draw, "final", rows)
        return {name: (final if name == "final" else self._started[name]).result() for name in self.names}

    def __enter__(self) -> FigureDrawing:
        return self

    def __exit__(self, *exc: object) -> None:
        global _drawing
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        del _drawing


def make_figures(study: Study, directory: str | Path, rows: Sequence[dict[str, Any]] | None = None) -> dict[str, Path]:
    """Write every figure to ``directory/figures/NAME.png``; return ``name -> path`` in display order.

    Names: ``lr``, ``train_loss``, ``val_loss``, ``val_acc`` (classification tasks only), ``final`` and
    ``lr_finder`` (when the peak LR came from the LR range test).
    ``rows`` are the summary rows (computed when not given) that order the ``final`` figure.
    """
    with FigureDrawing(study, directory) as drawing:
        return drawing.finish(summary_rows(study) if rows is None else rows)

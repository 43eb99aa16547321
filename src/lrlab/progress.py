"""A live progress display for a sweep: runs done / total, the current run, step rate and ETA (rich)."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class SweepProgress:
    """Two bars: the sweep (runs) and the current run (steps, with its rate). Use as a context manager.

    ``steps_per_run`` sizes the run bar; ``on_start``/``on_step`` are the runner's hooks. The bars are redrawn
    from those hooks (at most 10 times a second), not by rich's refresh thread: a Ctrl-C or SIGTERM raised in
    the main thread while it holds the display's lock would leave that thread blocked on it, and the exit that
    joins it hung for good.
    """

    def __init__(self, total_runs: int, steps_per_run: int, console: Console | None = None) -> None:
        self.steps_per_run = steps_per_run
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False, auto_refresh=False,
        )
        self._sweep: TaskID = self._progress.add_task("runs", total=total_runs, rate="")
        self._run: TaskID | None = None
        self._rate_shown = 0.0
        self._drawn = 0.0

    def __enter__(self) -> SweepProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def on_start(self, label: str, done: int, total: int) -> None:
        """A run (or a group of runs trained at once) starts: move the sweep bar, reset the run bar."""
        self._progress.update(self._sweep, completed=done)
        if self._run is None:
            self._run = self._progress.add_task(label, total=self.steps_per_run, rate="")
        self._progress.reset(self._run, description=label, total=self.steps_per_run, rate="")
        self._progress.refresh()

    def on_step(self, step: int) -> None:
        """The current run (or group of runs) has done ``step`` optimizer steps."""
        if self._run is None:
            return
        self._progress.update(self._run, completed=step)
        now = time.monotonic()
        if now - self._rate_shown >= 0.5:  # the rate's text, twice a second
            self._rate_shown = now
            speed = self._progress.tasks[self._run].speed
            self._progress.update(self._run, rate=f"{speed:,.0f} steps/s" if speed else "")
        if now - self._drawn >= 0.1:
            self._drawn = now
            self._progress.refresh()

    def finish(self, total: int) -> None:
        """Every run is done."""
        self._progress.update(self._sweep, completed=total)

"""The sweep's progress bars: drawn from the runner's hooks, with no refresh thread an interrupt could hang."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from lrlab.progress import SweepProgress


def test_the_bars_are_drawn_from_the_hooks_without_a_refresh_thread() -> None:
    out = io.StringIO()
    threads = threading.active_count()
    with SweepProgress(2, 100, console=Console(file=out, force_terminal=True, width=100)) as progress:
        assert threading.active_count() == threads  # rich's auto-refresh thread would be one more
        progress.on_start("lr=0.1 seed 0", 0, 2)
        assert "lr=0.1 seed 0" in out.getvalue()  # drawn at once, not on a timer
        progress.on_step(50)
        progress.finish(2)
    assert " 50/100" in out.getvalue() and "2/2" in out.getvalue()

"""The results store: one SQLite file (``lrlab.sqlite``, WAL mode) per results directory.

It holds the experiment's config, one row per run (schedule name, spec, seed, status, timings, environment)
and the run's metrics: per step (LR, momentum, training loss) and per epoch (validation loss/accuracy).
A run's metrics and its ``done``/``diverged`` status are written in one transaction, so a killed sweep
loses at most the run in flight, and a re-run skips every finished run.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STORE_NAME = "lrlab.sqlite"
FINISHED = ("done", "diverged")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiment (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    schedule TEXT NOT NULL,
    spec TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    diverged_step INTEGER,
    wall_s REAL,
    env TEXT NOT NULL,
    started REAL,
    finished REAL,
    UNIQUE (schedule, seed)
);
CREATE TABLE IF NOT EXISTS step_metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    lr REAL NOT NULL,
    momentum REAL,
    train_loss REAL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS epoch_metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    step INTEGER NOT NULL,
    lr REAL NOT NULL,
    train_loss REAL,
    val_loss REAL,
    val_acc REAL,
    PRIMARY KEY (run_id, epoch)
);
"""


@dataclass(frozen=True)
class RunRecord:
    """One run as stored: its identity, status and timing (``wall_s`` in seconds)."""

    id: int
    schedule: str
    spec: str
    seed: int
    status: str
    diverged_step: int | None
    wall_s: float | None
    env: dict[str, Any]


@dataclass
class RunMetrics:
    """What a trainer produced for one run: per-step and per-epoch series (steps count optimizer updates)."""

    lr: list[float] = field(default_factory=list)
    momentum: list[float | None] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    epochs: list[dict[str, float | None]] = field(default_factory=list)  # epoch, step, lr, train/val loss, val_acc
    diverged_step: int | None = None
    wall_s: float = 0.0


class Store:
    """The SQLite store of one results directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / STORE_NAME
        self._conn = sqlite3.connect(self.path, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection (the file stays)."""
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._conn:
            yield self._conn

    # ---- experiment ---------------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        """Store an experiment-level value (JSON-serialisable), e.g. ``config``."""
        with self._transaction() as c:
            c.execute("INSERT OR REPLACE INTO experiment (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default: Any = None) -> Any:
        """An experiment-level value stored with :meth:`set_meta`, or ``default``."""
        row = self._conn.execute("SELECT value FROM experiment WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # ---- runs ---------------------------------------------------------------------------------------------
    def runs(self) -> list[RunRecord]:
        """Every run, in the order they were first started."""
        rows = self._conn.execute(
            "SELECT id, schedule, spec, seed, status, diverged_step, wall_s, env FROM runs ORDER BY id").fetchall()
        return [RunRecord(*row[:7], env=json.loads(row[7])) for row in rows]

    def finished_runs(self) -> dict[tuple[str, int], str]:
        """``(schedule, seed) -> spec`` of every run already done or diverged."""
        rows = self._conn.execute(
            f"SELECT schedule, seed, spec FROM runs WHERE status IN ({','.join('?' * len(FINISHED))})", FINISHED)
        return {(name, seed): spec for name, seed, spec in rows}

    def start_run(self, schedule: str, spec: str, seed: int, env: dict[str, Any]) -> int:
        """Mark a run as running and return its id; an interrupted earlier attempt is wiped first."""
        with self._transaction() as c:
            row = c.execute("SELECT id FROM runs WHERE schedule = ? AND seed = ?", (schedule, seed)).fetchone()
            if row is not None:
                c.execute("DELETE FROM step_metrics WHERE run_id = ?", row)
                c.execute("DELETE FROM epoch_metrics WHERE run_id = ?", row)
                c.execute("UPDATE runs SET spec = ?, status = 'running', diverged_step = NULL, wall_s = NULL, "
                          "env = ?, started = ?, finished = NULL WHERE id = ?",
                          (spec, json.dumps(env), time.time(), row[0]))
                return int(row[0])
            cur = c.execute("INSERT INTO runs (schedule, spec, seed, status, env, started) VALUES (?, ?, ?, ?, ?, ?)",
                            (schedule, spec, seed, "running", json.dumps(env), time.time()))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, metrics: RunMetrics) -> None:
        """Write a run's metrics and its final status (``done`` or ``diverged``) in one transaction."""
        status = "done" if metrics.diverged_step is None else "diverged"
        steps = [(run_id, t, lr, m, loss)
                 for t, (lr, m, loss) in enumerate(zip(metrics.lr, metrics.momentum, metrics.train_loss, strict=True))]
        epochs = [(run_id, e["epoch"], e["step"], e["lr"], e.get("train_loss"), e.get("val_loss"), e.get("val_acc"))
                  for e in metrics.epochs]
        with self._transaction() as c:
            c.executemany("INSERT INTO step_metrics VALUES (?, ?, ?, ?, ?)", steps)
            c.executemany("INSERT INTO epoch_metrics VALUES (?, ?, ?, ?, ?, ?, ?)", epochs)
            c.execute("UPDATE runs SET status = ?, diverged_step = ?, wall_s = ?, finished = ? WHERE id = ?",
                      (status, metrics.diverged_step, metrics.wall_s, time.time(), run_id))

    # ---- metrics ------------------------------------------------------------------------------------------
    def step_metrics(self, run_id: int) -> dict[str, list[float]]:
        """Per-step series of a run: ``step``, ``lr``, ``momentum``, ``train_loss`` (lists of equal length)."""
        rows = self._conn.execute(
            "SELECT step, lr, momentum, train_loss FROM step_metrics WHERE run_id = ? ORDER BY step", (run_id,))
        return _columns(("step", "lr", "momentum", "train_loss"), rows.fetchall())

    def epoch_metrics(self, run_id: int) -> dict[str, list[float]]:
        """Per-epoch series of a run: ``epoch``, ``step``, ``lr``, ``train_loss``, ``val_loss``, ``val_acc``."""
        rows = self._conn.execute(
            "SELECT epoch, step, lr, train_loss, val_loss, val_acc FROM epoch_metrics WHERE run_id = ? ORDER BY epoch",
            (run_id,))
        return _columns(("epoch", "step", "lr", "train_loss", "val_loss", "val_acc"), rows.fetchall())


def _columns(names: Sequence[str], rows: list[tuple]) -> dict[str, list]:
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}

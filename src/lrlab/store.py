"""The results store: one SQLite file (``lrlab.sqlite``, WAL mode) per results directory.

It holds the experiment's config, one row per run (schedule name, spec, seed, status, timings, environment)
and the run's metrics: per step (LR, momentum, training loss) and per epoch (validation loss/accuracy).
A run's metrics and its ``done``/``diverged`` status are written in one transaction, so a killed sweep
loses at most the run in flight, and a re-run skips every finished run.

One process writes a results directory at a time: a writer holds :class:`WriterLock` (an exclusive ``flock`` on
``.lrlab.lock``) for as long as its store is open; a second writer is refused with one line naming the first
one's pid. Readers (``lrlab report``) open the store read-only and need no lock. A store is data: reading one
never imports or runs anything.

Every SQLite failure (a damaged or foreign file, a full disk, a read-only directory) becomes a
:class:`StoreError`: one line naming the store, never a traceback.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from lrlab.errors import ConfigError
from lrlab.runs import RunMetrics

STORE_NAME = "lrlab.sqlite"
LOCK_NAME = ".lrlab.lock"
FINISHED = ("done", "diverged")
#: the layout written by this lrlab (``PRAGMA user_version``); 0 is a store written before versions existed
SCHEMA_VERSION = 1

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


class StoreError(OSError):
    """The store cannot be read or written (damaged, foreign, newer, full disk, read-only); one line."""


class WriterLock:
    """An exclusive lock on a results directory, held by the one process that writes it (``flock``).

    The lock is released when :meth:`release` is called or the process (and any process it forked) ends, so a
    killed writer never leaves a stale lock behind.
    """

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        self._fd: int | None = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode(errors="replace").strip() or "unknown"
            self.release()
            raise ConfigError(f"out={str(directory)!r} is in use by another lrlab process (pid {holder}): wait for "
                              "it to finish, or use another --out") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        """Give the directory back (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextmanager
def _store_errors(path: Path) -> Iterator[None]:
    """SQLite's exceptions as one :class:`StoreError` line naming the store."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        reason = str(exc)
        if "not a database" in reason or "malformed" in reason:
            reason += ": the file is damaged or not an lrlab store; move it away, or start over with --fresh"
        raise StoreError(f"store={str(path)!r} failed: {reason}") from None


class Store:
    """The SQLite store of one results directory.

    ``readonly=True`` opens an existing store for reading (``lrlab report``): no lock, no schema written.
    Otherwise the directory and the store are created if missing, and the caller should hold the directory's
    :class:`WriterLock` (``open_store`` in :mod:`lrlab.runner` takes it and :meth:`close` releases it).
    """

    def __init__(self, directory: str | Path, readonly: bool = False, lock: WriterLock | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STORE_NAME
        self._lock = lock
        with _store_errors(self.path):
            if readonly:
                self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
            else:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(self.path, timeout=30.0)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                self._conn.close()
                raise StoreError(f"store={str(self.path)!r} was written by a newer lrlab (schema {version}; this "
                                 f"lrlab reads up to {SCHEMA_VERSION}): upgrade lrlab, or use another --out")
            if not readonly:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.executescript(_SCHEMA)
                self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the connection (the file stays) and release the directory's lock, if held."""
        self._conn.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with _store_errors(self.path), self._conn:
            yield self._conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """All rows of a read, with SQLite's failures as :class:`StoreError`."""
        with _store_errors(self.path):
            return self._conn.execute(sql, params).fetchall()

    # ---- experiment ---------------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        """Store an experiment-level value (JSON-serialisable), e.g. ``config``."""
        with self._transaction() as c:
            c.execute("INSERT OR REPLACE INTO experiment (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def claim_meta(self, key: str, value: Any) -> Any:
        """The value stored under ``key``; if there is none, store ``value`` and return it (one transaction)."""
        with self._transaction() as c:
            row = c.execute("SELECT value FROM experiment WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return json.loads(row[0])
            c.execute("INSERT INTO experiment (key, value) VALUES (?, ?)", (key, json.dumps(value)))
            return value

    def meta(self, key: str, default: Any = None) -> Any:
        """An experiment-level value stored with :meth:`set_meta`, or ``default``."""
        rows = self._query("SELECT value FROM experiment WHERE key = ?", (key,))
        return default if not rows else json.loads(rows[0][0])

    # ---- runs ---------------------------------------------------------------------------------------------
    def runs(self) -> list[RunRecord]:
        """Every run, in the order they were first started."""
        rows = self._query("SELECT id, schedule, spec, seed, status, diverged_step, wall_s, env FROM runs ORDER BY id")
        return [RunRecord(*row[:7], env=json.loads(row[7])) for row in rows]

    def finished_runs(self) -> dict[tuple[str, int], str]:
        """``(schedule, seed) -> spec`` of every run already done or diverged."""
        rows = self._query(f"SELECT schedule, seed, spec FROM runs WHERE status IN ({','.join('?' * len(FINISHED))})",
                           FINISHED)
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
        rows = self._query("SELECT step, lr, momentum, train_loss FROM step_metrics WHERE run_id = ? ORDER BY step",
                           (run_id,))
        return _columns(("step", "lr", "momentum", "train_loss"), rows)

    def epoch_metrics(self, run_id: int) -> dict[str, list[float]]:
        """Per-epoch series of a run: ``epoch``, ``step``, ``lr``, ``train_loss``, ``val_loss``, ``val_acc``."""
        rows = self._query(
            "SELECT epoch, step, lr, train_loss, val_loss, val_acc FROM epoch_metrics WHERE run_id = ? ORDER BY epoch",
            (run_id,))
        return _columns(("epoch", "step", "lr", "train_loss", "val_loss", "val_acc"), rows)


def _columns(names: Sequence[str], rows: list[tuple]) -> dict[str, list]:
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}

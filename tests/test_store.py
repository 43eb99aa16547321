"""The SQLite store: transactional run records, resume bookkeeping, metrics read back as written."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lrlab.errors import ConfigError
from lrlab.runs import RunMetrics
from lrlab.store import SCHEMA_VERSION, STORE_NAME, Store, StoreError, WriterLock


def metrics(n_steps: int = 4, diverged: int | None = None) -> RunMetrics:
    return RunMetrics(lr=[0.1] * n_steps, momentum=[0.9] * n_steps, train_loss=[1.0 / (t + 1) for t in range(n_steps)],
                      epochs=[{"epoch": 1, "step": n_steps, "lr": 0.1, "train_loss": 0.5, "val_loss": 0.6,
                               "val_acc": 0.7}], diverged_step=diverged, wall_s=1.5)


def test_store_uses_wal_and_round_trips_metrics(tmp_path):
    store = Store(tmp_path)
    assert store.path == tmp_path / STORE_NAME
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    store.set_meta("config", {"task": "digits-mlp", "seeds": [0, 1]})
    run_id = store.start_run("cosine", "cosine()", 0, {"torch": "x"})
    store.finish_run(run_id, metrics())
    assert store.meta("config") == {"task": "digits-mlp", "seeds": [0, 1]}
    [run] = store.runs()
    assert (run.schedule, run.spec, run.seed, run.status, run.wall_s, run.env) == (
        "cosine", "cosine()", 0, "done", 1.5, {"torch": "x"})
    assert store.step_metrics(run_id)["train_loss"] == [1.0, 0.5, 1 / 3, 0.25]
    assert store.epoch_metrics(run_id)["val_acc"] == [0.7]
    assert store.finished_runs() == {("cosine", 0): "cosine()"}


def test_diverged_run_is_finished_with_its_step(tmp_path):
    store = Store(tmp_path)
    run_id = store.start_run("hot", "constant()", 3, {})
    store.finish_run(run_id, metrics(diverged=2))
    [run] = store.runs()
    assert (run.status, run.diverged_step) == ("diverged", 2)
    assert ("hot", 3) in store.finished_runs()


def test_interrupted_run_is_redone_without_duplicates(tmp_path):
    store = Store(tmp_path)
    first = store.start_run("step", "step()", 0, {})
    # the process dies here: the run stays 'running' and is not finished
    store.close()
    store = Store(tmp_path)
    assert store.finished_runs() == {}
    again = store.start_run("step", "step()", 0, {})
    assert again == first
    store.finish_run(again, metrics())
    assert len(store.runs()) == 1
    assert len(store.step_metrics(again)["step"]) == 4


# ---- one writer, damaged and foreign stores: one line each -------------------------------------------------

HOLD_LOCK = ("import sys, time; from lrlab.store import WriterLock; WriterLock(sys.argv[1]); "
             "print('held', flush=True); time.sleep(60)")


@pytest.fixture
def other_writer(tmp_path: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the results directory's writer lock."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    yield holder
    holder.kill()
    holder.wait()


def test_a_second_writer_is_refused_naming_the_first_ones_pid(tmp_path, other_writer):
    with pytest.raises(ConfigError, match=rf"in use by another lrlab process \(pid {other_writer.pid}\)"):
        WriterLock(tmp_path)
    other_writer.kill()
    other_writer.wait()
    WriterLock(tmp_path).release()  # a dead writer leaves no stale lock


def test_a_lock_is_released_with_the_store(tmp_path):
    lock = WriterLock(tmp_path)
    Store(tmp_path, lock=lock).close()
    WriterLock(tmp_path).release()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_store_is_one_line(tmp_path, damage):
    store = Store(tmp_path)
    for seed in range(20):
        store.finish_run(store.start_run("cosine", "cosine()", seed, {}), metrics(n_steps=200))
    store.close()
    path = tmp_path / STORE_NAME
    data = path.read_bytes()
    path.write_bytes(b"\x00garbage " * 500 if damage == "garbage" else data[: len(data) // 3])
    with pytest.raises(StoreError, match=r"store=.*lrlab.sqlite.* failed: .*(not a database|malformed)"):
        Store(tmp_path, readonly=True).runs()


def test_a_newer_schema_is_refused_clearly(tmp_path):
    Store(tmp_path).close()
    with sqlite3.connect(tmp_path / STORE_NAME) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match=r"written by a newer lrlab \(schema 99; this lrlab reads up to 1\)"):
        Store(tmp_path)


def test_a_store_of_earlier_lrlab_is_read_and_upgraded(tmp_path):
    Store(tmp_path).close()
    with sqlite3.connect(tmp_path / STORE_NAME) as conn:
        conn.execute("PRAGMA user_version=0")
    Store(tmp_path).close()
    with sqlite3.connect(tmp_path / STORE_NAME) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_full_disk_is_one_line_and_keeps_what_was_stored(tmp_path):
    store = Store(tmp_path)
    store.finish_run(store.start_run("cosine", "cosine()", 0, {}), metrics())
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own "disk full" (SQLITE_FULL)
    with pytest.raises(StoreError, match="database or disk is full"):
        store.finish_run(store.start_run("cosine", "cosine()", 1, {}), metrics(n_steps=20_000))
    store.close()
    assert Store(tmp_path, readonly=True).finished_runs() == {("cosine", 0): "cosine()"}


def test_a_reader_writes_nothing(tmp_path):
    Store(tmp_path).close()
    before = (tmp_path / STORE_NAME).read_bytes()
    reader = Store(tmp_path, readonly=True)
    assert reader.runs() == []
    reader.close()
    assert (tmp_path / STORE_NAME).read_bytes() == before

"""The SQLite store: transactional run records, resume bookkeeping, metrics read back as written."""

from __future__ import annotations

import sqlite3

from lrlab.store import STORE_NAME, RunMetrics, Store


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

"""``lrlab export DIR --tensorboard OUT``: every finished run's scalars as event files TensorBoard reads back
(skipped without tensorboard), and one-line errors without the package or without a store."""

from __future__ import annotations

import sys

import pytest

from lrlab.cli import main
from lrlab.runs import RunMetrics
from lrlab.store import Store


def stored(directory) -> None:
    """A store with two finished runs and one still running (which is not exported)."""
    with Store(directory) as store:
        for schedule, seed in (("warmup(steps=1) >> cosine()", 0), ("constant", 1)):
            run = store.start_run(schedule, schedule, seed, {})
            metrics = RunMetrics(lr=[0.0, 0.1, 0.05], momentum=[0.9, 0.9, 0.9], train_loss=[2.0, 1.5, float("nan")])
            metrics.end_epoch(1, 3, 0.0, [2.0, 1.5], 1.25, 0.5)
            store.finish_run(run, metrics)
        store.start_run("running", "constant()", 0, {})


def test_export_writes_every_finished_run_as_events(tmp_path, capsys):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    stored(tmp_path / "results")
    assert main(["export", str(tmp_path / "results"), "--tensorboard", str(tmp_path / "tb")]) == 0
    assert "2 run(s) written" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["constant", "warmup-steps-1-cosine"]
    events = accumulator.EventAccumulator(str(tmp_path / "tb" / "warmup-steps-1-cosine" / "seed0")).Reload()
    assert sorted(events.Tags()["scalars"]) == ["lr", "momentum", "train_loss", "val_acc", "val_loss"]
    assert [(e.step, e.value) for e in events.Scalars("lr")] == [(0, 0.0), (1, pytest.approx(0.1)),
                                                                 (2, pytest.approx(0.05))]
    assert [e.step for e in events.Scalars("train_loss")] == [0, 1]  # a NaN is left out
    assert [(e.step, e.value) for e in events.Scalars("val_loss")] == [(3, 1.25)]


def test_export_without_tensorboard_or_a_store_is_one_line(tmp_path, monkeypatch, capsys):
    assert main(["export", str(tmp_path), "--tensorboard", str(tmp_path / "tb")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    stored(tmp_path)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    assert main(["export", str(tmp_path), "--tensorboard", str(tmp_path / "tb")]) == 2
    assert capsys.readouterr().err == ("lrlab: error: --tensorboard needs the tensorboard package: pip install "
                                       "'lrlab[tensorboard]'\n")

"""The sequential trainer: determinism, the records it keeps, the plateau controller."""

from __future__ import annotations

import pytest

from lrlab.runs import RunSpec
from lrlab.tasks import OptimizerDefaults, load_task
from lrlab.trainer import train

DIGITS = OptimizerDefaults(name="sgd", lr=0.1, momentum=0.9)


def test_same_seed_gives_bitwise_identical_metrics_and_another_seed_does_not() -> None:
    task = load_task("digits-mlp")
    run = RunSpec("warmup(steps=10) >> cosine()", seed=3, epochs=2, batch_size=64, optimizer=DIGITS)
    first, second = train(task, run), train(task, run)
    assert first.train_loss == second.train_loss and first.epochs == second.epochs and first.lr == second.lr
    other = train(task, RunSpec(run.schedule, 4, run.epochs, run.batch_size, run.optimizer))
    assert other.train_loss != first.train_loss


def test_lr_and_momentum_recorded_per_step_follow_the_schedule() -> None:
    task = load_task("digits-mlp")
    metrics = train(task, RunSpec("onecycle()", seed=0, epochs=1, batch_size=64, optimizer=DIGITS))
    steps = len(task.x_train) // 64
    assert len(metrics.lr) == len(metrics.train_loss) == steps
    assert max(metrics.lr) == pytest.approx(0.1, rel=1e-2) and metrics.lr[0] == pytest.approx(0.1 / 25)
    assert metrics.momentum[0] == pytest.approx(0.95) and min(metrics.momentum) == pytest.approx(0.85, abs=1e-3)


def test_plateau_is_fed_the_validation_loss_and_cuts_the_lr() -> None:
    task = load_task("digits-mlp")
    # threshold 1 (relative): no epoch can improve by 100%, so every epoch after the first is a bad one
    metrics = train(task, RunSpec("plateau(patience=0, factor=0.5, threshold=1)", seed=0, epochs=4, batch_size=64,
                                  optimizer=DIGITS))
    assert [round(e["lr"], 6) for e in metrics.epochs] == [0.1, 0.05, 0.025, 0.0125]

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


@pytest.mark.parametrize("stop_step", [5, 22])  # inside the first epoch; its end (22 updates per epoch)
def test_a_run_stopped_at_a_rung_is_the_prefix_of_the_whole_run_validated_there(one_thread, digits,
                                                                                stop_step: int) -> None:
    from lrlab.vectorized import train_many

    run = RunSpec("cosine()", seed=1, epochs=3, batch_size=64, optimizer=DIGITS)
    stopped = RunSpec(run.schedule, run.seed, run.epochs, run.batch_size, run.optimizer, stop_step=stop_step)
    whole = train(digits, run)
    for metrics in (train(digits, stopped), *train_many(digits, [stopped, stopped])):
        assert metrics.lr == whole.lr[:stop_step]  # the 3-epoch cosine, cut: not a shorter cosine
        assert metrics.train_loss == pytest.approx(whole.train_loss[:stop_step], rel=1e-5)
        assert len(metrics.epochs) == 1 and metrics.epochs[0]["step"] == stop_step
        assert metrics.diverged_step is None
    assert train(digits, stopped).epochs[0]["val_loss"] != whole.epochs[1]["val_loss"]

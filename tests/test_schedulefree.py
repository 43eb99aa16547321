"""Schedule-free optimizers (the optional ``schedulefree`` package): built in train mode, validated at their
averaged weights, BatchNorm statistics recomputed there, trained sequentially, one line when missing."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from lrlab.config import parse_config
from lrlab.errors import ConfigError
from lrlab.runner import choose_trainer
from lrlab.runs import RunSpec, validation_metrics
from lrlab.tasks import OptimizerDefaults, Task, make_optimizer
from lrlab.trainer import evaluate, train

SGD_SF = OptimizerDefaults(name="sgd-schedulefree", lr=0.5, momentum=0.9)


def _steps(task: Task, model: nn.Module, optimizer: torch.optim.Optimizer, n: int = 20) -> None:
    for i in range(n):
        batch = slice(16 * i, 16 * (i + 1))
        optimizer.zero_grad()
        task.loss_fn(model(task.x_train[batch]), task.y_train[batch]).backward()
        optimizer.step()


def test_validation_is_at_the_averaged_weights_and_training_goes_on_at_the_others(digits: Task) -> None:
    pytest.importorskip("schedulefree")
    torch.manual_seed(0)
    model = digits.make_model()
    optimizer = make_optimizer(SGD_SF, model.parameters())
    _steps(digits, model, optimizer)
    with torch.no_grad():
        at_y = validation_metrics(digits, model(digits.x_val))
        optimizer.eval()
        at_x = validation_metrics(digits, model(digits.x_val))
        optimizer.train()
    assert at_x != at_y  # the two points differ, so the switch is seen
    assert evaluate(digits, model, averaging=optimizer, batch_size=16) == at_x
    with torch.no_grad():
        assert validation_metrics(digits, model(digits.x_val)) == at_y  # back in train mode: y again
    _steps(digits, model, optimizer, 1)  # step() refuses eval mode: this would raise


def test_batchnorm_statistics_are_recomputed_at_the_averaged_weights(digits: Task) -> None:
    pytest.importorskip("schedulefree")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = make_optimizer(SGD_SF, model.parameters())
    _steps(digits, model, optimizer)
    before = model[1].running_mean.clone()
    evaluate(digits, model, averaging=optimizer, batch_size=64)
    assert not torch.equal(model[1].running_mean, before)
    unchanged = model[1].running_mean.clone()
    evaluate(digits, model, batch_size=64)  # not schedule-free: the statistics are the training's own
    assert torch.equal(model[1].running_mean, unchanged)


def test_a_run_trains_sequentially_to_the_end_at_a_constant_lr(digits: Task) -> None:
    pytest.importorskip("schedulefree")
    run = RunSpec("warmup(frac=0.1) >> constant()", 0, 2, 64, SGD_SF)
    metrics = train(digits, run)
    assert metrics.diverged_step is None and len(metrics.epochs) == 2
    assert metrics.lr[-1] == pytest.approx(0.5) and metrics.epochs[-1]["val_loss"] < metrics.epochs[0]["val_loss"]


@pytest.mark.parametrize("name", ["sgd-schedulefree", "adamw-schedulefree"])
def test_the_vectorized_trainer_is_refused_and_auto_says_why(digits: Task, name: str) -> None:
    runs = [RunSpec("constant()", seed, 1, 64, OptimizerDefaults(name=name, lr=0.01)) for seed in range(8)]
    chosen, reason = choose_trainer(digits, runs, "auto")
    assert chosen == "sequential" and name in reason and "averaged weights" in reason
    with pytest.raises(ConfigError, match=r"trainer='vectorized' is invalid.*averaged weights"):
        choose_trainer(digits, runs, "vectorized")


def test_the_config_takes_the_schedule_free_names() -> None:
    assert parse_config({"optimizer": {"name": "adamw-schedulefree"}}).optimizer.name == "adamw-schedulefree"


def test_without_the_package_one_line_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "schedulefree", None)  # `import schedulefree` raises ImportError
    with pytest.raises(ConfigError, match=r"^optimizer='sgd-schedulefree' needs the schedulefree package: pip "
                                          r"install 'lrlab\[schedulefree\]'$"):
        make_optimizer(SGD_SF, nn.Linear(2, 2).parameters())

"""The task protocol's second form (lrlab.tasks.LoaderTask): your loaders, optimizer and step through the trainer,
the range test and the CLI; devices and precision; the one-line errors (issue 14)."""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrlab.cli import main
from lrlab.errors import ConfigError
from lrlab.finder import find_lr_for_task
from lrlab.runner import choose_trainer
from lrlab.runs import RunSpec
from lrlab.spec import Horizon, build
from lrlab.tasks import LoaderTask, load_task
from lrlab.tasks.loop import build_optimizer
from lrlab.trainer import scheduled, train

ROOT = Path(__file__).resolve().parents[1]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def small_task(**changes: object) -> LoaderTask:
    """A tiny LoaderTask: 200 points, batches of 20 (10 steps per epoch), Adagrad."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(240, 4, generator=g)
    y = (x[:, 0] > 0).long()
    train_set, val_set = TensorDataset(x[:200], y[:200]), TensorDataset(x[200:], y[200:])
    task = LoaderTask(
        name="small",
        description="tiny",
        make_model=lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
        train_batches=lambda seed, epoch: DataLoader(train_set, batch_size=20, shuffle=True,
                                                     generator=torch.Generator().manual_seed(seed * 1000 + epoch)),
        val_batches=lambda: DataLoader(val_set, batch_size=40),
        make_optimizer=lambda model, lr: torch.optim.Adagrad(model.parameters(), lr=lr),
        lr=0.05,
        epochs=2,
        loss_fn=F.cross_entropy,
    )
    return replace(task, **changes)


def run_of(task: LoaderTask, schedule: str = "onecycle()", seed: int = 0) -> RunSpec:
    return RunSpec(schedule, seed, task.epochs, 0, task.optimizer)


# ------------------------------------------------------------------------------------------------- training


def test_a_loader_task_trains_reproducibly_and_resumes_the_same_data_order() -> None:
    task = small_task()
    first, again = train(task, run_of(task)), train(task, run_of(task))
    assert len(first.train_loss) == 20 and [e["epoch"] for e in first.epochs] == [1, 2]
    assert first.train_loss == again.train_loss and first.epochs == again.epochs
    assert first.momentum == [None] * 20  # Adagrad has no momentum: OneCycle's cycling is left out
    assert train(task, run_of(task, seed=1)).train_loss != first.train_loss


def test_each_param_group_follows_the_schedule_times_its_ratio() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    task = small_task(make_optimizer=lambda m, lr: torch.optim.RMSprop(
        [{"params": m[0].parameters(), "lr": lr / 4}, {"params": m[1].parameters()}], lr=lr))
    optimizer, ratios = build_optimizer(task, model, 0.2)
    assert ratios == [0.25, 1.0]
    plan = build("onecycle()", Horizon(10, base_lr=0.2))
    scheduler = scheduled(optimizer, plan, ratios)
    for t in range(1, 6):
        scheduler.step()
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([plan.lr(t) / 4, plan.lr(t)], rel=1e-12)
        assert optimizer.param_groups[1]["momentum"] == pytest.approx(plan.momentum(t))  # RMSprop has momentum


def test_the_recorded_lr_is_the_schedules_even_when_the_first_group_has_another_ratio() -> None:
    task = small_task(make_optimizer=lambda m, lr: torch.optim.SGD(
        [{"params": m[0].parameters(), "lr": lr / 2}, {"params": m[2].parameters()}], lr=lr))
    metrics = train(task, run_of(task, "constant()"))
    assert metrics.lr == pytest.approx([0.05] * 20, rel=1e-12)


def test_a_custom_step_and_evaluation_are_used() -> None:
    calls = {"step": 0, "evaluate": 0}

    def step(model: nn.Module, batch: tuple, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        calls["step"] += 1
        x, y = batch
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        return loss

    def evaluate(model: nn.Module, batches: object) -> dict[str, float]:
        calls["evaluate"] += 1
        return {"loss": 0.5, "acc": 0.75}

    task = small_task(train_step=step, evaluate=evaluate, loss_fn=None)
    metrics = train(task, run_of(task))
    assert calls == {"step": 20, "evaluate": 2}
    assert [(e["val_loss"], e["val_acc"]) for e in metrics.epochs] == [(0.5, 0.75)] * 2


def test_a_diverging_loader_run_stops_and_is_recorded() -> None:
    task = small_task(lr=1e6, make_optimizer=lambda m, lr: torch.optim.SGD(m.parameters(), lr=lr))
    metrics = train(task, run_of(task, "constant()"))
    assert metrics.diverged_step is not None and metrics.diverged_step < 20


def test_a_loader_task_trains_sequentially_and_says_why() -> None:
    task = small_task()
    name, why = choose_trainer(task, [run_of(task)] * 8)
    assert name == "sequential" and "LoaderTask" in why
    with pytest.raises(ConfigError, match="LoaderTask"):
        choose_trainer(task, [run_of(task)] * 8, "vectorized")


def test_the_range_test_runs_a_loader_task_through_its_own_step() -> None:
    seen = []

    def step(model: nn.Module, batch: tuple, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        seen.append(optimizer.param_groups[0]["lr"])
        x, y = batch
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    result = find_lr_for_task(small_task(train_step=step), seeds=[0, 1], num_steps=30, min_lr=1e-4, max_lr=1.0)
    assert [len(c.lrs) for c in result.curves] == [30, 30] and seen[0] == pytest.approx(1e-4)
    assert result.recommendation.lr > 0 and result.settings["vectorized"] is False


def test_bf16_autocast_trains_on_the_cpu_and_stays_sequential() -> None:
    task = small_task()
    run = replace(run_of(task), precision="bf16")
    assert train(task, run).diverged_step is None
    name, why = choose_trainer(load_task("examples.my_task:make_task"), [replace(run, optimizer=run.optimizer)] * 8)
    assert name == "sequential" and "precision='bf16'" in why


@needs_cuda
def test_a_loader_task_trains_on_cuda_like_on_the_cpu() -> None:
    task = small_task()
    cpu, cuda = train(task, run_of(task)), train(task, replace(run_of(task), device="cuda"))
    assert cuda.train_loss == pytest.approx(cpu.train_loss, rel=1e-3)


# --------------------------------------------------------------------------------------------- one-line errors


@pytest.mark.parametrize(("changes", "message"), [
    ({"train_batches": lambda: []}, "train_batches=<function"),
    ({"make_optimizer": lambda model: None}, "make_optimizer=<function"),
    ({"val_batches": 3}, "val_batches=3 is invalid: expected a function () -> an iterable of batches"),
    ({"loss_fn": None}, "loss_fn=None is invalid without train_step"),
    ({"steps_per_epoch": 0}, "steps_per_epoch=0 is invalid"),
])
def test_a_task_of_the_wrong_shape_is_one_line(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        small_task(**changes)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(("changes", "message"), [
    ({"make_optimizer": lambda m, lr: torch.optim.SGD(m.parameters(), lr=0.1)},
     "make_optimizer ignores lr: make_optimizer(model, lr=0.05) gave param_groups[0]['lr']=0.1 and lr=0.1 gave 0.1"),
    ({"make_optimizer": lambda m, lr: "sgd"}, "make_optimizer returned str: expected a torch.optim.Optimizer"),
    ({"train_step": lambda m, b, o: torch.ones(3)}, "train_step returned a tensor of shape (3,): expected the step's "
                                                    "loss, a scalar"),
    ({"train_step": lambda m, b, o: "x"}, "train_step returned str"),
    ({"train_batches": lambda seed, epoch: 5, "steps_per_epoch": 10},
     "train_batches(seed, epoch) returned int: expected an iterable"),
    ({"evaluate": lambda m, b: {"val_loss": 1.0}}, "evaluate returned {'val_loss': 1.0}: expected a dict with 'loss'"),
    ({"steps_per_epoch": 50}, "yielded 10 batches: expected steps_per_epoch=50"),
])
def test_a_factory_that_breaks_the_protocol_is_one_line_when_it_runs(changes: dict, message: str) -> None:
    task = small_task(**changes)
    with pytest.raises(ConfigError) as error:
        train(task, run_of(task))
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is absent")
@pytest.mark.parametrize("command", [["compare", "--task", "digits-mlp"], ["find-lr"], ["tune-lr"]])
def test_device_cuda_without_cuda_is_one_line_and_exit_2(command: list[str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--device", "cuda", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"lrlab: error: device='cuda' is invalid: .*CUDA.*: expected cpu or auto\n", err)


def test_an_unknown_device_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["compare", "--device", "gpu", "--out", str(tmp_path)]) == 2
    assert "device='gpu' is invalid: expected auto, cpu, cuda, cuda:N or mps" in capsys.readouterr().err


def test_a_loader_task_refuses_what_its_factories_decide(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    task = "examples.loader_task:make_task"
    assert main(["compare", "--task", task, "--batch-size", "10", "--out", str(tmp_path)]) == 2
    assert "batch_size=10 is invalid for task 'spirals-loader': its train_batches decide" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- the CLI, end to end


def _columns_and_figures(out: Path) -> tuple[list[str], list[str]]:
    with open(out / "summary.csv", newline="") as f:
        header = next(csv.reader(f))
    return header, sorted(p.name for p in (out / "figures").iterdir())


def test_the_example_loader_task_runs_through_compare_find_lr_and_tune_lr(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)  # examples/ is importable from the repository root
    common = ["--epochs", "2", "--seeds", "2", "--device", "cpu"]
    schedules = ["--schedules", "constant()", "onecycle()"]
    task = "examples.loader_task:make_task"
    assert main(["compare", "--task", task, *common, *schedules, "--out", str(tmp_path / "cmp")]) == 0
    assert main(["compare", "--task", "examples.my_task:make_task", *common, *schedules,
                 "--out", str(tmp_path / "builtin")]) == 0
    assert _columns_and_figures(tmp_path / "cmp") == _columns_and_figures(tmp_path / "builtin")
    with open(tmp_path / "cmp" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(row["final_val_acc_mean"] and row["peak_lr"] == "0.01" for row in rows)

    assert main(["find-lr", "--task", task, "--seeds", "2", "--num-steps", "40", "--out", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f" / "finder.png").is_file() and (tmp_path / "f" / "finder.json").is_file()

    assert main(["tune-lr", "--task", task, "--schedule", "cosine()", "--seeds", "1", "--epochs", "1",
                 "--min-lr", "0.003", "--max-lr", "0.03", "--per-decade", "2", "--max-widen", "0",
                 "--out", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "tune.json").is_file() and (tmp_path / "t" / "lr_sensitivity.png").is_file()


def test_the_task_file_in_docs_own_training_works(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = (ROOT / "docs" / "own-training.md").read_text(encoding="utf-8")
    (tmp_path / "my_training.py").write_text(re.search(r"```python\n(.*?)```", text, re.S).group(1))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    assert main(["compare", "--task", "my_training:make_task", "--seeds", "1", "--schedules", "cosine()",
                 "--no-report", "--out", str(tmp_path / "out")]) == 0
    task = load_task("my_training:make_task")
    metrics = train(task, run_of(task, "onecycle()"))
    assert metrics.diverged_step is None and metrics.epochs[-1]["val_acc"] > 0.8


@needs_cuda
def test_the_vectorized_trainer_runs_on_cuda_like_sequential_runs_there() -> None:
    from lrlab.vectorized import train_many

    task = load_task("digits-mlp")
    runs = [RunSpec(spec, seed, 2, task.batch_size, task.optimizer, device="cuda")
            for spec in ("constant()", "onecycle()") for seed in (0, 1)]
    batched, sequential = train_many(task, runs), [train(task, run) for run in runs]
    for a, b in zip(batched, sequential, strict=True):
        assert a.train_loss[:50] == pytest.approx(b.train_loss[:50], rel=1e-4, abs=1e-5)


def test_device_and_precision_in_a_config(tmp_path: Path) -> None:
    from lrlab.config import config_from, parse_config

    path = tmp_path / "c.yaml"
    path.write_text("task: digits-mlp\ndevice: cuda:1\nprecision: bf16\n")
    config = config_from(path)
    assert (config.device, config.precision) == ("cuda:1", "bf16")
    assert "device" not in config.identity() and config.identity()["precision"] == "bf16"  # resumable elsewhere
    for field, value in (("device", "gpu"), ("precision", "fp8")):
        with pytest.raises(ConfigError) as error:
            parse_config({field: value})
        assert str(error.value).startswith(f"{field}='{value}' is invalid: ") and "\n" not in str(error.value)

"""The vectorized trainer: member k of a batched run is the sequential run, record for record.

Equality is checked on one thread, the setting the CLI uses for small models (with two threads torch's own
``mm`` splits its reductions, so sequential runs change; the batched runs do not).
"""

from __future__ import annotations

import dataclasses
import tracemalloc
from dataclasses import replace

import pytest
import torch
from torch import nn

from lrlab import vectorized
from lrlab.batched import MIN_MEMBERS, can_vectorize, tune_allocator
from lrlab.errors import ConfigError
from lrlab.runner import choose_trainer
from lrlab.runs import RunMetrics, RunSpec, horizon_for
from lrlab.spec import build
from lrlab.tasks import OptimizerDefaults, Task, load_task
from lrlab.trainer import train
from lrlab.vectorized import _member, group_runs, train_many

pytestmark = pytest.mark.usefixtures("one_thread")

SGD = OptimizerDefaults(name="sgd", lr=0.1, momentum=0.9)
ADAMW = OptimizerDefaults(name="adamw", lr=0.01, weight_decay=0.01)
WARMUP_COSINE = "warmup(steps=10) >> cosine()"
PLATEAU = "plateau(patience=0, factor=0.5, threshold=1)"  # threshold=1: nothing improves, so it cuts every epoch
ONECYCLE = "onecycle()"  # cycles momentum / Adam's beta1 too
SCHEDULES = (WARMUP_COSINE, PLATEAU, ONECYCLE)




def records(m: RunMetrics) -> tuple:
    """Everything a run stores except its wall time."""
    return m.lr, m.momentum, m.train_loss, m.epochs, m.diverged_step


def assert_reproduces(task: Task, runs: list[RunSpec], **kwargs: object) -> list[RunMetrics]:
    many = train_many(task, runs, **kwargs)
    assert len(many) == len(runs)
    for run, got in zip(runs, many, strict=True):
        expected = train(task, run)
        assert records(got) == records(expected), f"{run.schedule} seed {run.seed} differs from sequential"
    return many


# ---- equivalence: bitwise for MLPs -----------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", [SGD, ADAMW], ids=["sgd-momentum", "adamw"])
def test_members_reproduce_sequential_runs_bitwise_on_digits(digits: Task, optimizer: OptimizerDefaults) -> None:
    runs = [RunSpec(spec, seed, 3, digits.batch_size, optimizer) for spec in SCHEDULES for seed in (0, 1)]
    many = assert_reproduces(digits, runs)
    plateau = many[2]
    assert [e["lr"] for e in plateau.epochs] == pytest.approx([optimizer.lr * 0.5 ** i for i in (0, 1, 2)])
    assert len(set(many[4].momentum)) > 1  # onecycle really cycled momentum / beta1


@pytest.mark.parametrize("optimizer", [SGD, ADAMW], ids=["sgd-momentum", "adamw"])
def test_members_reproduce_sequential_runs_bitwise_on_mnist1d_mlp(optimizer: OptimizerDefaults) -> None:
    task = load_task("mnist1d-mlp")
    runs = [RunSpec(spec, 3, 2, task.batch_size, optimizer) for spec in SCHEDULES]
    assert_reproduces(task, runs)


@pytest.mark.parametrize("optimizer", [
    OptimizerDefaults(name="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    OptimizerDefaults(name="adam", lr=0.01, weight_decay=1e-3),
    OptimizerDefaults(name="sgd", lr=0.1),  # no momentum: onecycle's member uses it, constant's does not
], ids=["sgd-nesterov-decay", "adam-l2", "sgd-mixed-momentum"])
def test_every_update_rule_follows_torch_optim(digits: Task, optimizer: OptimizerDefaults) -> None:
    runs = [RunSpec(spec, 0, 2, digits.batch_size, optimizer) for spec in ("constant()", ONECYCLE)]
    assert_reproduces(digits, runs)


def test_members_may_differ_in_peak_lr_and_momentum(digits: Task) -> None:
    runs = [RunSpec("cosine()", 0, 2, digits.batch_size, replace(SGD, lr=lr, momentum=m))
            for lr, m in ((0.05, 0.9), (0.2, 0.5))]
    assert len(group_runs(runs)) == 1
    assert_reproduces(digits, runs)


# ---- the CNN: grouped convolutions round differently ----------------------------------------------------

def test_cnn_members_follow_sequential_runs_as_float32_allows_on_any_cpu() -> None:
    # A grouped convolution (vmap's) and a plain one run different oneDNN kernels, chosen per instruction set:
    # on AVX-512 they agree to 2 ulps for the first 100 steps, on AVX2-only CPUs they part by 1.5% within them.
    # So float32 can promise only this much: the same loss before the first update (one forward pass, rounding
    # apart), the same LR/momentum sequence, and training that ends in the same place (the exact agreement is
    # the float64 test below). CI also runs this file with ONEDNN_MAX_CPU_ISA=AVX2 (.ci/run).
    task = load_task("mnist1d-cnn")
    runs = [RunSpec(WARMUP_COSINE, seed, 3, task.batch_size, task.optimizer) for seed in (0, 1)]
    for run, got in zip(runs, train_many(task, runs), strict=True):
        expected = train(task, run)
        assert got.lr == expected.lr and got.momentum == expected.momentum
        assert len(got.train_loss) == len(expected.train_loss) == 120
        assert got.train_loss[0] == pytest.approx(expected.train_loss[0], rel=1e-5)
        last_epoch = slice(-40, None)
        assert sum(got.train_loss[last_epoch]) == pytest.approx(sum(expected.train_loss[last_epoch]), rel=0.05)
        assert got.epochs[-1]["val_loss"] == pytest.approx(expected.epochs[-1]["val_loss"], rel=0.05)


def test_cnn_members_match_in_float64() -> None:
    base = load_task("mnist1d-cnn")
    task = replace(base, x_train=base.x_train.double(), x_val=base.x_val.double(),
                   make_model=lambda: base.make_model().double())
    run = RunSpec(WARMUP_COSINE, 0, 3, task.batch_size, task.optimizer)
    got, expected = train_many(task, [run, replace(run, seed=1)])[0], train(task, run)
    assert max(abs(a - b) for a, b in zip(got.train_loss[:100], expected.train_loss[:100], strict=True)) < 1e-12


# ---- divergence, groups, hooks ------------------------------------------------------------------------------

def test_a_diverging_member_is_recorded_and_leaves_the_others_unchanged(digits: Task) -> None:
    runs = [RunSpec("constant()", 0, 3, digits.batch_size, SGD), RunSpec("constant(lr=50)", 1, 3, digits.batch_size,
                                                                         SGD),
            RunSpec(ONECYCLE, 2, 3, digits.batch_size, SGD)]
    many = assert_reproduces(digits, runs)
    assert many[1].diverged_step is not None and many[1].diverged_step < 66
    assert len(many[1].train_loss) == many[1].diverged_step + 1
    assert many[0].diverged_step is None and many[2].diverged_step is None
    assert [m.train_loss for m in (many[0], many[2])] == [m.train_loss for m in train_many(digits, [runs[0], runs[2]])]


@pytest.mark.parametrize("optimizer", [SGD, ADAMW], ids=["sgd-momentum", "adamw"])
def test_an_lr_beyond_float32_is_divergence_at_its_step_in_both_trainers(digits: Task,
                                                                        optimizer: OptimizerDefaults) -> None:
    # exponential(gamma=1e308): 1e307 at step 1 (beyond float32's 3.4e38), inf at step 2; a peak of 1e39 is
    # beyond it from step 0. Torch refuses such a scalar ("cannot be converted to type float without overflow").
    big = replace(optimizer, lr=1e39)
    runs = [RunSpec("exponential(gamma=1e308)", 0, 2, digits.batch_size, optimizer),
            RunSpec("constant()", 1, 2, digits.batch_size, big),
            RunSpec("cosine()", 2, 2, digits.batch_size, optimizer)]
    many = assert_reproduces(digits, runs)
    assert [m.diverged_step for m in many] == [1, 0, None]
    assert many[0].lr[-1] == pytest.approx(1e306 if optimizer is ADAMW else 1e307)
    # every member at the same LR: the batched update's shared-scalar path
    same = [RunSpec("constant()", seed, 2, digits.batch_size, big) for seed in (0, 1)]
    assert [m.diverged_step for m in assert_reproduces(digits, same)] == [0, 0]


def test_member_lrs_are_computed_step_by_step_not_stored_for_the_whole_run(digits: Task) -> None:
    run = RunSpec("warmup(steps=10) >> cosine()", 0, 10_000, digits.batch_size, SGD)  # 220,000 steps
    tracemalloc.start()
    try:
        member = _member(digits, run)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000  # a list of the run's LRs alone would take 7 MB
    total = horizon_for(digits, run).total_steps
    assert member.lr(total - 1) == build(run.schedule, horizon_for(digits, run)).lr(total - 1)


def test_runs_with_different_batch_sizes_train_in_separate_groups(digits: Task) -> None:
    runs = [RunSpec("cosine()", seed, 2, batch, SGD) for batch, seed in ((64, 0), (100, 1), (64, 2), (100, 3))]
    assert group_runs(runs) == [[0, 2], [1, 3]]
    assert group_runs(runs, max_members=1) == [[0], [2], [1], [3]]
    assert group_runs([replace(runs[0], optimizer=ADAMW), runs[0], replace(runs[0], epochs=3)]) == [[0], [1], [2]]
    with pytest.raises(ConfigError, match="max_members=0"):
        group_runs(runs, max_members=0)
    steps = []
    many = assert_reproduces(digits, runs, on_step=steps.append, max_members=1)
    assert [len(m.train_loss) for m in many] == [44, 28, 44, 28]
    assert steps == [*range(1, 45), *range(1, 45), *range(1, 29), *range(1, 29)]  # one call per batched step


def test_groups_are_capped_and_dealt_evenly_over_processes(digits: Task) -> None:
    runs = [RunSpec("cosine()", seed, 2, digits.batch_size, SGD) for seed in range(30)]
    assert group_runs(runs, 32, processes=2) == [list(range(0, 30, 2)), list(range(1, 30, 2))]  # the default study
    assert [len(g) for g in group_runs(runs * 2, 32, processes=2)] == [30, 30]
    assert [len(g) for g in group_runs(runs * 3, 32, processes=2)] == [23, 23, 22, 22]  # 3 groups would idle a core
    assert [len(g) for g in group_runs(runs[:6], 32, processes=2)] == [6]  # 3 each would be below MIN_MEMBERS
    assert [len(g) for g in group_runs(runs, 8)] == [8, 8, 7, 7]


def test_group_size_is_bounded_by_memory(digits: Task, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunSpec("cosine()", 0, 2, digits.batch_size, SGD)
    each = vectorized.member_bytes(digits, run)
    params = sum(p.numel() for p in digits.make_model().parameters()) * 4
    assert params * 5 < each < params * 5 + 10**6  # parameters and their state dominate this small MLP
    assert vectorized.group_limit(digits, run, 1)[0] == vectorized.MAX_GROUP  # this machine holds 32 of them
    monkeypatch.setattr(vectorized, "available_memory", lambda: 2 * 2 * 10 * each)
    assert vectorized.group_limit(digits, run, processes=2) == (
        10, f"half the available memory ({40 * each / 2**30:.1f} GiB) at ~{each / 2**20:.1f} MiB per run")
    assert vectorized.group_limit(digits, run, processes=2, requested=3)[0] == 3


def test_wall_time_is_the_groups_time_shared_by_its_members(digits: Task) -> None:
    many = train_many(digits, [RunSpec("cosine()", seed, 1, digits.batch_size, SGD) for seed in range(3)])
    assert len({m.wall_s for m in many}) == 1 and many[0].wall_s > 0


def test_allocator_tuning_is_idempotent() -> None:
    first = tune_allocator()
    assert isinstance(first, bool) and tune_allocator() == first


# ---- choosing a trainer ----------------------------------------------------------------------------------

def fake_task(digits: Task, model: type[nn.Module] | None = None, vmappable: bool = True) -> Task:
    make = (lambda: nn.Sequential(nn.Linear(64, 8), model(8), nn.Linear(8, 10))) if model else digits.make_model
    return replace(digits, name="fake", make_model=make, vmappable=vmappable)


def test_choose_trainer_says_why(digits: Task) -> None:
    runs = [RunSpec("cosine()", seed, 1, digits.batch_size, SGD) for seed in range(MIN_MEMBERS)]
    assert choose_trainer(digits, runs)[0] == "vectorized"
    name, why = choose_trainer(digits, runs[:3])
    assert name == "sequential" and f"below {MIN_MEMBERS}" in why
    assert choose_trainer(digits, runs, max_members=2)[0] == "sequential"
    assert choose_trainer(digits, runs[:1], "vectorized") == ("vectorized", "requested")
    assert choose_trainer(digits, runs, "sequential") == ("sequential", "requested")
    with pytest.raises(ConfigError, match="trainer='fast' is invalid"):
        choose_trainer(digits, runs, "fast")


@pytest.mark.parametrize(("module", "vmappable", "reason"), [
    (nn.BatchNorm1d, True, "batch statistics"),
    (lambda n: nn.Dropout(0.5), True, "random masks"),
    (lambda n: nn.ReLU(), False, "vmappable=False"),
])
def test_models_that_cannot_be_vectorized_fall_back_with_a_reason(digits: Task, module, vmappable: bool,
                                                                  reason: str) -> None:
    task = fake_task(digits, module, vmappable)
    ok, why = can_vectorize(task)
    assert not ok and reason in why
    runs = [RunSpec("cosine()", seed, 1, digits.batch_size, SGD) for seed in range(8)]
    assert choose_trainer(task, runs)[0] == "sequential"
    with pytest.raises(ConfigError, match="trainer='vectorized' is invalid for task 'fake'"):
        choose_trainer(task, runs, "vectorized")


def test_a_model_that_fails_under_vmap_is_refused(digits: Task) -> None:
    class ItemNet(nn.Module):  # .item() inside forward has no vmap rule
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x) * float(x.sum().item() > 0)

    ok, why = can_vectorize(replace(digits, make_model=ItemNet))
    assert not ok and "does not run under torch.func.vmap" in why


def test_auto_leaves_convolutions_sequential_unless_vectorized_is_asked_for() -> None:
    task = load_task("mnist1d-cnn")
    runs = [RunSpec("cosine()", seed, 1, task.batch_size, task.optimizer) for seed in range(6)]
    assert can_vectorize(task)[0]
    name, why = choose_trainer(task, runs)
    assert name == "sequential" and "grouped convolution" in why and "'1' (Conv1d)" in why
    assert choose_trainer(task, runs, "vectorized") == ("vectorized", "requested")


def test_the_transformer_runs_sequentially() -> None:
    task = load_task("charlm-transformer")
    assert can_vectorize(task) == (False, "task 'charlm-transformer' declares vmappable=False")
    ok, why = can_vectorize(dataclasses.replace(task, vmappable=True))  # the model itself is refused too
    assert not ok and "attention" in why
    runs = [RunSpec("cosine()", seed, 1, task.batch_size, task.optimizer) for seed in range(6)]
    assert choose_trainer(task, runs)[0] == "sequential"


def test_can_vectorize_leaves_the_global_rng_alone(digits: Task) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    assert can_vectorize(digits)[0]
    assert torch.equal(torch.rand(3), expected)

"""The torch adapter: LRs written into param groups, momentum, controllers, and exact resume."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab import Plateau, ScheduledLR
from lrlab.schedules import Constant, Cosine, OneCycle, OneCycleMomentum, Schedule, warmup
from schedule_examples import EXAMPLES


def make_optimizer(kind: str = "sgd", lrs: tuple[float, ...] = (0.1,)) -> torch.optim.Optimizer:
    torch.manual_seed(0)
    groups = [{"params": [torch.nn.Parameter(torch.randn(3))], "lr": lr} for lr in lrs]
    if kind == "adam":
        return torch.optim.Adam(groups)
    return torch.optim.SGD(groups, momentum=0.9)


def run(scheduler: ScheduledLR, steps: int, metrics: list[float] | None = None) -> list[list[float]]:
    """Step optimizer and scheduler ``steps`` times; record every group's LR before each update."""
    out = []
    for t in range(steps):
        out.append([g["lr"] for g in scheduler.optimizer.param_groups])
        scheduler.optimizer.step()
        if metrics is not None and t % 10 == 9:
            scheduler.observe(metrics[t // 10])
        scheduler.step()
    return out


def test_absolute_schedule_sets_every_group():
    opt = make_optimizer(lrs=(0.1, 0.01))
    s = Cosine(0.5, 0.0, 100)
    lrs = run(ScheduledLR(opt, s), 50)
    assert [row[0] for row in lrs] == [s(t) for t in range(50)]
    assert all(row[0] == row[1] for row in lrs)


def test_relative_schedule_keeps_group_ratios():
    opt = make_optimizer(lrs=(0.1, 0.01))
    s = Cosine(1.0, 0.0, 100)
    lrs = run(ScheduledLR(opt, s, relative=True), 50)
    assert [row[0] for row in lrs] == [0.1 * s(t) for t in range(50)]
    assert [row[1] for row in lrs] == [0.01 * s(t) for t in range(50)]


def test_one_schedule_per_group_and_a_wrong_count_is_rejected():
    opt = make_optimizer(lrs=(0.1, 0.01))
    sched = ScheduledLR(opt, [Constant(0.3), Constant(0.2)])
    assert sched.get_last_lr() == [0.3, 0.2]
    with pytest.raises(ValueError, match="one per param group"):
        ScheduledLR(opt, [Constant(0.3)])


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_momentum_schedule_drives_momentum_or_beta1(kind):
    opt = make_optimizer(kind)
    m = OneCycleMomentum(100)
    sched = ScheduledLR(opt, OneCycle(0.1, 100), momentum=m)
    for t in range(100):
        group = opt.param_groups[0]
        value = group["betas"][0] if kind == "adam" else group["momentum"]
        assert value == m(t)
        opt.step()
        sched.step()
    if kind == "adam":
        assert opt.param_groups[0]["betas"][1] == 0.999


def test_momentum_needs_an_optimizer_with_momentum():
    opt = torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        ScheduledLR(opt, Constant(0.1), momentum=Constant(0.9))


def test_observe_without_controller_is_a_clear_error():
    sched = ScheduledLR(make_optimizer(), Constant(0.1))
    with pytest.raises(ValueError, match="no controller"):
        sched.observe(1.0)


def test_plateau_multiplies_any_schedule():
    """cosine x plateau: after a cut, the LR is the cosine value times the controller's scale."""
    opt = make_optimizer()
    s = Cosine(0.1, 0.0, 1000)
    sched = ScheduledLR(opt, s, controller=Plateau(patience=0, factor=0.5))
    for _ in range(10):
        opt.step()
        sched.step()
    sched.observe(1.0)  # first observation sets the best
    assert sched.observe(1.0)  # no improvement, patience 0: cut
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * s(10))
    for _ in range(5):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * s(15))


def test_warmup_then_plateau_ignores_observations_during_warmup():
    opt = make_optimizer()
    sched = ScheduledLR(opt, warmup(Constant(0.1), 20), controller=Plateau(patience=0, start_step=20))
    for _ in range(19):
        opt.step()
        sched.step()
        assert not sched.observe(5.0)
    assert sched.controller.observations == 0
    opt.step()
    sched.step()
    sched.observe(5.0)
    assert sched.observe(5.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)


def test_plateau_floor_stops_reductions_at_min_lr():
    opt = make_optimizer()
    sched = ScheduledLR(opt, Constant(0.1), controller=Plateau(patience=0, factor=0.1, min_lr=0.005))
    for _ in range(5):
        sched.step(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)


def test_a_plateau_never_fed_a_metric_warns_once():
    """A trainer calling step() without the metric leaves a plateau inert: warned once, at the limit."""
    opt = make_optimizer()
    sched = ScheduledLR(opt, Constant(0.1), controller=Plateau(patience=0, start_step=5))
    assert sched.unfed_limit == 1005
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2000):
            sched.step()
    assert [str(w.message)[:60] for w in caught] == [
        "ScheduledLR has a plateau controller but no metric in 1005 s"]


def test_a_plan_counts_the_unfed_limit_in_epochs_and_a_fed_plateau_never_warns():
    from lrlab.spec import Horizon, build

    plan = build("warmup(steps=7) >> plateau(patience=0)", Horizon(400, steps_per_epoch=30))
    assert ScheduledLR.from_plan(make_optimizer(), plan).unfed_limit == 7 + 10 * 30
    sched = ScheduledLR.from_plan(make_optimizer(), plan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for step in range(1, 400):
            sched.step()
            if step % 30 == 0:
                sched.observe(1.0)
        ScheduledLR(make_optimizer(), Constant(0.1)).step()  # no controller: nothing to feed


def save_and_load(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def scheduler_for(schedule: Schedule, with_plateau: bool) -> ScheduledLR:
    opt = make_optimizer(lrs=(0.1, 0.02))
    controller = Plateau(patience=1, factor=0.5, cooldown=1) if with_plateau else None
    return ScheduledLR(opt, schedule, relative=True, controller=controller)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(EXAMPLES)), kill_at=st.integers(0, 120), with_plateau=st.booleans(),
       metrics=st.lists(st.sampled_from([1.0, 0.9, 0.95, 1.2]), min_size=20, max_size=20))
def test_resume_at_any_step_gives_the_identical_remaining_curve(name, kill_at, with_plateau, metrics):
    """Save a checkpoint at a random step, rebuild everything, load it: the rest of the curve is unchanged."""
    total = 150
    observed = metrics if with_plateau else None
    reference = run(scheduler_for(EXAMPLES[name], with_plateau), total, observed)

    first = scheduler_for(EXAMPLES[name], with_plateau)
    run(first, kill_at, observed)
    checkpoint = save_and_load(first.state_dict())
    del first  # the process that trained up to kill_at is gone

    resumed = scheduler_for(EXAMPLES[name], with_plateau)
    resumed.load_state_dict(checkpoint)
    rest = []
    for t in range(kill_at, total):
        rest.append([g["lr"] for g in resumed.optimizer.param_groups])
        resumed.optimizer.step()
        if observed is not None and t % 10 == 9:
            resumed.observe(observed[t // 10])
        resumed.step()
    assert rest == reference[kill_at:]

"""The report's "Which schedule?": the torch class it prints gives the same LRs as the spec it stands for."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.optim import lr_scheduler

from lrlab.report.recommend import torch_equivalent
from lrlab.spec import Horizon, build

HORIZON = Horizon(total_steps=120, steps_per_epoch=12, base_lr=0.1)


@pytest.mark.parametrize("spec", ["cosine()", "cosine(min_lr=0.001)", "step(every_epochs=3, gamma=0.5)",
                                  "exponential(gamma=0.97)", "onecycle()",
                                  "onecycle(pct_start=0.2, anneal_strategy=linear, three_phase=true)"])
def test_printed_torch_class_reproduces_the_plan(spec: str) -> None:
    plan = build(spec, HORIZON)
    call = torch_equivalent(plan)
    assert call is not None
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=HORIZON.base_lr, momentum=0.9)
    scheduler = eval(call, vars(lr_scheduler), {"optimizer": optimizer})
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: scheduler stepped without an optimizer step
        for _ in range(HORIZON.total_steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            scheduler.step()
    assert lrs == pytest.approx(plan.lr_values(), rel=1e-9, abs=1e-15)


def test_plateau_maps_to_reduce_lr_on_plateau_only_on_a_constant() -> None:
    assert torch_equivalent(build("plateau(patience=3)", HORIZON)).startswith("ReduceLROnPlateau(optimizer")
    assert torch_equivalent(build("cosine() * plateau(patience=3)", HORIZON)) is None
    assert torch_equivalent(build("constant()", HORIZON)) is None  # no scheduler needed
    assert torch_equivalent(build("warmup(steps=10) >> cosine()", HORIZON)) is None


@pytest.mark.parametrize("spec", ["greedy(patience=3)", "cosine() * greedy(patience=3)"])
def test_greedy_has_no_torch_class(spec: str) -> None:
    assert torch_equivalent(build(spec, HORIZON)) is None

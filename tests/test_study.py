"""``lrlab claims``: the contrast statistics, the study's plan, and a tiny budget end to end."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest

from lrlab.cli import main
from lrlab.report.data import RunSeries, ScheduleRuns, Study
from lrlab.stats import compare, contrast
from lrlab.study import (
    NOT_MEASURED,
    NOT_OBSERVED,
    REFERENCE,
    ROWS,
    TaskPlan,
    TaskStudies,
    budget_named,
    claim_cells,
    render_markdown,
    sweep_part,
    task_parts,
)
from lrlab.study import plan as study_plan

# ------------------------------------------------------------------------------------------------ contrasts


def test_a_two_group_contrast_is_welchs_test() -> None:
    a, b = [1.0, 1.2, 0.9, 1.1], [0.7, 0.8, 0.75]
    c, w = contrast([(1, a), (-1, b)]), compare(a, b)
    assert (c.estimate, c.ci_low, c.ci_high, c.p_value) == pytest.approx((w.diff, w.ci_low, w.ci_high, w.p_value))


def test_a_difference_in_differences_and_its_log_form() -> None:
    cold_l, warm_l, cold_s, warm_s = [2.0, 2.2], [1.0, 1.2], [1.1, 1.3], [1.0, 1.2]
    c = contrast([(1, cold_l), (-1, warm_l), (-1, cold_s), (1, warm_s)])
    assert c.estimate == pytest.approx(0.9)  # warmup's effect: 1.0 at the large batch, 0.1 at the small one
    # four groups of two with variance 0.02 each: se^2 = 4 * 0.02 / 2, df = 0.04^2 / (4 * 0.01^2) = 4
    assert c.df == pytest.approx(4) and c.ci_low == pytest.approx(0.9 - 2.776445 * 0.2, rel=1e-5)
    log = contrast([(1, cold_l), (-1, warm_l), (-1, cold_s), (1, warm_s)], log=True)
    assert log.estimate == pytest.approx(math.log(2.1 / 1.1) - math.log(1.2 / 1.1))
    assert not contrast([(1, [1.0]), (-1, [1.0, 2.0])]).testable


# ------------------------------------------------------------------------------------------------ the plan


def test_the_parts_of_a_task() -> None:
    budget = budget_named("small")
    parts = task_parts(budget, "digits-mlp", "digits-mlp", "sgd", 0.1, 64)
    assert [p.kind for p in parts] == ["schedules", "schedulefree", "batch-16", "batch-512"]
    schedules, free, b16, b512 = (p.config for p in parts)
    assert schedules.peak_lr == "tune" and schedules.seeds == 3 and schedules.epochs == 10
    assert set(schedules.schedules) == set(study_plan.SCHEDULES)
    assert free.optimizer.name == "sgd-schedulefree" and free.peak_lr == "tune"
    assert (b16.batch_size, b16.optimizer.lr, b512.optimizer.lr) == (16, pytest.approx(0.025), pytest.approx(0.8))
    assert b512.peak_lr is None and parts[2].directory == "digits-mlp/batch-16"
    transformer = task_parts(budget, "charlm-transformer", "charlm-transformer", "adamw", 0.01, 16)
    assert [p.kind for p in transformer] == ["schedules"] and transformer[0].config.peak_lr is None
    other = task_parts(budget_named("full"), "mnist1d-cnn", "x", "adam", 0.01, 32)
    assert other[1].config.optimizer.name == "adamw-schedulefree"


def test_the_lr_sweep_carries_the_grid_from_100x_below_to_1000x_above_the_tuned_lr() -> None:
    budget = budget_named("full")
    part = sweep_part(budget, "digits-mlp", "digits", 0.1, [0.01, 0.1, 1.0], range(1000, 1003))
    assert part is not None and (part.kind, part.directory) == ("lr-sweep", "digits/lr-sweep")
    config = part.config
    assert config.peak_lrs == pytest.approx({"lr=0.001": 0.001, "lr=0.00316": 0.00316, "lr=3.16": 3.16, "lr=10": 10,
                                             "lr=31.6": 31.6, "lr=100": 100}, rel=1e-3)
    assert set(config.schedules.values()) == {"constant()"} and config.seeds == [1000, 1001, 1002]
    assert config.peak_lr is None and config.epochs is None  # the task's epochs, as the grid had
    assert sweep_part(budget, "digits-mlp", "digits", 0.1, [0.001, 0.1, 100.0], [1000]) is None
    rounded = sweep_part(budget, "x", "x", 0.00562, [0.00178, 0.01], [1000])  # 0.00562 / √10 = 0.001777...
    assert rounded is not None and "lr=0.00178" not in rounded.config.peak_lrs


def test_an_unknown_budget_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"^budget='huge' is invalid: expected one of \['tiny', 'small', 'full'\]$"):
        budget_named("huge")


# ------------------------------------------------------------------------------------------------ verdicts


def _runs(name: str, spec: str, losses: list[float], diverged: int = 0) -> ScheduleRuns:
    def run(seed: int, loss: float, status: str) -> RunSeries:
        return RunSeries(name, spec, seed, status, None, None, {}, np.array([0.1, 0.1]), None, np.array([1.0, 1.0]),
                         np.array([1]), np.array([loss]), None)

    return ScheduleRuns(name, spec, tuple([run(i, v, "done") for i, v in enumerate(losses)] +
                                          [run(len(losses) + i, math.nan, "diverged") for i in range(diverged)]))


def _study(task: str, schedules: list[ScheduleRuns], tuned: dict | None = None) -> Study:
    return Study(Path("."), {}, {"name": task}, {}, None, {s.name: s for s in schedules}, tuned=tuned)


def _point(lr: float, losses: list[float | None]) -> dict:
    return {"lr": lr, "val_loss": losses, "diverged": sum(v is None for v in losses)}


def test_the_lr_sweep_claims_and_the_post_ln_reference() -> None:
    tuned = {"constant": {"peak_lr": 0.1, "points": [_point(0.01, [0.9, 0.95]), _point(0.1, [0.3, 0.31]),
                                                     _point(1.0, [None, 0.8])]}}
    mlp = _study("mlp", [_runs("constant", "constant()", [0.5, 0.52]), _runs("cosine", "cosine()", [0.4, 0.42]),
                         _runs("warmup-cosine", "warmup(frac=0.05) >> cosine()", [0.39, 0.41])], tuned)
    post = _study("charlm-transformer", [_runs("cosine", "cosine()", [3.0, 3.1]),
                                         _runs("warmup-cosine", "warmup(frac=0.05) >> cosine()", [2.0, 2.1])])
    cells = claim_cells([TaskStudies("mlp", mlp), TaskStudies("charlm-transformer", post)])
    assert len(cells) == 2 * len(ROWS)
    by = {(c.row, c.task): c for c in cells}
    assert by[("6a", "mlp")].verdict == "supported" and "1/2 runs at LR 1" in by[("6a", "mlp")].observed
    assert by[("6b", "mlp")].verdict == "supported" and by[("6b", "mlp")].effect == pytest.approx(0.305 - 0.925)
    assert by[("6a", "charlm-transformer")].verdict == NOT_MEASURED  # not tuned: no grid
    assert by[("8", "charlm-transformer")].verdict == REFERENCE
    assert by[("8", "mlp")].verdict == "supported" and by[("8", "mlp")].effect > 0
    assert by[("10", "mlp")].verdict == NOT_MEASURED and "schedule-free was not run" in by[("10", "mlp")].observed


def test_without_divergence_in_the_grid_too_large_is_not_observed() -> None:
    tuned = {"constant": {"peak_lr": 0.1, "points": [_point(0.1, [0.3, 0.31]), _point(1.0, [0.8, 0.85])]}}
    study = _study("mlp", [_runs("constant", "constant()", [0.5, 0.52])], tuned)
    cell = next(c for c in claim_cells([TaskStudies("mlp", study)]) if c.row == "6a")
    assert cell.verdict == NOT_OBSERVED and "no run diverged, up to 1 (10× the tuned LR)" in cell.observed


def test_the_sweep_above_the_grid_shows_where_a_constant_lr_diverges() -> None:
    tuned = {"constant": {"peak_lr": 0.1, "points": [_point(0.1, [0.3, 0.31]), _point(1.0, [0.8, 0.85])]}}
    study = _study("mlp", [_runs("constant", "constant()", [0.5, 0.52])], tuned)
    sweep = Study(Path("."), {"peak_lrs": {"lr=0.01": 0.01, "lr=0.0316": 0.0316, "lr=3.16": 3.16, "lr=10": 10.0}},
                  {"name": "mlp"}, {}, None,
                  {"lr=0.0316": _runs("lr=0.0316", "constant()", [0.9, 0.91]),
                   "lr=0.01": _runs("lr=0.01", "constant()", [1.4, 1.4]),
                   "lr=3.16": _runs("lr=3.16", "constant()", [1.9, 2.0]),
                   "lr=10": _runs("lr=10", "constant()", [], diverged=2)})
    cells = claim_cells([TaskStudies("mlp", study, sweep=sweep)])
    cell = next(c for c in cells if c.row == "6a")
    assert cell.verdict == "supported" and cell.n == "2/2" and cell.effect == 1.0
    assert f"| 6a | {ROWS['6a']} | **supported** +1 |" in render_markdown(cells).splitlines()
    assert cell.observed.startswith("Grid and sweep 0.01, 0.0316, 0.1, 1, 3.16, 10 (tuned LR 0.1): 2/2 runs at LR 10")
    slow = next(c for c in claim_cells([TaskStudies("mlp", study, sweep=sweep)]) if c.row == "6b")
    assert slow.verdict == "supported" and slow.effect == pytest.approx(0.305 - 1.4)
    assert slow.observed.startswith("Tuned LR 0.1 against 0.01 (10× lower;")


def test_schedule_free_at_a_far_higher_lr_gets_a_weight_decay_caveat() -> None:
    def study(name: str, lr: float, losses: list[float], decay: float) -> Study:
        return Study(Path("."), {"peak_lrs": {name: lr}}, {"name": "mlp"}, {}, None,
                     {name: _runs(name, "constant()", losses)}, optimizer={"weight_decay": decay})

    for decay, caveat in ((2e-3, True), (0.0, False)):
        tasks = TaskStudies("mlp", study("cosine", 0.4, [0.7, 0.72], decay),
                            schedulefree=study("sgd-schedulefree", 13.2, [0.6, 0.61], decay))
        cell = next(c for c in claim_cells([tasks]) if c.row == "10")
        assert cell.verdict == "contradicted"
        assert ("33× stronger on the schedule-free side" in cell.observed) is caveat, cell.observed


# ------------------------------------------------------------------------------------------------ end to end


def test_a_tiny_budget_runs_end_to_end_and_fills_every_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("schedulefree")
    tiny = budget_named("tiny")
    plan = TaskPlan(schedules=("constant", "cosine", "warmup-cosine"), epochs=1, batch=True)
    monkeypatch.setitem(study_plan.BUDGETS, "tiny", study_plan.Budget(
        "tiny", 2, tiny.tune, {"digits-mlp": plan}, bracket=tiny.bracket))
    out = tmp_path / "claims"
    assert main(["claims", "--budget", "tiny", "--out", str(out)]) == 0
    for part in ("digits-mlp", "digits-mlp/lr-sweep", "digits-mlp/schedulefree", "digits-mlp/batch-16",
                 "digits-mlp/batch-512"):
        assert (out / part / "lrlab.sqlite").is_file()
    for figure in ("claims_lr_sweep.png", "claims_schedules.png"):
        assert (out / figure).stat().st_size > 10_000
    assert (out / "digits-mlp" / "report.html").is_file()
    with open(out / "claims.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["row"], r["task"]) for r in rows] == [(row, "digits-mlp") for row in ROWS]
    verdicts = {r["row"]: r["verdict"] for r in rows}
    assert verdicts["4"] == verdicts["8"] == NOT_MEASURED  # no StepLR; no Post-LN Transformer in this run
    assert verdicts["7"] not in (NOT_OBSERVED, NOT_MEASURED) and verdicts["10"] not in (NOT_OBSERVED, NOT_MEASURED)
    table = (out / "claims.md").read_text(encoding="utf-8").splitlines()
    assert table[0] == "| # | claim | digits-mlp |" and len(table) == 2 + len(ROWS)
    assert table[2 + list(ROWS).index("4")] == f"| 4 | {ROWS['4']} | not measured |"
    page = (out / "claims.html").read_text(encoding="utf-8")
    assert all(claim in page for claim in ROWS.values()) and page.count("data:image/png;base64,") == 2
    capsys.readouterr()
    assert main(["claims", "--budget", "tiny", "--out", str(out)]) == 0  # resumed: nothing trains again
    assert re.findall(r"(\d+) to train|(nothing) to train", capsys.readouterr().out) == [("", "nothing")] * 5

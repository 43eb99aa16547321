"""The report: summary numbers, claims and verdicts, figures and the HTML page, from synthetic stores."""

from __future__ import annotations

import base64
import csv
import html
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from rich.console import Console
from scipy import stats as sps

from lrlab.config import parse_config
from lrlab.errors import ConfigError
from lrlab.report import (
    CONTRADICTED,
    NOT_TESTABLE,
    SUMMARY_COLUMNS,
    SUPPORTED,
    TIE,
    compare,
    describe,
    epochs_to_target,
    evaluate_claims,
    load_study,
    make_report,
    summary_rows,
    summary_table,
)
from lrlab.report.overfitting import OVERFIT_RULE, overfits
from lrlab.report.summary import RANKING_RULE
from lrlab.runner import plan_sweep, run_sweep
from lrlab.runs import RunMetrics
from lrlab.store import Store
from lrlab.tune import GridPoint, tune_result
from processes import alive

EPOCHS = 6
STEPS_PER_EPOCH = 8
PEAK_LR = 0.1


# ---- synthetic stores ----------------------------------------------------------------------------------------
def constant_lr(t: int, total: int) -> float:
    return PEAK_LR


def cosine_lr(t: int, total: int) -> float:
    return 0.5 * PEAK_LR * (1 + math.cos(math.pi * t / total))


def fake_run(final_loss: float, *, lr: Callable[[int, int], float] = constant_lr, accuracy: Sequence[float] | None = (),
             diverge_epoch: int | None = None, momentum: float | None = None, start_loss: float = 2.0,
             epochs: int = EPOCHS, wall_s: float = 1.0, minimum: float | None = None) -> RunMetrics:
    """A run whose val loss falls from ``start_loss`` (epoch 1) to ``final_loss`` (last epoch); with ``minimum``,
    it falls to ``minimum`` at epoch ``epochs // 2`` and rises linearly to ``final_loss`` after it (overfitting).

    ``accuracy=()`` derives an accuracy from the loss, None records none (a non-classification task), a sequence
    gives it per epoch. ``diverge_epoch`` stops the run during that epoch with an exploding loss.
    """
    total = epochs * STEPS_PER_EPOCH
    last = total if diverge_epoch is None else (diverge_epoch - 1) * STEPS_PER_EPOCH + 3
    lrs = [lr(t, total) for t in range(last)]
    losses = [start_loss * (1 - 0.5 * t / total) for t in range(last)]
    if diverge_epoch is not None:
        losses[-1] = 1e6
    val_epochs = epochs if diverge_epoch is None else diverge_epoch - 1
    records = []
    for e in range(1, val_epochs + 1):
        val = final_loss + (start_loss - final_loss) * ((epochs - e) / (epochs - 1)) ** 2
        if minimum is not None:
            mid = epochs // 2
            val = (minimum + (start_loss - minimum) * ((mid - e) / (mid - 1)) ** 2 if e <= mid
                   else minimum + (final_loss - minimum) * (e - mid) / (epochs - mid))
        if accuracy is None:
            acc = None
        elif accuracy == ():
            acc = max(0.0, 1 - val / 3)
        else:
            acc = accuracy[e - 1]
        records.append({"epoch": e, "step": e * STEPS_PER_EPOCH, "lr": lrs[e * STEPS_PER_EPOCH - 1],
                        "train_loss": losses[e * STEPS_PER_EPOCH - 1], "val_loss": val, "val_acc": acc})
    return RunMetrics(lr=lrs, momentum=[momentum] * last, train_loss=losses, epochs=records,
                      diverged_step=None if diverge_epoch is None else last - 1, wall_s=wall_s)


def fill_store(directory: Path, schedules: dict[str, tuple[str, list[RunMetrics]]], *, task: str = "digits-mlp",
               description: str = "Synthetic digits for tests.", target_acc: float | None = None,
               title: str | None = None, peak_lr: dict | None = None, running: Sequence[tuple[str, str, int]] = (),
               horizon: dict | None = None) -> Path:
    """Write a config like the runner's and one finished run per (schedule, seed) into a store."""
    store = Store(directory)
    n_seeds = max(len(runs) for _, runs in schedules.values())
    config = {"task": task, "title": title, "epochs": EPOCHS, "batch_size": 32,
              "optimizer": {"name": "sgd", "lr": PEAK_LR, "momentum": 0.9}, "seeds": list(range(n_seeds)),
              "schedules": {name: spec for name, (spec, _) in schedules.items()}, "target_acc": target_acc}
    store.set_meta("config", config)
    store.set_meta("task", {"name": task, "description": description, "info": {"n_train": "1000"}})
    env = {"lrlab": "0.1.0", "torch": "2.13.0", "python": "3.11", "platform": "test", "git_revision": "abc123"}
    store.set_meta("env", env)
    if peak_lr is not None:
        store.set_meta("peak_lr", peak_lr)
    if horizon is not None:
        store.set_meta("horizon", horizon)
    for name, (spec, runs) in schedules.items():
        for seed, metrics in enumerate(runs):
            store.finish_run(store.start_run(name, spec, seed, env), metrics)
    for name, spec, seed in running:
        store.start_run(name, spec, seed, env)
    store.close()
    return directory


def losses_runs(finals: Sequence[float], **kwargs) -> list[RunMetrics]:
    return [fake_run(f, **kwargs) for f in finals]


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, object]:
    """A classification study with every kind of schedule, a diverged run and a hostile name; reported once."""
    directory = tmp_path_factory.mktemp("full")
    schedules = {
        "constant": ("constant()", losses_runs([0.60, 0.62, 0.64, 0.61, 0.63], momentum=0.9)),
        "cosine": ("cosine()", losses_runs([0.30, 0.32, 0.31, 0.33, 0.29], lr=cosine_lr, momentum=0.9)),
        "step": ("step(every_epochs=2, gamma=0.1)",
                 losses_runs([0.40, 0.42, 0.41, 0.43, 0.39], lr=lambda t, n: PEAK_LR * 0.1 ** (t // 16))),
        "plateau": ("plateau(patience=2, factor=0.5)", losses_runs([0.50, 0.52, 0.51, 0.53, 0.49])),
        "onecycle": ("onecycle()", [fake_run(0.35, lr=cosine_lr, accuracy=[0.5, 0.85, 0.9, 0.9, 0.9, 0.9])] * 5),
        "warmup-cosine": ("warmup(epochs=2) >> cosine()",
                          losses_runs([0.20, 0.22, 0.21, 0.23, 0.19], lr=cosine_lr)),
        "<script>alert(1)</script>": ("constant(lr=0.5) >> <b>x</b>",
                                      [fake_run(0.9), fake_run(0.9, diverge_epoch=3), fake_run(0.95)]),
    }
    fill_store(directory, schedules, target_acc=0.8, title="Schedules & <friends>", peak_lr={"sgd": 0.1},
               running=[("cosine", "cosine()", 7)])
    return directory, make_report(directory)


# ---- statistics -----------------------------------------------------------------------------------------------
def test_describe_gives_mean_std_and_student_t_ci():
    s = describe([1.0, 2.0, 3.0])
    half = sps.t.ppf(0.975, 2) / math.sqrt(3)
    assert (s.n, s.mean, s.std) == (3, 2.0, 1.0)
    assert s.ci_low == pytest.approx(2 - half) and s.ci_high == pytest.approx(2 + half)
    one = describe([5.0])
    assert one.mean == 5.0 and math.isnan(one.std) and math.isnan(one.ci_low)


def test_compare_welch_difference_ci_and_cohens_d():
    a, b = [1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.5]
    c = compare(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert c.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert c.p_value == pytest.approx(ref.pvalue)
    assert c.ci_low < c.diff < c.ci_high
    pooled = math.sqrt((3 * np.var(a, ddof=1) + 3 * np.var(b, ddof=1)) / 6)
    assert c.cohens_d == pytest.approx(c.diff / pooled)
    same = compare([1.0, 1.0], [1.0, 1.0])
    assert same.p_value == 1.0 and same.cohens_d == 0.0
    assert not compare([1.0], [2.0, 3.0]).testable


seed_values = st.lists(st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False), min_size=2, max_size=10)


@given(seed_values, seed_values)
def test_welch_and_the_t_interval_equal_scipy_stats_bit_for_bit(a, b):
    """stats.py uses scipy.special (a second cheaper to import); the numbers stay scipy.stats's, to the bit."""
    assume(np.ptp(a) > 0 or np.ptp(b) > 0)  # two constant samples are decided without a test
    c = compare(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = sps.ttest_ind(a, b, equal_var=False)
        ci = ref.confidence_interval(0.95)
    np.testing.assert_array_equal([c.ci_low, c.ci_high, c.p_value], [ci.low, ci.high, ref.pvalue])
    half = float(sps.t.ppf(0.975, len(a) - 1)) * float(np.std(a, ddof=1)) / math.sqrt(len(a))
    np.testing.assert_array_equal([describe(a).ci_low, describe(a).ci_high], [np.mean(a) - half, np.mean(a) + half])


def test_epochs_to_target_is_first_epoch_at_or_above_target():
    assert epochs_to_target([1, 2, 3], [0.5, 0.8, 0.9], 0.8) == 2
    assert epochs_to_target([1, 2, 3], [0.5, 0.6, 0.7], 0.8) is None
    assert epochs_to_target([1, 2], None, 0.8) is None


# ---- summary --------------------------------------------------------------------------------------------------
def test_summary_ranks_by_final_val_loss_with_means_stds_and_csv(full_report):
    _, result = full_report
    rows = result.rows
    names = [r["schedule"] for r in rows]
    assert names[:3] == ["warmup-cosine", "cosine", "onecycle"]
    assert names.index("step") < names.index("plateau") < names.index("constant")
    cosine = rows[1]
    assert cosine["final_val_loss_mean"] == pytest.approx(0.31)
    assert cosine["final_val_loss_std"] == pytest.approx(np.std([0.30, 0.32, 0.31, 0.33, 0.29], ddof=1))
    assert cosine["final_val_loss_ci_low"] < 0.31 < cosine["final_val_loss_ci_high"]
    assert (cosine["seeds"], cosine["diverged"], cosine["rank"]) == (5, 0, 2)
    assert cosine["final_val_acc_mean"] == pytest.approx(1 - 0.31 / 3)
    assert cosine["wall_s_mean"] == pytest.approx(1.0)

    with result.csv.open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == SUMMARY_COLUMNS
        table = list(reader)
    required = {"schedule", "spec", "seeds", "diverged", "final_val_loss_mean", "final_val_loss_std",
                "final_val_acc_mean", "final_val_acc_std", "best_val_acc_mean", "epochs_to_target_mean", "wall_s_mean"}
    assert required <= set(SUMMARY_COLUMNS)
    assert [r["schedule"] for r in table] == names
    assert float(table[1]["final_val_loss_mean"]) == pytest.approx(0.31)


def test_diverged_runs_are_counted_and_excluded(full_report):
    _, result = full_report
    row = next(r for r in result.rows if r["schedule"] == "<script>alert(1)</script>")
    assert (row["seeds"], row["diverged"]) == (3, 1)
    assert row["final_val_loss_mean"] == pytest.approx(0.925)  # the two runs that trained to the end
    assert any("excluded" in n for n in result.notes)


def test_all_diverged_schedule_ranks_last_and_loses_its_claim(tmp_path):
    fill_store(tmp_path, {
        "constant": ("constant()", losses_runs([0.6, 0.62, 0.61])),
        "hot": ("cosine()", [fake_run(0.1, lr=cosine_lr, diverge_epoch=2) for _ in range(3)]),
    })
    study = load_study(tmp_path)
    rows = summary_rows(study)
    assert [r["schedule"] for r in rows] == ["constant", "hot"]
    assert rows[1]["rank"] is None and rows[1]["final_val_loss_mean"] is None and rows[1]["diverged"] == 3
    [decay] = [c for c in evaluate_claims(study) if c.number == 1]
    assert decay.verdict == CONTRADICTED and "diverged" in decay.observed
    result = make_report(tmp_path)
    assert any("Every run diverged for: hot" in n for n in result.notes)


def test_a_mostly_diverged_schedule_never_ranks_first_on_its_survivors(tmp_path):
    fill_store(tmp_path, {
        "steady": ("constant()", losses_runs([0.6, 0.62, 0.61, 0.6, 0.61])),
        "lucky": ("cosine()", [fake_run(0.1), *(fake_run(0.1, diverge_epoch=2) for _ in range(4))]),
    })
    rows = summary_rows(load_study(tmp_path))
    assert [r["schedule"] for r in rows] == ["steady", "lucky"]  # 0.1 beats 0.6, but 4 of 5 seeds diverged
    assert rows[1]["rank"] == 2 and rows[1]["final_val_loss_mean"] == pytest.approx(0.1)
    assert any(RANKING_RULE in n for n in make_report(tmp_path).notes)


def test_each_schedule_at_its_own_peak_lr_is_shown_with_the_sensitivity_figure(tmp_path):
    fill_store(tmp_path, {"constant": ("constant()", losses_runs([0.6, 0.62])),
                          "cosine": ("cosine()", losses_runs([0.5, 0.52]))},
               horizon={"total_steps": 50, "steps_per_epoch": 10, "base_lr": 0.1, "beta2": None})
    with Store(tmp_path) as store:
        store.set_meta("config", {**store.meta("config"), "peak_lr": "tune", "peak_lrs": {"cosine": 0.3}})
        grid = tune_result([GridPoint(0.1, (0.7, 0.71)), GridPoint(0.3, (0.5, 0.52)), GridPoint(1.0, (0.9, 0.95))])
        store.set_meta("tuned", {"cosine": grid.to_dict(), "constant": grid.to_dict()})
    result = make_report(tmp_path)
    assert {r["schedule"]: r["peak_lr"] for r in result.rows} == {"cosine": 0.3, "constant": 0.1}
    assert "lr_sensitivity" in result.figures and result.figures["lr_sensitivity"].read_bytes()[:4] == b"\x89PNG"
    assert any("claims compare the schedules at their tuned peaks" in n for n in result.notes)
    assert "lr=0.3 " in result.recommendation.code or "base_lr=0.3" in result.recommendation.code
    header = (tmp_path / "summary.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["rank", "schedule", "spec", "peak_lr"]


def test_epochs_to_target_in_summary_and_onecycle_claim(full_report):
    _, result = full_report
    onecycle = next(r for r in result.rows if r["schedule"] == "onecycle")
    assert (onecycle["epochs_to_target_mean"], onecycle["epochs_to_target_reached"]) == (2.0, 5)
    constant = next(r for r in result.rows if r["schedule"] == "constant")
    # constant's accuracy 1 - val/3 reaches 0.8 only when val <= 0.6: at most at the last epoch, or never
    assert constant["epochs_to_target_reached"] <= 5
    [claim] = [c for c in result.claims if c.number == 2]
    assert claim.verdict == SUPPORTED and claim.schedules == ("onecycle", "constant")


def test_rich_table_shows_names_literally(full_report):
    _, result = full_report
    rows = [dict(result.rows[0], schedule="[red]x[/red]")]
    console = Console(record=True, width=200)
    console.print(summary_table(rows))
    assert "[red]x[/red]" in console.export_text()


# ---- overfitting ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("final", "std", "best", "expected"), [
    (1.10, 0.02, 1.0, True), (1.04, 0.01, 1.0, False),  # 10% up overfits, 4% does not
    (1.10, 0.2, 1.0, False), (1.10, None, 1.0, True),  # within seed noise; one seed: the margin alone
    (None, None, 1.0, None),
])
def test_the_overfitting_rule_needs_the_margin_and_the_seed_noise(final, std, best, expected):
    assert overfits(final, std, best) is expected


def test_overfitting_is_diagnosed_and_the_recommendation_ranks_by_the_best_epoch(tmp_path):
    fill_store(tmp_path, {
        "step": ("step(every_epochs=2, gamma=0.1)", losses_runs([0.50, 0.51, 0.49], minimum=0.49)),
        "cosine": ("cosine()", losses_runs([0.60, 0.61, 0.59], minimum=0.40, lr=cosine_lr)),
        "constant": ("constant()", losses_runs([0.80, 0.82, 0.81], minimum=0.45)),
    })
    result = make_report(tmp_path)
    rows = {r["schedule"]: r for r in result.rows}
    assert [r["schedule"] for r in result.rows] == ["step", "cosine", "constant"]  # by final loss
    assert rows["cosine"]["best_val_loss_mean"] == pytest.approx(0.40)
    assert rows["cosine"]["best_val_loss_epoch_mean"] == EPOCHS // 2
    assert [rows[n]["overfits"] for n in ("step", "cosine", "constant")] == [False, True, True]
    assert rows["cosine"]["train_val_gap_mean"] == pytest.approx(0.60 - rows["cosine"]["final_train_loss_mean"])
    note = next(n for n in result.notes if "overfit" in n)
    assert note.startswith("2 of 3 schedules overfit (cosine, constant): validation loss bottoms out near epoch 3")
    assert "with early stopping (each run's best epoch) the ranking is: cosine 0.4 (epoch 3), constant" in note
    assert "by final loss “step” ranks first instead" in note and OVERFIT_RULE in note
    rec = result.recommendation
    assert (rec.schedule, rec.metric) == ("cosine", "best-epoch validation loss")
    assert "with early stopping" in rec.text and "“step” ranks first instead (0.5)" in rec.text
    with result.csv.open() as f:
        table = {r["schedule"]: r for r in csv.DictReader(f)}
    assert float(table["cosine"]["best_val_loss_mean"]) == pytest.approx(0.40)
    assert float(table["cosine"]["best_val_loss_epoch_mean"]) == EPOCHS // 2
    assert (table["step"]["overfits"], table["cosine"]["overfits"]) == ("False", "True")
    page = result.html.read_text()
    assert "<h2>Overfitting</h2>" in page and "+50.0%" in page  # cosine: 0.60 over 0.40


def test_overfitting_that_does_not_change_the_pick_is_named_and_the_pick_kept(tmp_path):
    fill_store(tmp_path, {
        "cosine": ("cosine()", losses_runs([0.40, 0.41, 0.39], lr=cosine_lr)),
        "constant": ("constant()", losses_runs([0.80, 0.82, 0.81], minimum=0.45)),
    })
    rec = make_report(tmp_path).recommendation
    assert (rec.schedule, rec.metric) == ("cosine", "final validation loss")
    assert rec.text.endswith("and the lowest best-epoch validation loss too (0.4): overfitting (“constant”) does "
                             "not change the pick.")


def test_a_study_that_does_not_overfit_says_so_and_both_rankings_agree(full_report):
    _, result = full_report
    assert not any(r["overfits"] for r in result.rows)
    assert any(n.startswith("No schedule overfits") for n in result.notes)
    assert not any("bottoms out" in n for n in result.notes)
    rec = result.recommendation
    assert rec.metric == "final validation loss"
    assert "No schedule overfits, and by best-epoch validation loss it ranks first too." in rec.text


def _study_of_mnist1d_mlp(out: Path, epochs: int) -> object:
    config = parse_config({"task": "mnist1d-mlp", "epochs": epochs, "seeds": 2, "trainer": "sequential",
                           "schedules": {"constant": "constant()"}})
    with plan_sweep(config, out) as sweep:
        run_sweep(sweep)
    return make_report(out)


def test_constant_lr_for_30_epochs_on_mnist1d_mlp_is_reported_as_overfitting(tmp_path, one_thread):
    long = _study_of_mnist1d_mlp(tmp_path / "long", 30)
    assert long.rows[0]["overfits"]
    assert any(n.startswith("All schedules overfit: validation loss bottoms out") for n in long.notes)
    assert long.recommendation.text.endswith("overfitting (every schedule) does not change the pick. It overfits "
                                             "itself: keep the weights of its best epoch (about epoch "
                                             f"{long.rows[0]['best_val_loss_epoch_mean']:.0f} here).")
    short = _study_of_mnist1d_mlp(tmp_path / "short", 3)  # still learning: its loss falls to the end
    assert not short.rows[0]["overfits"]
    assert not any("bottoms out" in n for n in short.notes)


# ---- claims ---------------------------------------------------------------------------------------------------
def test_claims_supported_for_clear_effects(full_report):
    _, result = full_report
    verdicts = {(c.number, c.schedules): c.verdict for c in result.claims}
    assert verdicts[(1, ("cosine", "constant"))] == SUPPORTED
    assert verdicts[(1, ("warmup-cosine", "constant"))] == SUPPORTED
    assert verdicts[(1, ("step", "constant"))] == SUPPORTED
    assert verdicts[(3, ("plateau", "constant"))] == SUPPORTED
    assert verdicts[(4, ("cosine", "step"))] == SUPPORTED
    # warmup >> cosine vs cosine: 0.21 vs 0.31 with the same spread over 5 seeds
    claim5 = next(c for c in result.claims if c.number == 5)
    assert claim5.schedules == ("warmup-cosine", "cosine") and claim5.verdict == SUPPORTED
    assert {c.verdict for c in result.claims} <= {SUPPORTED, CONTRADICTED, TIE, NOT_TESTABLE}
    supported = next(c for c in result.claims if c.schedules == ("cosine", "constant"))
    assert "95% CI" in supported.observed and "p = " in supported.observed and "Cohen's d" in supported.observed
    # the constant-like hostile schedule does not decay: it is not part of claim 1
    assert all("<script>" not in c.schedules[0] for c in result.claims if c.number == 1)


def test_identical_distributions_tie(tmp_path):
    values = [0.50, 0.55, 0.45, 0.52, 0.48]
    fill_store(tmp_path, {
        "constant": ("constant()", losses_runs(values)),
        "cosine": ("cosine()", losses_runs(values[::-1], lr=cosine_lr)),
        "step": ("step(every_epochs=2)", losses_runs([0.51, 0.46, 0.49, 0.54, 0.50], lr=cosine_lr)),
    })
    claims = evaluate_claims(load_study(tmp_path))
    by_number = {c.number: c for c in claims}
    assert by_number[1].verdict == TIE and "within seed noise" in by_number[1].observed
    assert by_number[4].verdict == TIE
    for number in (2, 3, 5):  # no onecycle/target, no plateau, no warmup pair
        assert by_number[number].verdict == NOT_TESTABLE and by_number[number].observed


def test_contradicted_when_baseline_is_clearly_better(tmp_path):
    fill_store(tmp_path, {
        "constant": ("constant()", losses_runs([0.30, 0.31, 0.32, 0.29])),
        "plateau": ("plateau(patience=1)", losses_runs([0.60, 0.61, 0.62, 0.59])),
    })
    [claim3] = [c for c in evaluate_claims(load_study(tmp_path)) if c.number == 3]
    assert claim3.verdict == CONTRADICTED


def test_warmup_by_name_on_a_task_without_accuracy(tmp_path):
    fill_store(tmp_path, {
        "no-warmup": ("constant()", [fake_run(3.3, start_loss=3.4, accuracy=None) for _ in range(3)]),
        "warmup": ("warmup(steps=100) >> inverse_sqrt()",
                   [fake_run(f, accuracy=None, lr=cosine_lr) for f in (1.9, 2.0, 2.1)]),
    }, task="charlm-transformer", description="Characters of the stdlib.")
    result = make_report(tmp_path)
    claim5 = next(c for c in result.claims if c.number == 5)
    assert claim5.verdict == SUPPORTED and claim5.schedules == ("warmup", "no-warmup")
    assert "3/3 runs trained to the end stalled" in claim5.observed
    claim2 = next(c for c in result.claims if c.number == 2)
    assert claim2.verdict == NOT_TESTABLE
    assert "val_acc" not in result.figures and len(result.figures) == 4
    assert all(r["final_val_acc_mean"] is None for r in result.rows)
    assert any("no accuracy" in n for n in result.notes)


def test_single_seed_has_no_ci_and_claims_are_not_testable(tmp_path):
    fill_store(tmp_path, {"constant": ("constant()", [fake_run(0.6)]),
                          "cosine": ("cosine()", [fake_run(0.3, lr=cosine_lr)])})
    result = make_report(tmp_path)
    assert all(r["final_val_loss_ci_low"] is None and r["final_val_loss_std"] is None for r in result.rows)
    claim1 = next(c for c in result.claims if c.number == 1)
    assert claim1.verdict == NOT_TESTABLE and "single seed" in claim1.observed
    assert any("Only one seed" in n for n in result.notes)


def test_running_runs_are_ignored_with_a_note(full_report):
    _, result = full_report
    assert all(r["seeds"] <= 5 for r in result.rows)
    assert any("not finished" in n and "cosine (seed 7)" in n for n in result.notes)


def test_schedule_without_finished_runs_is_noted(tmp_path):
    fill_store(tmp_path, {"constant": ("constant()", losses_runs([0.6, 0.61])),
                          "cosine": ("cosine()", [])}, running=[("cosine", "cosine()", 0)])
    result = make_report(tmp_path)
    assert [r["schedule"] for r in result.rows] == ["constant"]
    assert any("No finished run yet for: cosine" in n for n in result.notes)
    assert {c.verdict for c in result.claims} == {NOT_TESTABLE}


def test_missing_store_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no results"):
        make_report(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


# ---- HTML -----------------------------------------------------------------------------------------------------
class Structure(HTMLParser):
    """Collects the tags, attributes and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title:
            self.title += data


def test_report_html_is_self_contained(full_report):
    directory, result = full_report
    page = result.html.read_text(encoding="utf-8")
    assert result.html == directory / "report.html"
    parser = Structure()
    parser.feed(page)
    names = [tag for tag, _ in parser.tags]
    assert parser.title == "Schedules & <friends>"
    assert names.count("table") >= 3 and "h1" in names
    images = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert len(images) >= 4 and len(images) == len(result.figures) == 5
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    text = " ".join(parser.text)
    for expected in ("digits-mlp", "Synthetic digits for tests.", "supported", "git_revision", "Peak learning rate",
                     "target_acc", "warmup(epochs=2) >> cosine()"):
        assert expected in text
    for name in ("lr", "train_loss", "val_loss", "val_acc", "final"):
        assert (directory / "figures" / f"{name}.png").is_file()



def test_user_strings_appear_only_escaped(full_report):
    _, result = full_report
    page = result.html.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<friends>" not in page


def test_a_loss_not_finite_from_step_0_in_every_run_points_at_the_data(tmp_path):
    nan_at_once = RunMetrics(lr=[PEAK_LR], momentum=[None], train_loss=[math.nan], epochs=[], diverged_step=0,
                             wall_s=0.1)  # what the trainer records when the first batch's loss is NaN
    fill_store(tmp_path, {"constant": ("constant()", [nan_at_once] * 2), "cosine": ("cosine()", [nan_at_once] * 2)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor a figure's warning (an empty legend)
        result = make_report(tmp_path)
    text = " ".join(result.notes)
    assert "not finite from the first step (step 0" in text and "Check the data" in text
    for wrong in ("Every run diverged", "Run more seeds", "records no accuracy"):  # what would mislead here
        assert wrong not in text
    assert result.recommendation is None
    # one run that trained is enough to make it a matter of schedules again
    fill_store(tmp_path / "mixed", {"constant": ("constant()", [nan_at_once, fake_run(0.5)]),
                                    "cosine": ("cosine()", [nan_at_once] * 2)})
    text = " ".join(make_report(tmp_path / "mixed").notes)
    assert "Every run diverged for: cosine" in text and "Check the data" not in text


# ---- a store is data, never code ------------------------------------------------------------------------------
HORIZON = {"total_steps": EPOCHS * STEPS_PER_EPOCH, "steps_per_epoch": STEPS_PER_EPOCH, "base_lr": PEAK_LR,
           "beta2": None}
EVIL = """\
import pathlib
pathlib.Path("imported.marker").write_text("evil.py was imported")
print("EVIL WAS IMPORTED")


def s(step):
    return 1.0
"""


NO_TORCH = """
import sys
from lrlab.cli import main

def torch_modules():
    return sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))

import lrlab.report
assert not torch_modules(), f"import lrlab.report imported {torch_modules()[:3]}"
assert main(["report", sys.argv[1]]) == 0
assert not torch_modules(), f"lrlab report imported {torch_modules()[:3]}"
"""


def test_report_never_imports_torch(tmp_path):
    """`lrlab report` on what a real `lrlab compare --peak-lr auto` stored (its LR range test figure too)."""
    from lrlab.cli import main

    out = tmp_path / "study"
    threads = torch.get_num_threads()
    try:
        assert main(["compare", "--task", "digits-mlp", "--epochs", "1", "--seeds", "1", "--schedules", "constant()",
                     "--peak-lr", "auto", "--no-report", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    result = subprocess.run([sys.executable, "-c", NO_TORCH, str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (out / "figures" / "lr_finder.png").is_file()


@pytest.mark.parametrize("path", ["evil:s", "this:s"])
def test_report_never_imports_a_module_named_in_the_store(tmp_path, path):
    """`lrlab report .` in a directory holding evil.py, with the winning spec fn(path=evil:s): nothing is run."""
    (tmp_path / "evil.py").write_text(EVIL)
    fill_store(tmp_path, {"mine": (f"fn(path={path})", losses_runs([0.2, 0.21, 0.22])),
                          "constant": ("constant()", losses_runs([0.6, 0.61, 0.62]))}, horizon=HORIZON)
    result = subprocess.run([sys.executable, "-m", "lrlab", "report", "."], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "imported.marker").exists()
    assert "EVIL" not in result.stdout + result.stderr
    assert "Beautiful is better than ugly" not in result.stdout + result.stderr  # `import this` prints the Zen
    assert f"which schedule? Use “mine” (fn(path={path}))" in result.stdout
    page = html.unescape((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert f"build('fn(path={path})', Horizon(total_steps=48" in page  # the code to use it, from the text



def test_the_recommended_lrlab_code_runs_as_printed(tmp_path):
    """The import and scheduler lines of the report's lrlab loop, run as printed, drive the winner's plan."""
    torch = pytest.importorskip("torch")
    fill_store(tmp_path, {"warm": ("warmup(epochs=2) >> cosine()", losses_runs([0.2, 0.21, 0.22])),
                          "constant": ("constant()", losses_runs([0.6, 0.61, 0.62]))}, horizon=HORIZON)
    rec = make_report(tmp_path).recommendation
    lines = [line for line in rec.code.splitlines() if line.startswith(("from lrlab", "scheduler ="))]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK_LR)
    namespace = {"optimizer": optimizer}
    exec("\n".join(lines), namespace)
    plan = namespace["build"](rec.spec, namespace["Horizon"](**HORIZON))
    assert rec.spec == "warmup(epochs=2) >> cosine()" and namespace["scheduler"].schedules == [plan.lr]
    assert optimizer.param_groups[0]["lr"] == plan.lr(0) == 0.0

def test_control_characters_in_a_store_are_escaped_on_the_terminal(tmp_path, capsys):
    from lrlab.cli import main

    fill_store(tmp_path, {"\x1b[2Jwiped": ('constant(lr="\x07")', losses_runs([0.2, 0.21])),
                          "constant": ("constant()", losses_runs([0.6, 0.61]))},
               running=[("\x1b]0;title\x07", "cosine()", 0)])
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07")
    assert r"\x1b[2Jwiped" in out and r'constant(lr="\x07")' in out and r"\x1b]0;title\x07 (seed 0)" in out


@pytest.mark.parametrize("fallback", [(), ("DejaVu Sans Mono",)])  # none installed; one (here: any installed font)
def test_figures_of_cjk_and_emoji_names_warn_nothing(tmp_path, capfd, monkeypatch, fallback):
    from lrlab import plotting
    from lrlab.plotting import Curve, draw_curves
    from lrlab.report import make_figures

    monkeypatch.setattr(plotting, "FALLBACK_FONTS", fallback)
    fill_store(tmp_path, {"余弦退火 🚀": ("cosine()", losses_runs([0.3, 0.31], lr=cosine_lr)),
                          "常数 📉": ("constant()", losses_runs([0.6, 0.61]))})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figures = make_figures(load_study(tmp_path), tmp_path)
        draw_curves([Curve("热身 🔥", [0.1, 0.2, 0.3])], tmp_path / "plot.png")
    assert all(path.is_file() for path in figures.values()) and (tmp_path / "plot.png").is_file()
    assert capfd.readouterr().err == ""


@pytest.mark.skipif(sys.platform != "linux", reason="figures are drawn in forked processes on Linux only")
def test_figures_drawn_in_parallel_equal_those_drawn_one_by_one(tmp_path, monkeypatch):
    from lrlab.report import drawing

    fill_store(tmp_path, {"constant": ("constant()", losses_runs([0.6, 0.61])),
                          "cosine": ("cosine()", losses_runs([0.3, 0.31], lr=cosine_lr))})
    study = load_study(tmp_path)
    drawn = {}
    for workers in (1, 3):
        monkeypatch.setattr(drawing, "_workers", lambda n, workers=workers: workers)
        paths = drawing.make_figures(study, tmp_path / str(workers))
        drawn[workers] = {name: path.read_bytes() for name, path in paths.items()}
    assert list(drawn[3]) == ["lr", "train_loss", "val_loss", "val_acc", "final"] and drawn[1] == drawn[3]


DIE_WITH_PARENT = """
import os, signal, sys
from lrlab.report import drawing, load_study

drawing._workers = lambda figures: 2
figures = drawing.FigureDrawing(load_study(sys.argv[1]), sys.argv[1])
print(*figures._pool._processes, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""



@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_figure_workers_die_with_their_parent(tmp_path):
    fill_store(tmp_path, {"constant": ("constant()", losses_runs([0.6, 0.61]))})
    with open(tmp_path / "pids", "w") as out:  # not a pipe: a worker left alive would hold it open
        code = subprocess.run([sys.executable, "-c", DIE_WITH_PARENT, str(tmp_path)], stdout=out, timeout=120)
    workers = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    assert code.returncode == -signal.SIGKILL and len(workers) == 2
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "a figure worker outlived its parent"


# ---- files are replaced in one step ----------------------------------------------------------------------------
def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("failing", ["figure", "csv", "html"])
def test_a_failed_write_leaves_the_earlier_report_files_intact(tmp_path, monkeypatch, failing):
    from matplotlib.figure import Figure

    fill_store(tmp_path, {"constant": ("constant()", losses_runs([0.6, 0.61])),
                          "cosine": ("cosine()", losses_runs([0.3, 0.31], lr=cosine_lr))})
    result = make_report(tmp_path)
    files = [result.html, result.csv, *result.figures.values()]
    before = {path: path.read_bytes() for path in files}
    for path in files:  # what a good earlier report held; the failed rewrite must not touch it
        path.write_bytes(b"earlier " + before[path])
    if failing == "figure":
        monkeypatch.setattr(Figure, "savefig", lambda self, path, **kw: (Path(path).write_bytes(b"\x89PNG"),
                                                                         _disk_full()))
    elif failing == "csv":
        monkeypatch.setattr(csv.DictWriter, "writerow", _disk_full)
    else:
        write_text = Path.write_text
        monkeypatch.setattr(Path, "write_text", lambda self, text, **kw: (write_text(self, text[:100], **kw),
                                                                          _disk_full()))
    with pytest.raises(OSError, match="No space left"):
        make_report(tmp_path)
    for path in files:  # the earlier file, or (written before the failure) the whole new one: never a part
        assert path.read_bytes() in (b"earlier " + before[path], before[path])
    failed = {"figure": list(result.figures.values()), "csv": [result.csv], "html": [result.html]}[failing]
    assert all(path.read_bytes().startswith(b"earlier ") for path in failed)
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file() and p not in files and p.name != "lrlab.sqlite"]
    assert not [name for name in leftovers if "tmp" in name]


def test_ema_is_bias_corrected_and_skips_non_finite_values():
    from lrlab.report.figures import ema

    assert np.allclose(ema(np.full(50, 3.0), 10), 3.0)
    x = np.linspace(0, 1, 30)
    with_gap = x.copy()
    with_gap[10] = np.nan
    assert np.allclose(ema(x, 5)[:10], ema(with_gap, 5)[:10])
    assert ema(with_gap, 5)[10] == ema(with_gap, 5)[9]


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.integers(1, 300))
def test_ema_equals_scipy_lfilter_bit_for_bit(values, window):
    """The figures' smoothing, written out to spare importing scipy.signal, is the filter it replaced."""
    from scipy.signal import lfilter

    from lrlab.report.figures import ema

    beta = 1.0 - 1.0 / window
    expected = lfilter([1 - beta], [1, -beta], values) / (1 - beta ** np.arange(1, len(values) + 1))
    np.testing.assert_array_equal(ema(np.array(values), window), expected)

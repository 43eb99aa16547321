"""Tuning a schedule's peak LR with real runs: the pick and its files, resume after kill -9, compare at tuned
peaks, per-schedule peak LRs in a config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lrlab.cli import main
from lrlab.config import parse_config
from lrlab.errors import ConfigError
from lrlab.runner import open_store
from lrlab.store import Store, StoreError
from lrlab.tune import GridPoint, TuneResult, halving_rungs, lr_grid, refine_lrs
from lrlab.tuner import Bracket, grid_name, peak_step, tune_schedule

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUICK = {"task": "digits-mlp", "epochs": 2, "trainer": "sequential"}


def test_tune_lr_picks_inside_its_good_region_and_writes_its_files(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tune"
    code = main(["tune-lr", "--task", "digits-mlp", "--schedule", "cosine", "--epochs", "2", "--seeds", "2",
                 "--min-lr", "0.01", "--max-lr", "1", "--per-decade", "2", "--out", str(out)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    data = json.loads((out / "tune.json").read_text())
    low, high = data["good_region"]
    assert low <= data["peak_lr"] <= high
    assert lines[-1] == f"peak LR: {data['peak_lr']:.3g} (good region {low:.3g} – {high:.3g})"
    lrs = [p["lr"] for p in data["points"]]
    lattice = [lr for lr in lrs if lr in lr_grid(0.01, 100, per_decade=2)]
    assert lattice[:5] == [0.01, 0.0316, 0.1, 0.316, 1.0]  # the bracket, then widened while the pick sat at its edge
    # refined: the two LRs halfway (in log) to the coarse pick's neighbours
    assert sorted(set(lrs) - set(lattice)) == refine_lrs({lr: p for lr, p in _points(data).items() if lr in lattice},
                                                         per_decade=2)
    assert all(p["seeds"] == 2 for p in data["points"]) and data["schedule"] == "cosine()"
    best = min((p for p in data["points"] if not p["diverged"]), key=lambda p: p["val_loss_mean"])
    assert best["lr"] == data["peak_lr"]
    assert (out / "lr_sensitivity.png").read_bytes().startswith(PNG_MAGIC)
    with Store(out, readonly=True) as store:
        assert {(r.schedule, r.seed) for r in store.runs()} == {(grid_name(p["lr"]), s) for p in data["points"]
                                                                for s in (0, 1)}


def _points(data: dict) -> dict[float, GridPoint]:
    return {p["lr"]: GridPoint(p["lr"], tuple(float("inf") if v is None else v for v in p["val_loss"]))
            for p in data["points"]}


def test_the_grid_widens_past_the_edge_its_pick_sits_on(tmp_path: Path) -> None:
    # digits-mlp with cosine trains best near 0.5; a grid of 0.001..0.01 has its pick at the top edge
    config = parse_config(QUICK)
    result = tune_schedule(config, "cosine()", tmp_path, Bracket(0.001, 0.01, "test"), seeds=[0], per_decade=1,
                           max_widen=2, refine=False)
    assert [p.lr for p in result.points] == [0.001, 0.01, 0.1, 1.0]
    assert result.peak_lr in (0.1, 1.0)
    again = tune_schedule(config, "cosine()", tmp_path, Bracket(5, 6, "ignored: the stored bracket wins"),
                          seeds=[0], per_decade=1, max_widen=2, refine=False)
    assert again == result


def test_successive_halving_judges_stopped_runs_at_rungs_and_trains_only_the_best_to_the_end(tmp_path: Path) -> None:
    config = parse_config({**QUICK, "epochs": 9, "trainer": "auto"})
    result = tune_schedule(config, "cosine()", tmp_path, Bracket(0.01, 1.0, "test"), seeds=[0, 1], per_decade=4,
                           max_widen=0, refine=False, halving=True)
    total, peak = peak_step(config, "cosine()")
    first, second = halving_rungs(total, peak)  # 1/9 and 1/3 of the run
    with Store(tmp_path, readonly=True) as store:
        updates = {r.schedule: len(store.step_metrics(r.id)["lr"]) for r in store.runs() if r.status == "done"}
    grid = lr_grid(0.01, 1.0, 4)
    assert {grid_name(lr, first) for lr in grid} <= set(updates)  # every LR judged at the first rung...
    assert all(updates[grid_name(lr, first)] == first for lr in grid)  # ...on runs stopped there
    assert not any(grid_name(lr, second) in updates for lr in grid)  # 3 left: the second rung would stop none
    assert len(result.points) == 3  # the best third, trained to the end
    assert all(updates[grid_name(p.lr)] == total for p in result.points)
    assert sorted(p.lr for p in result.pruned) == sorted(set(grid) - {p.lr for p in result.points})
    assert {p.step for p in result.pruned} == {first}  # 9 LRs -> 3 at the first rung; 3 is the fewest kept


def test_halving_places_its_rungs_on_the_tuned_schedule_alone() -> None:
    # one epoch is too short for the default study's warmup(epochs=2): only the tuned spec must fit it
    config = parse_config({**QUICK, "epochs": 1})
    total, peak = peak_step(config, "onecycle()")
    assert total == 22 and 0 < peak < total  # OneCycle peaks 30% in


def test_a_pick_left_at_the_edge_after_every_widening_is_said(tmp_path: Path, capsys) -> None:
    code = main(["tune-lr", "--task", "digits-mlp", "--epochs", "2", "--seeds", "1", "--min-lr", "0.001",
                 "--max-lr", "0.003", "--per-decade", "1", "--max-widen", "0", "--out", str(tmp_path)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("note: the best LR is the grid's highest after 0 widenings")
    assert json.loads((tmp_path / "tune.json").read_text())["at_edge"] is True


TUNE = textwrap.dedent("""
    import sys
    import torch
    from lrlab.config import parse_config
    from lrlab.tuner import Bracket, tune_schedule
    torch.set_num_threads(1)
    config = parse_config({"task": "digits-mlp", "epochs": 8, "trainer": "sequential"})
    tune_schedule(config, "cosine()", sys.argv[1], Bracket(0.03, 0.3, "test"), seeds=[0, 1], per_decade=2,
                  refine=False)
""")


def test_a_tuning_killed_mid_grid_resumes_without_retraining_finished_points(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", TUNE, str(tmp_path)], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                runs = Store(tmp_path, readonly=True).runs()
            except StoreError:  # not created yet, or its tables not yet
                continue
            if sum(r.status == "done" for r in runs) >= 2 and any(r.status == "running" for r in runs):
                break
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    before = {(r.schedule, r.seed): r for r in Store(tmp_path, readonly=True).runs() if r.status == "done"}
    assert 2 <= len(before) < 8
    result = tune_schedule(parse_config({**QUICK, "epochs": 8}), "cosine()", tmp_path, Bracket(1, 2, "unused"),
                           seeds=[0, 1], per_decade=2, refine=False)
    after = {(r.schedule, r.seed): r for r in Store(tmp_path, readonly=True).runs()}
    assert [p.lr for p in result.points][:4] == [0.01, 0.0316, 0.1, 0.316]  # the stored bracket, not the new one
    for key, record in before.items():
        assert (after[key].id, after[key].wall_s) == (record.id, record.wall_s)  # not trained again


def test_compare_at_tuned_peaks_runs_each_schedule_at_its_own_pick(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "--task", "digits-mlp", "--epochs", "2", "--seeds", "2", "--schedules", "constant()",
            "onecycle()", "--peak-lr", "tune", "--trainer", "sequential", "--out", str(out), "--no-report"]
    config = {"task": "digits-mlp", "epochs": 2, "seeds": 2, "peak_lr": "tune",
              "tune": {"min_lr": 0.03, "max_lr": 1.0, "per_decade": 2, "seeds": 2}}
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    assert main([*args, "--config", str(tmp_path / "c.yaml")]) == 0
    with Store(out, readonly=True) as store:
        tuned = {name: TuneResult.from_dict(data) for name, data in store.meta("tuned").items()}
        stored = store.meta("config")
        env_lrs = {(r.schedule, r.seed): store.step_metrics(r.id)["lr"] for r in store.runs()}
    assert set(tuned) == {"constant()", "onecycle()"}
    assert stored["peak_lrs"] == {name: result.peak_lr for name, result in tuned.items()}
    assert env_lrs[("constant()", 0)][0] == pytest.approx(tuned["constant()"].peak_lr)
    assert max(env_lrs[("onecycle()", 1)]) == pytest.approx(tuned["onecycle()"].peak_lr, rel=1e-3)
    for name in tuned:  # the grids' runs used the held-out seeds
        with Store(out / "tuning" / name.replace("(", "").replace(")", ""), readonly=True) as grid:
            assert {r.seed for r in grid.runs()} == {1000, 1001}
    capsys.readouterr()
    assert main([*args, "--config", str(tmp_path / "c.yaml")]) == 0  # resumed: nothing trained again
    assert "nothing to train" in capsys.readouterr().out


def test_peak_lrs_name_schedules_and_a_changed_one_is_a_different_experiment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="peak_lrs names 'cosin', which is not a schedule"):
        parse_config({"schedules": {"cosine": "cosine()"}, "peak_lrs": {"cosin": 0.1}})
    config = parse_config({**QUICK, "schedules": {"cosine": "cosine()"}, "peak_lrs": {"cosine": 0.1}})
    open_store(tmp_path, config).close()
    changed = parse_config({**QUICK, "schedules": {"cosine": "cosine()"}, "peak_lrs": {"cosine": 0.2}})
    with pytest.raises(ConfigError, match=r"different experiment \(changed: peak_lrs.cosine\)"):
        open_store(tmp_path, changed)
    grown = parse_config({**QUICK, "schedules": {"cosine": "cosine()", "one": "onecycle()"},
                          "peak_lrs": {"cosine": 0.1, "one": 0.3}})
    open_store(tmp_path, grown).close()


def test_tune_lr_halving_and_no_refine_from_the_command_line(tmp_path: Path, capsys) -> None:
    code = main(["tune-lr", "--task", "digits-mlp", "--schedule", "cosine", "--epochs", "9", "--seeds", "1",
                 "--min-lr", "0.01", "--max-lr", "1", "--max-widen", "0", "--halving", "--no-refine",
                 "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "tune.json").read_text())
    assert len(data["points"]) == 3 and len(data["pruned"]) == 6  # 9 lattice LRs, the best third to the end
    assert [p["lr"] for p in data["points"]] == sorted(p["lr"] for p in data["points"])
    assert all(p["lr"] in lr_grid(0.01, 1, 4) for p in data["points"])  # no refined LR
    assert out.count("stopped at update") == 6

"""The runner: plan a sweep (store, pending runs, trainer, peak LR) and run it; divergence, resume, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lrlab import batched, runner
from lrlab.config import ExperimentConfig, parse_config
from lrlab.errors import ConfigError
from lrlab.runner import Sweep, open_store, plan_sweep, run_sweep
from lrlab.store import STORE_NAME, Store
from lrlab.tasks import OptimizerDefaults

DIGITS = OptimizerDefaults(name="sgd", lr=0.1, momentum=0.9)


def small(**overrides: object) -> dict:
    config = {"task": "digits-mlp", "epochs": 2, "seeds": 2, "schedules": {"constant": "constant()",
                                                                          "cosine": "cosine()"}}
    return {**config, **overrides}


def swept(out: Path, config: ExperimentConfig, **kwargs: object) -> Sweep:
    """The sweep of ``config`` into ``out``, planned and run (the caller closes it)."""
    sweep = plan_sweep(config, out)
    run_sweep(sweep, **kwargs)
    return sweep


def test_divergence_is_detected_and_stored_and_the_sweep_goes_on(tmp_path: Path) -> None:
    config = parse_config(small(seeds=1, optimizer={"lr": 50.0},
                                schedules={"huge": "constant()", "tame": "constant(lr=0.05)"}))
    store = swept(tmp_path, config).store
    runs = {r.schedule: r for r in store.runs()}
    assert runs["huge"].status == "diverged" and runs["huge"].diverged_step is not None
    assert runs["tame"].status == "done" and runs["tame"].diverged_step is None
    assert len(store.step_metrics(runs["huge"].id)["lr"]) == runs["huge"].diverged_step + 1


def test_a_store_refuses_a_different_experiment(tmp_path: Path) -> None:
    config = parse_config(small(seeds=1, epochs=1))
    swept(tmp_path, config).close()
    with pytest.raises(ConfigError, match=r"different experiment.*epochs"):
        open_store(tmp_path, parse_config(small(seeds=1, epochs=3)))
    open_store(tmp_path, parse_config(small(seeds=3, epochs=1))).close()  # more seeds: the same experiment
    open_store(tmp_path, parse_config(small(epochs=3)), fresh=True).close()


def test_a_task_whose_defaults_changed_since_its_runs_is_refused(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # a built-in task changed by an upgrade (mnist1d-mlp gained weight decay), or a user's task module edited: the
    # config's own keys are the same, but the runs stored were trained otherwise
    from dataclasses import replace

    from lrlab import tasks

    config = parse_config(small(seeds=1, epochs=1))
    swept(tmp_path / "out", config).close()
    plan_sweep(config, tmp_path / "out").close()  # unchanged: resumes
    load = tasks.load_task
    monkeypatch.setattr(tasks, "load_task", lambda name: replace(
        load(name), optimizer=replace(load(name).optimizer, weight_decay=2e-3)))
    with pytest.raises(ConfigError, match=r"other defaults \(changed: optimizer.weight_decay\)"):
        plan_sweep(parse_config(small(seeds=2, epochs=1)), tmp_path / "out")


def test_the_config_is_stored_when_the_store_is_opened(tmp_path: Path) -> None:
    config = parse_config(small(seeds=1, epochs=3))
    with open_store(tmp_path, config):
        pass
    with Store(tmp_path, readonly=True) as store:
        assert store.meta("config")["epochs"] == 3
    with pytest.raises(ConfigError, match=r"different experiment.*epochs"):  # before any run was trained
        open_store(tmp_path, parse_config(small(seeds=1, epochs=8)))


def test_a_store_with_an_unreadable_config_is_one_line(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.set_meta("config", {"task": "digits-mlp", "epochs": "many", "from_the_future": 1})
    with pytest.raises(ConfigError, match=r"holds a config this lrlab cannot read .*--fresh"):
        open_store(tmp_path, parse_config(small()))


def test_fresh_deletes_the_earlier_report_too(tmp_path: Path) -> None:
    with Store(tmp_path):
        pass
    (tmp_path / "figures").mkdir()
    for name in ("report.html", "summary.csv", "figures/lr.png"):
        (tmp_path / name).write_text("old")
    (tmp_path / "notes.txt").write_text("the user's own")
    open_store(tmp_path, parse_config(small()), fresh=True).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lrlab.lock", STORE_NAME, "notes.txt"]


def test_fresh_from_a_second_process_is_refused_and_deletes_nothing(tmp_path: Path) -> None:
    config = parse_config(small(seeds=1, epochs=1))
    with swept(tmp_path, config) as sweep:
        store = sweep.store
        code = subprocess.run([sys.executable, "-m", "lrlab", "compare", "--task", "digits-mlp", "--epochs", "1",
                               "--seeds", "1", "--schedules", "constant()", "--out", str(tmp_path), "--fresh"],
                              capture_output=True, text=True, timeout=120)
        assert code.returncode == 2 and code.stdout == ""
        assert code.stderr.strip() == (f"lrlab: error: out={str(tmp_path)!r} is in use by another lrlab process "
                                       f"(pid {os.getpid()}): wait for it to finish, or use another --out")
        assert len(store.finished_runs()) == 2  # still there, in the same file


# ---- resume after kill -9 ---------------------------------------------------------------------------------

SWEEP = textwrap.dedent("""
    import sys
    import torch
    from lrlab.config import parse_config
    from lrlab.runner import plan_sweep, run_sweep
    torch.set_num_threads(1)  # bit-for-bit reproducibility holds for one thread count (the CLI uses 1)
    config = parse_config({"task": "digits-mlp", "epochs": 10, "seeds": 3, "trainer": "sequential",
                           "schedules": {"constant": "constant()", "cosine": "cosine()"}})
    run_sweep(plan_sweep(config, sys.argv[1]))
""")



def test_kill_9_mid_sweep_loses_only_the_run_in_flight_and_a_rerun_resumes(tmp_path: Path, one_thread: None) -> None:
    process = subprocess.Popen([sys.executable, "-c", SWEEP, str(tmp_path)], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if not (tmp_path / "lrlab.sqlite").exists():
                continue
            runs = Store(tmp_path).runs()
            if any(r.status == "done" for r in runs) and any(r.status == "running" for r in runs):
                break
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    before = {(r.schedule, r.seed): r for r in Store(tmp_path).runs()}
    done_before = {k: r for k, r in before.items() if r.status == "done"}
    assert done_before and len(done_before) < 6

    config = parse_config({"task": "digits-mlp", "epochs": 10, "seeds": 3, "trainer": "sequential",
                           "schedules": {"constant": "constant()", "cosine": "cosine()"}})
    started = []
    store = swept(tmp_path, config, on_start=lambda label, done, total: started.append(label)).store
    after = {(r.schedule, r.seed): r for r in store.runs()}
    assert len(after) == 6 and all(r.status == "done" for r in after.values())
    assert not {label for label in started} & {f"{name} seed {seed}" for name, seed in done_before}  # not redone
    for key, record in done_before.items():
        assert after[key].wall_s == record.wall_s and after[key].id == record.id
    for record in after.values():  # nothing duplicated: every run holds exactly its own steps
        assert len(store.epoch_metrics(record.id)["val_loss"]) == 10
    # the resumed runs equal uninterrupted ones (determinism)
    fresh = tmp_path / "fresh"
    clean = swept(fresh, config).store
    for record in clean.runs():
        assert clean.step_metrics(record.id) == store.step_metrics(after[(record.schedule, record.seed)].id)


def test_vectorized_and_sequential_sweeps_store_the_same_runs(tmp_path: Path, one_thread: None) -> None:
    stored = {}
    for trainer in ("sequential", "vectorized"):
        config = parse_config(small(seeds=2, trainer=trainer, schedules={
            "constant": "constant()", "warm": "warmup(steps=5) >> cosine()", "cut": "plateau(patience=0, threshold=1)",
            "one": "onecycle()"}))
        sweep = plan_sweep(config, tmp_path / trainer)
        store = sweep.store
        used = run_sweep(sweep)
        assert used.startswith(trainer)
        assert store.meta("trainer")["name"] == trainer
        stored[trainer] = {(r.schedule, r.seed): (store.step_metrics(r.id), store.epoch_metrics(r.id))
                           for r in store.runs()}
    assert stored["vectorized"] == stored["sequential"]  # bitwise, for an MLP in float32


def test_vectorized_trainer_for_a_task_that_cannot_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    config = parse_config({"task": "charlm-transformer", "trainer": "vectorized", "schedules": {"c": "cosine()"}})
    with pytest.raises(ConfigError, match=r"^trainer='vectorized' is invalid for task 'charlm-transformer'"):
        plan_sweep(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_vmap_probe_runs_once_and_not_for_a_finished_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               one_thread: None) -> None:
    probes = []
    probe = batched.can_vectorize
    monkeypatch.setattr(batched, "can_vectorize", lambda task: probes.append(task) or probe(task))
    config = parse_config(small(seeds=2, epochs=1, trainer="vectorized"))
    with plan_sweep(config, tmp_path) as sweep:
        assert sweep.trainer is not None and sweep.trainer.name == "vectorized" and len(probes) == 1
        run_sweep(sweep)
    with plan_sweep(config, tmp_path) as sweep:
        assert sweep.pending == [] and sweep.experiment is None and sweep.trainer is None and len(probes) == 1


def test_a_finished_sweep_is_planned_from_its_store_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(small(seeds=1, epochs=1))
    swept(tmp_path, config).close()

    class TaskLoadedError(Exception):
        pass

    def prepare(config: ExperimentConfig) -> None:
        raise TaskLoadedError

    monkeypatch.setattr(runner, "prepare", prepare)
    with plan_sweep(config, tmp_path) as sweep:
        assert sweep.pending == [] and sweep.size.runs == 2 and sweep.size.steps_per_run > 0
    with pytest.raises(TaskLoadedError):  # a new seed: planned in full
        plan_sweep(parse_config(small(seeds=2, epochs=1)), tmp_path)


def test_compare_on_a_finished_sweep_imports_no_torch(tmp_path: Path) -> None:
    config = parse_config(small(seeds=1, epochs=1))
    swept(tmp_path, config).close()
    code = ("import sys; from lrlab.cli import main; "
            f"code = main(['compare', '--task', 'digits-mlp', '--epochs', '1', '--seeds', '1', '--schedules', "
            f"'constant=constant()', 'cosine=cosine()', '--out', {str(tmp_path)!r}, '--no-report']); "
            "print(code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines()[-1] == "0 False", result.stderr

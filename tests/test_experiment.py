"""The experiment engine: config validation, the trainer's determinism and divergence handling, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lrlab.errors import ConfigError
from lrlab.experiment import load_config, open_store, parse_config, prepare, run_experiment
from lrlab.runs import RunSpec
from lrlab.store import STORE_NAME, Store
from lrlab.tasks import OptimizerDefaults, load_task
from lrlab.trainer import train

DIGITS = OptimizerDefaults(name="sgd", lr=0.1, momentum=0.9)


def small(**overrides: object) -> dict:
    config = {"task": "digits-mlp", "epochs": 2, "seeds": 2, "schedules": {"constant": "constant()",
                                                                          "cosine": "cosine()"}}
    return {**config, **overrides}


# ---- config validation: one line naming the field ---------------------------------------------------------

@pytest.mark.parametrize(("config", "field"), [
    (small(epoch=3), "epoch="),
    (small(epochs="many"), "epochs='many'"),
    (small(seeds=0), "seeds=0"),
    (small(optimizer={"name": "rmsprop"}), "optimizer.name='rmsprop'"),
    (small(optimizer={"lr": -1}), "optimizer.lr=-1"),
    (small(schedules={}), "schedules={}"),
    (small(seeds=[99999999999999999999]), "seeds=[99999999999999999999]"),  # beyond torch.manual_seed and SQLite
    (small(seeds=[-1]), "seeds=[-1]"),
    (small(optimizer={"lr": float("inf")}), "optimizer.lr=inf"),
    (small(optimizer={"momentum": float("nan")}), "optimizer.momentum=nan"),
])
def test_config_mistakes_name_the_field(config: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(config)
    assert str(error.value).startswith(field) and "\n" not in str(error.value)


@pytest.mark.parametrize(("name", "expected"), [
    ("", "the schedule name '' is empty"),
    ("  ", "the schedule name '  ' is empty"),
    ("\x1b[31mred", r"the schedule name '\x1b[31mred' has a control character"),
    ("two\nlines", r"the schedule name 'two\nlines' has a control character"),
    ("\x9b" + "x" * 100, r"the schedule name '\x9b" + "x" * 39 + "'... has a control character"),
])
def test_schedule_names_are_printable_and_not_empty(name: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(small(schedules={"constant": "constant()", name: "cosine()"}))
    message = str(error.value)
    assert message.startswith("schedules=") and expected in message
    assert "\x1b" not in message and "\n" not in message and "\x9b" not in message


def test_cjk_and_emoji_schedule_names_are_fine() -> None:
    assert list(parse_config(small(schedules={"余弦 🚀": "cosine()"})).schedules) == ["余弦 🚀"]


@pytest.mark.parametrize(("schedules", "expected"), [
    ({"bad": "cosine(min_lr=)"}, "schedules.bad:"),
    ({"typo": "cosin()"}, "cosine"),
    ({"long-warmup": "warmup(epochs=5) >> cosine()"}, "schedules.long-warmup:"),
])
def test_schedules_are_checked_against_the_run_length_before_training(schedules: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        prepare(parse_config(small(schedules=schedules)))
    assert expected in str(error.value)


def test_a_batch_larger_than_the_training_set_is_refused_naming_both_sizes() -> None:
    with pytest.raises(ConfigError, match=r"^batch_size=5000 is invalid for task 'digits-mlp': expected at most "
                                          r"1437, the training set's size$"):
        prepare(parse_config(small(batch_size=5000)))


def test_a_huge_seed_count_is_not_expanded_into_a_list() -> None:
    assert len(parse_config(small(seeds=10**15)).seed_list()) == 10**15


def test_yaml_config_errors(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "broken.yaml").write_text("task: [unclosed\n")
    for name, message in [("list.yaml", "expected a mapping"), ("broken.yaml", "not valid YAML"),
                          ("missing.yaml", "cannot be read")]:
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path / name)


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)) + "seeds: *j\n"


@pytest.mark.parametrize(("text", "message"), [
    (ALIAS_BOMB, r"aliases \(\*a\) are not allowed in a config, line 2"),
    ("task: digits-mlp\nschedules:\n  fast: cosine()\n  fast: onecycle()\n", r"duplicate key 'fast', line 4"),
    ("epochs: 3\nepochs: 4\n", r"duplicate key 'epochs', line 2"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", r"is not UTF-8 text \(byte 0\)"),
    ("task: caf\u00e9\x00\n", r"not valid YAML"),
    ("a: " + "[" * 20_000 + "]" * 20_000 + "\n", r"nested too deeply"),
], ids=["alias-bomb", "duplicate-schedule", "duplicate-key", "binary", "control-character", "deep"])
def test_hostile_yaml_is_one_line(tmp_path: Path, text: str | bytes, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path)
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


def test_error_lines_abridge_huge_values() -> None:
    nested: list = ["x"] * 9
    for _ in range(12):  # 9**13 leaves: its full repr would not fit in memory
        nested = [nested] * 9
    with pytest.raises(ConfigError) as error:
        parse_config(small(schedules=nested))
    assert str(error.value).startswith("schedules=[[[[...]") and len(str(error.value)) < 300


@pytest.mark.parametrize("path", sorted(Path(__file__).parent.parent.glob("examples/*.yaml")), ids=lambda p: p.name)
def test_shipped_example_configs_are_valid(path: Path) -> None:
    prepare(parse_config(load_config(path)))


# ---- the trainer ------------------------------------------------------------------------------------------

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


def test_divergence_is_detected_and_stored_and_the_sweep_goes_on(tmp_path: Path) -> None:
    config = parse_config(small(seeds=1, optimizer={"lr": 50.0},
                                schedules={"huge": "constant()", "tame": "constant(lr=0.05)"}))
    store = open_store(tmp_path, config)
    run_experiment(prepare(config), store)
    runs = {r.schedule: r for r in store.runs()}
    assert runs["huge"].status == "diverged" and runs["huge"].diverged_step is not None
    assert runs["tame"].status == "done" and runs["tame"].diverged_step is None
    assert len(store.step_metrics(runs["huge"].id)["lr"]) == runs["huge"].diverged_step + 1


def test_a_store_refuses_a_different_experiment(tmp_path: Path) -> None:
    config = parse_config(small(seeds=1, epochs=1))
    with open_store(tmp_path, config) as store:
        run_experiment(prepare(config), store)
    with pytest.raises(ConfigError, match=r"different experiment.*epochs"):
        open_store(tmp_path, parse_config(small(seeds=1, epochs=3)))
    open_store(tmp_path, parse_config(small(seeds=3, epochs=1))).close()  # more seeds: the same experiment
    open_store(tmp_path, parse_config(small(epochs=3)), fresh=True).close()


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
    with open_store(tmp_path, config) as store:
        run_experiment(prepare(config), store)
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
    from lrlab.experiment import open_store, parse_config, prepare, run_experiment
    torch.set_num_threads(1)  # bit-for-bit reproducibility holds for one thread count (the CLI uses 1)
    config = parse_config({"task": "digits-mlp", "epochs": 10, "seeds": 3, "trainer": "sequential",
                           "schedules": {"constant": "constant()", "cosine": "cosine()"}})
    run_experiment(prepare(config), open_store(sys.argv[1], config))
""")


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    store = open_store(tmp_path, config)
    started = []
    run_experiment(prepare(config), store, on_start=lambda label, done, total: started.append(label))
    after = {(r.schedule, r.seed): r for r in store.runs()}
    assert len(after) == 6 and all(r.status == "done" for r in after.values())
    assert not {label for label in started} & {f"{name} seed {seed}" for name, seed in done_before}  # not redone
    for key, record in done_before.items():
        assert after[key].wall_s == record.wall_s and after[key].id == record.id
    for record in after.values():  # nothing duplicated: every run holds exactly its own steps
        assert len(store.epoch_metrics(record.id)["val_loss"]) == 10
    # the resumed runs equal uninterrupted ones (determinism)
    fresh = tmp_path / "fresh"
    clean = open_store(fresh, config)
    run_experiment(prepare(config), clean)
    for record in clean.runs():
        assert clean.step_metrics(record.id) == store.step_metrics(after[(record.schedule, record.seed)].id)


def test_vectorized_and_sequential_sweeps_store_the_same_runs(tmp_path: Path, one_thread: None) -> None:
    stored = {}
    for trainer in ("sequential", "vectorized"):
        config = parse_config(small(seeds=2, trainer=trainer, schedules={
            "constant": "constant()", "warm": "warmup(steps=5) >> cosine()", "cut": "plateau(patience=0, threshold=1)",
            "one": "onecycle()"}))
        store = open_store(tmp_path / trainer, config)
        used = run_experiment(prepare(config), store)
        assert used.startswith(trainer)
        assert store.meta("trainer")["name"] == trainer
        stored[trainer] = {(r.schedule, r.seed): (store.step_metrics(r.id), store.epoch_metrics(r.id))
                           for r in store.runs()}
    assert stored["vectorized"] == stored["sequential"]  # bitwise, for an MLP in float32


def test_vectorized_trainer_for_a_task_that_cannot_is_refused_before_training() -> None:
    config = parse_config({"task": "charlm-transformer", "trainer": "vectorized", "schedules": {"c": "cosine()"}})
    with pytest.raises(ConfigError, match=r"^trainer='vectorized' is invalid for task 'charlm-transformer'"):
        prepare(config)

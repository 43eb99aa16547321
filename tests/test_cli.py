"""The ``lrlab`` command line: run in-process through ``main(argv)``, plus one run of the real console script."""

from __future__ import annotations

import csv
import doctest
import json
import runpy
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lrlab.plotting
from lrlab.cli import dir_name, main
from lrlab.config import named_schedules
from lrlab.spec import REGISTRY, Horizon, build, parse
from lrlab.store import STORE_NAME, Store

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as file:
        header, *rows = list(csv.reader(file))
    return header, rows


def assert_one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lrlab: error: ")
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------------------------------- schedules


def test_schedules_lists_every_registry_entry_with_the_grammar(capsys):
    assert main(["schedules"]) == 0
    out = capsys.readouterr().out
    for name, entry in REGISTRY.items():
        assert name in out
        assert entry.description.split()[0] in out
    assert "gamma=0.1" in out  # step's default
    assert ">>" in out and "_steps" in out and "_epochs" in out and "_frac" in out


def test_schedules_shows_one_schedule_in_detail_and_rejects_an_unknown_one(capsys):
    assert main(["schedules", "cosine"]) == 0
    out = capsys.readouterr().out
    assert "eta_min" in out  # the help of cosine's min_lr
    assert main(["schedules", "cosin"]) == 2
    assert "did you mean 'cosine'" in assert_one_line_error(capsys.readouterr().err)


# --------------------------------------------------------------------------------------------------- plot


def test_plot_writes_png_and_csv_with_exact_values(tmp_path, capsys):
    specs = ["warmup(steps=10)>>cosine(min_lr=1e-3)", "step(every_epochs=3, gamma=0.5)"]
    png, table = tmp_path / "lr.png", tmp_path / "out" / "lr.csv"
    argv = ["plot", *specs, "--steps", "100", "--steps-per-epoch", "10", "--base-lr", "0.1", "--out", str(png),
            "--csv", str(table)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert str(png) in out and str(table) in out
    header, rows = read_csv(table)
    assert header == ["step", *(str(parse(s)) for s in specs)]  # canonical spec text, no momentum columns
    assert len(rows) == 100
    horizon = Horizon(total_steps=100, steps_per_epoch=10, base_lr=0.1)
    plans = [build(s, horizon) for s in specs]
    for t, row in enumerate(rows):
        assert int(row[0]) == t
        assert [float(v) for v in row[1:]] == [plan.lr(t) for plan in plans]  # repr-exact
    assert "start 0  min 0  max 0.1" in out  # the terminal preview of the warmup


def test_plot_adds_a_momentum_column_for_onecycle(tmp_path):
    table = tmp_path / "lr.csv"
    assert main(["plot", "onecycle()", "cosine()", "--steps", "50", "--out", str(tmp_path / "lr.png"),
                 "--csv", str(table)]) == 0
    header, rows = read_csv(table)
    assert header == ["step", "onecycle()", "cosine()", "momentum:onecycle()"]
    plan = build("onecycle()", Horizon(total_steps=50))
    assert [float(row[3]) for row in rows] == plan.momentum_values()


def test_plot_of_a_plateau_spec_says_it_has_no_reductions(tmp_path, capsys):
    assert main(["plot", "plateau(patience=2)", "--steps", "20", "--out", str(tmp_path / "lr.png")]) == 0
    out = capsys.readouterr().out
    assert "note:" in out and "without reductions" in out
    assert main(["plot", "cosine() * greedy(patience=2)", "--steps", "20", "--csv", str(tmp_path / "lr.csv")]) == 0
    assert "greedy(...) raises or lowers the LR" in capsys.readouterr().out


@pytest.mark.parametrize(("spec", "token"), [
    ("cosin()", "cosin"),
    ("cosine(min_lr=-1)", "min_lr=-1"),
    ("cosine(min_lr=1e-5", "')'"),
    ("warmup(steps=80) >> cosine()", "warmup(steps=80)"),  # longer than the 50 steps of training
])
def test_plot_bad_spec_is_one_line_and_exit_code_2(tmp_path, capsys, spec, token):
    out = tmp_path / "lr.png"
    assert main(["plot", spec, "--steps", "50", "--out", str(out)]) == 2
    assert token in assert_one_line_error(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("steps", ["0", "-5", "abc"])
def test_plot_bad_steps_is_a_usage_error(capsys, steps):
    assert main(["plot", "cosine()", "--steps", steps]) == 2
    err = capsys.readouterr().err
    assert "--steps" in err and "Traceback" not in err


def test_plotting_docstring_example_holds():
    assert doctest.testmod(lrlab.plotting).failed == 0


# ------------------------------------------------------------------------------------------------ compare


COMPARE = ["compare", "--task", "digits-mlp", "--epochs", "2", "--seeds", "2", "--schedules", "constant()", "cosine()"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Path:
    """The results directory of one small comparison on digits-mlp (4 runs of 2 epochs), with its report."""
    import torch

    threads = torch.get_num_threads()  # compare sets one thread for small models; leave other tests as they were
    out = tmp_path_factory.mktemp("compare")
    try:
        code = main([*COMPARE, "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return out


def test_compare_writes_store_summary_and_report(compared):
    out = compared
    for name in ("report.html", "summary.csv", STORE_NAME):
        assert (out / name).is_file(), name
    store = Store(out)
    try:
        runs = store.runs()
    finally:
        store.close()
    assert sorted((r.schedule, r.seed, r.status) for r in runs) == [
        ("constant()", 0, "done"), ("constant()", 1, "done"), ("cosine()", 0, "done"), ("cosine()", 1, "done")]


def test_compare_again_resumes_without_training(compared, capsys):
    out = compared
    before = Store(out)
    try:
        runs_before = before.runs()
    finally:
        before.close()
    assert main([*COMPARE, "--out", str(out), "--no-report"]) == 0
    assert "nothing to train" in capsys.readouterr().out
    after = Store(out)
    try:
        assert after.runs() == runs_before  # same ids, same timings: nothing was retrained
    finally:
        after.close()


def test_report_prints_the_table_and_paths(compared, capsys):
    out = compared
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cosine()" in printed and "constant()" in printed
    assert str(out / "report.html") in printed
    assert "claims:" in printed


def test_compare_unknown_task_suggests_the_name(tmp_path, capsys):
    assert main(["compare", "--task", "mnist1d-mpl", "--out", str(tmp_path)]) == 2
    assert "did you mean 'mnist1d-mlp'" in assert_one_line_error(capsys.readouterr().err)


def test_compare_config_with_an_unknown_key_names_it(tmp_path, capsys):
    config = tmp_path / "study.yaml"
    config.write_text("task: digits-mlp\nepochs: 2\nlearning_rate: 0.1\n")
    assert main(["compare", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "learning_rate" in assert_one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_compare_warmup_longer_than_training_is_exit_code_2(tmp_path, capsys):
    argv = ["compare", "--task", "digits-mlp", "--epochs", "2", "--schedules", "warmup(epochs=5) >> cosine()",
            "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "warmup(epochs=5) lasts" in assert_one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize(("flag", "value", "size"), [
    ("--seeds", "100000", "600,000 runs × 66 steps = 39,600,000 steps"),  # a typo for 10
    ("--epochs", "1000000000", "6 runs × 22,000,000,000 steps"),
])
def test_an_implausible_sweep_is_refused_in_one_line_naming_yes(tmp_path, capsys, flag, value, size):
    argv = ["compare", "--task", "digits-mlp", "--epochs", "3", "--seeds", "1", "--out", str(tmp_path / "out")]
    assert main([*argv, flag, value]) == 2
    line = assert_one_line_error(capsys.readouterr().err)
    assert size in line and line.endswith("confirm it with --yes") and not (tmp_path / "out").exists()


def test_compare_prints_the_sweeps_size_before_training(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        assert main(["compare", "--task", "digits-mlp", "--epochs", "1", "--seeds", "1", "--schedules", "constant()",
                     "--out", str(tmp_path), "--no-report"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert "1 schedule × 1 seed, 1 run × 22 steps = 22 steps, ~1.32 kB of store;" in capsys.readouterr().out


def test_report_of_an_empty_directory_is_exit_code_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "lrlab compare" in assert_one_line_error(capsys.readouterr().err)


def test_schedules_flag_refuses_an_empty_name(tmp_path, capsys):
    assert main(["compare", "--schedules", " =cosine()", "--out", str(tmp_path / "out")]) == 2
    assert "--schedules ' =cosine()' is invalid: the name before '=' is empty" in \
        assert_one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_schedules_flag_refuses_a_control_character_in_a_name(tmp_path, capsys):
    assert main(["compare", "--schedules", "\x1b[2Jwiped=cosine()", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and r"the schedule name '\x1b[2Jwiped' has a control character" in \
        assert_one_line_error(err)


def test_schedules_flag_names_and_canonical_text():
    named = named_schedules(["w=warmup(steps=5)>>cosine()", "cosine(min_lr=1e-5)", "constant()*0.5"])
    assert named == {"w": "warmup(steps=5) >> cosine()", "cosine(min_lr=1e-05)": "cosine(min_lr=1e-05)",
                     "constant() * 0.5": "constant() * 0.5"}
    assert dir_name("examples.my_task:make_task") == "examples.my_task-make_task"


# ------------------------------------------------------------------------------------------- tasks, main


def test_tasks_lists_every_task(capsys):
    from lrlab.tasks import TASKS

    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in TASKS:
        assert name in out


def test_no_command_and_help(capsys):
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "compare" in capsys.readouterr().out


def test_python_dash_m_lrlab(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["lrlab", "--version"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("lrlab", run_name="__main__", alter_sys=True)
    assert exit_.value.code == 0
    assert lrlab.__version__ in capsys.readouterr().out


def test_console_script_bad_spec_exits_2_without_traceback_or_torch(tmp_path):
    script = Path(sys.executable).with_name("lrlab")
    command = [str(script)] if script.exists() else [shutil.which("lrlab") or pytest.skip("lrlab is not installed")]
    result = subprocess.run([*command, "plot", "cosine(min_lr=-1)", "--steps", "10"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "min_lr=-1" in assert_one_line_error(result.stderr)
    assert not list(tmp_path.iterdir())
    # listing the schedules must not import torch (nor matplotlib): the command stays instant
    check = ("import sys; from lrlab.cli import main; main(['schedules']); "
             "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, timeout=60).returncode == 0


def test_report_says_which_schedule_and_prints_its_code(compared):
    page = (compared / "report.html").read_text()
    assert "Which schedule?" in page and "scheduler.step()" in page and "Horizon(total_steps=" in page


def test_find_lr_prints_a_recommendation_and_writes_figure_and_json(tmp_path, capsys):
    code = main(["find-lr", "--task", "digits-mlp", "--seeds", "2", "--num-steps", "60", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "recommended peak LR" in out and "OneCycleLR(optimizer, max_lr=" in out
    assert (tmp_path / "finder.png").read_bytes().startswith(PNG_MAGIC)
    data = json.loads((tmp_path / "finder.json").read_text())
    assert data["low"] <= data["lr"] <= data["high"] and len(data["curves"]) == 2


def test_find_lr_bad_range_is_one_line(capsys):
    assert main(["find-lr", "--task", "digits-mlp", "--min-lr", "1", "--max-lr", "0.1"]) == 2
    assert "min_lr" in assert_one_line_error(capsys.readouterr().err)


def test_compare_with_peak_lr_auto_uses_and_stores_the_finder_pick(tmp_path, capsys):
    out = tmp_path / "auto"
    args = ["compare", "--task", "digits-mlp", "--epochs", "1", "--seeds", "1", "--schedules", "onecycle()",
            "--peak-lr", "auto", "--out", str(out)]
    threads = torch.get_num_threads()
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(threads)
    store = Store(out)
    try:
        peak = store.meta("peak_lr")
        [run] = store.runs()
        lrs = store.step_metrics(run.id)["lr"]
    finally:
        store.close()
    assert peak["interval"][0] <= peak["lr"] <= peak["interval"][1]
    assert max(lrs) == pytest.approx(peak["lr"], rel=0.05)  # OneCycle peaks at the finder's LR
    assert (out / "figures" / "lr_finder.png").is_file()
    assert f"peak LR: {peak['lr']:.3g}" in capsys.readouterr().out


def test_a_sigterm_re_raised_by_a_library_as_a_plain_keyboard_interrupt_still_exits_143() -> None:
    from lrlab.cli.common import Terminated, interrupted_code, raise_terminated, start_command

    start_command()
    assert interrupted_code(KeyboardInterrupt()) == 130
    with pytest.raises(Terminated):
        raise_terminated(signal.SIGTERM, None)
    assert interrupted_code(KeyboardInterrupt()) == 143  # as Ray's ray.wait re-raises it
    start_command()
    assert interrupted_code(KeyboardInterrupt()) == 130

"""Forked workers: groups dealt and stored as they end, a killed worker's group dealt again, clean stops.

The stop tests start ``python -m lrlab compare`` and signal it, as a terminal, an IDE or a job scheduler does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lrlab.cli import main
from lrlab.runs import RunSpec
from lrlab.store import Store
from lrlab.tasks import OptimizerDefaults, Task
from lrlab.vectorized import train_many
from lrlab.workers import WorkerLostError, process_count, train_groups
from processes import alive

pytestmark = pytest.mark.usefixtures("one_thread")

SGD = OptimizerDefaults(name="sgd", lr=0.1, momentum=0.9)
linux_with_two_cores = pytest.mark.skipif(not Path("/proc/self/task").exists() or process_count(8) < 2,
                                          reason="needs Linux's /proc and two cores for two workers")




def records(metrics: list) -> list[tuple]:
    return [(m.lr, m.momentum, m.train_loss, m.epochs, m.diverged_step) for m in metrics]


def killing_task(digits: Task, once: Path | None = None) -> Task:
    """digits-mlp whose model factory SIGKILLs the worker process building it (once, with a flag file)."""
    parent = os.getpid()

    def make_model():
        if os.getpid() != parent and (once is None or not once.exists()):
            if once is not None:
                once.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return digits.make_model()

    return replace(digits, make_model=make_model)


@linux_with_two_cores
def test_groups_dealt_over_workers_come_back_one_by_one_equal_to_one_process(digits: Task) -> None:
    runs = [RunSpec(spec, seed, 1, digits.batch_size, SGD) for spec in ("constant()", "cosine()") for seed in (0, 1)]
    groups = [[0, 1], [2], [3]]
    started, done = [], {}
    train_groups(digits, runs, groups, 2, on_start=started.append,
                 on_done=lambda group, metrics: done.setdefault(tuple(group), metrics))
    assert sorted(started) == sorted(groups) and sorted(done) == [(0, 1), (2,), (3,)]
    for group, metrics in done.items():
        assert records(metrics) == records(train_many(digits, [runs[i] for i in group]))


@linux_with_two_cores
def test_a_killed_workers_group_is_dealt_again_to_a_fresh_one(digits: Task, tmp_path: Path) -> None:
    runs = [RunSpec("cosine()", seed, 1, digits.batch_size, SGD) for seed in range(4)]
    done = {}
    train_groups(killing_task(digits, once=tmp_path / "killed"), runs, [[0, 1], [2, 3]], 2,
                 on_done=lambda group, metrics: done.setdefault(tuple(group), metrics))
    assert (tmp_path / "killed").exists() and sorted(done) == [(0, 1), (2, 3)]
    assert records(done[(0, 1)] + done[(2, 3)]) == records(train_many(digits, runs))


@linux_with_two_cores
def test_a_group_that_kills_every_worker_stops_the_sweep_in_one_line(digits: Task, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture) -> None:
    runs = [RunSpec("cosine()", seed, 1, digits.batch_size, SGD) for seed in range(4)]
    with pytest.raises(WorkerLostError, match=r"died \(killed by SIGKILL\) 2 times on the same group of 2 runs"):
        train_groups(killing_task(digits), runs, [[0, 1], [2, 3]], 2)
    (tmp_path / "killer_task.py").write_text(textwrap.dedent("""
        import os, signal
        from dataclasses import replace
        from lrlab.tasks import load_task
        PARENT = os.getpid()

        def make():
            digits = load_task("digits-mlp")
            def make_model():
                if os.getpid() != PARENT:
                    os.kill(os.getpid(), signal.SIGKILL)
                return digits.make_model()
            return replace(digits, name="killer", make_model=make_model)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["compare", "--task", "killer_task:make", "--epochs", "3", "--seeds", "4", "--trainer", "vectorized",
                 "--out", str(tmp_path / "out"), "--no-report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("lrlab: error: a training process died (killed by SIGKILL)")
    assert err[-1].endswith("0 runs stored; run the same command to resume") and "Traceback" not in "".join(err)


# ---- signals to a running `lrlab compare` -------------------------------------------------------------------

def children(pid: int) -> set[int]:
    found: set[int] = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        found |= {int(child) for child in path.read_text().split()}
    return found



def start_compare(out: Path, epochs: int) -> tuple[subprocess.Popen, set[int]]:
    """A vectorized compare (24 runs, dealt over 2 workers), once both workers train; and their pids."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lrlab", "compare", "--task", "digits-mlp", "--epochs", str(epochs), "--seeds", "4",
         "--trainer", "vectorized", "--out", str(out), "--no-report"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while len(workers) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        workers = {pid for pid in children(process.pid) if alive(pid)}
    if len(workers) < 2:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"the workers never started: {process.stderr.read()[-2000:] if process.stderr else ''}")
    time.sleep(0.5)  # into training
    return process, workers


def assert_stopped_cleanly(process: subprocess.Popen, workers: set[int], out: Path, code: int) -> None:
    try:
        _, err = process.communicate(timeout=60)  # the sweep left alone would take minutes
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail("the parent did not stop")
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert process.returncode == code, err[-2000:]
    stored = len(Store(out).finished_runs())
    assert err.strip().splitlines()[-1] == f"interrupted: {stored} runs stored; run the same command to resume"
    assert "Traceback" not in err
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers), "a worker outlived its parent"


@linux_with_two_cores
def test_sigterm_stops_a_vectorized_compare_like_ctrl_c_and_its_workers_die(tmp_path: Path) -> None:
    process, workers = start_compare(tmp_path, epochs=400)
    os.kill(process.pid, signal.SIGTERM)
    assert_stopped_cleanly(process, workers, tmp_path, code=143)


@linux_with_two_cores
def test_sigint_to_the_parent_alone_stops_it_without_waiting_for_the_groups(tmp_path: Path) -> None:
    process, workers = start_compare(tmp_path, epochs=2000)
    os.kill(process.pid, signal.SIGINT)  # the parent only, as `kill -INT`, an IDE or `timeout -s INT` do
    assert_stopped_cleanly(process, workers, tmp_path, code=130)

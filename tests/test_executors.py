"""The executor seam: a sweep stored once, equal to in-process, through forked workers, a real Dask cluster on
loopback (2 worker processes, 1 thread each) and a real 2-node Ray cluster on loopback (1 CPU each), with one worker
SIGKILLed mid-task; one-line errors; clean stops; a killed driver resumed.

The Dask tests skip where ``lrlab[dask]`` is not installed, the Ray tests where ``lrlab[ray]`` is not.
"""

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

from lrlab import executors
from lrlab.cli import main
from lrlab.config import ExperimentConfig, parse_config
from lrlab.errors import ConfigError
from lrlab.runner import plan_sweep, run_sweep
from lrlab.store import Store
from lrlab.workers import process_count

SCHEDULES = {"constant": "constant()", "cosine": "cosine()"}
linux_with_two_cores = pytest.mark.skipif(not Path("/proc/self/task").exists() or process_count(8) < 2,
                                          reason="needs Linux's /proc and two cores for two workers")

# digits-mlp whose model factory SIGKILLs the (non-driver) process building it, once per ARMED file
KILLER = textwrap.dedent("""
    import os, signal
    from dataclasses import replace
    from pathlib import Path
    from lrlab.tasks import load_task

    DRIVER = {driver}
    ARMED = Path({armed!r})

    def make():
        digits = load_task("digits-mlp")

        def make_model():
            if os.getpid() != DRIVER:
                try:
                    ARMED.unlink()  # atomic: one worker dies, however many see the file
                except FileNotFoundError:
                    pass
                else:
                    os.kill(os.getpid(), signal.SIGKILL)
            return digits.make_model()

        return replace(digits, name="killer", make_model=make_model)
""")


@pytest.fixture(scope="module")
def killer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ARMED file of the importable task ``kill_once_task:make`` (importable by processes spawned after this).

    The module's name is this file's own, and any module of that name imported earlier is dropped: a module
    cached under a shared name (tests/test_workers.py's ``killer_task`` kills every worker) would be imported
    instead, and every worker of the group would die.
    """
    folder = tmp_path_factory.mktemp("killer")
    armed = folder / "armed"
    (folder / "kill_once_task.py").write_text(KILLER.format(driver=os.getpid(), armed=str(armed)))
    sys.path.insert(0, str(folder))
    sys.modules.pop("kill_once_task", None)
    yield armed
    sys.path.remove(str(folder))
    sys.modules.pop("kill_once_task", None)



def config(task: str, trainer: str, seeds: int, **overrides: object) -> ExperimentConfig:
    return parse_config({"task": task, "epochs": 2, "seeds": seeds, "trainer": trainer, "schedules": SCHEDULES,
                         **overrides})


def sweep_into(out: Path, experiment: ExperimentConfig) -> str:
    with plan_sweep(experiment, out) as sweep:
        return run_sweep(sweep)


def stored(out: Path) -> dict[tuple[str, int], tuple]:
    """Every stored run's metrics by (schedule, seed), checking each run is stored exactly once."""
    with Store(out, readonly=True) as store:
        runs = store.runs()
        assert len({(r.schedule, r.seed) for r in runs}) == len(runs)
        assert all(r.status == "done" for r in runs)
        return {(r.schedule, r.seed): (store.step_metrics(r.id), store.epoch_metrics(r.id)) for r in runs}


def in_process(tmp_path: Path, trainer: str, seeds: int) -> dict[tuple[str, int], tuple]:
    sweep_into(tmp_path / "reference", config("digits-mlp", trainer, seeds, backend="local"))
    return stored(tmp_path / "reference")


# ---- local processes --------------------------------------------------------------------------------------


@linux_with_two_cores
def test_a_sweep_with_a_killed_forked_worker_stores_every_run_once_equal_to_in_process(
        tmp_path: Path, killer: Path, one_thread: None) -> None:
    killer.touch()
    used = sweep_into(tmp_path / "out", config("kill_once_task:make", "vectorized", 4))
    assert not killer.exists(), "no worker was killed"
    assert "in 2 processes" in used
    runs = stored(tmp_path / "out")
    assert len(runs) == 8 and runs == in_process(tmp_path, "vectorized", 4)


# ---- one-line errors and the config -----------------------------------------------------------------------


def test_an_address_without_a_cluster_backend_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["compare", "--address", "tcp://127.0.0.1:8786", "--out", str(tmp_path)])
    assert code == 2 and capsys.readouterr().err.strip() == (
        "lrlab: error: address='tcp://127.0.0.1:8786' is invalid: an address is for a cluster: expected backend "
        "'dask' or 'ray' with it (--backend dask, --backend ray)")


@pytest.mark.parametrize(("backend", "module", "needs"), [("dask", "distributed", "Dask distributed"),
                                                            ("ray", "ray", "Ray")])
def test_an_engine_not_installed_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture, backend: str, module: str,
                                             needs: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import <module>` raises ImportError
    code = main(["compare", "--task", "digits-mlp", "--epochs", "1", "--seeds", "1", "--schedules", "constant()",
                 "--backend", backend, "--out", str(tmp_path), "--no-report"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"lrlab: error: backend={backend!r} needs {needs}: pip install 'lrlab[{backend}]'")


def test_the_backend_is_not_part_of_the_experiment(tmp_path: Path) -> None:
    local = config("digits-mlp", "sequential", 1)
    dask = config("digits-mlp", "sequential", 1, backend="dask", address="tcp://10.0.0.1:8786")
    assert local.identity() == dask.identity()
    sweep_into(tmp_path, local)
    with plan_sweep(dask, tmp_path) as sweep:  # resumed on another backend: nothing to train, no cluster reached
        assert not sweep.pending and run_sweep(sweep) == "none: every run is already stored"


def test_an_unknown_backend_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^backend='spark' is invalid: expected one of \['local', 'dask', 'ray'\]$"):
        executors.open_executor("spark", None, "sequential", 1, 1)


# ---- Dask distributed and Ray on loopback ----------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster(killer: Path) -> Iterator[str]:
    """A real Dask scheduler and 2 single-thread worker processes on 127.0.0.1: the scheduler's address."""
    distributed = pytest.importorskip("distributed")
    import dask

    # a task may kill one worker and still run (a real cluster's default allows 3)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def ray_cluster(killer: Path) -> Iterator[str]:
    """A real 2-node Ray cluster on loopback, 1 CPU each, about 9 s to start (20 s under load): the head's address.

    The nodes are 127.0.0.2 and 127.0.0.3 (Ray rewrites 127.0.0.1 to the machine's own address); their workers
    inherit this process's PYTHONPATH, set to its sys.path as they start (the killer tasks' folder included).
    """
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    try:
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.2",
                                                              "include_dashboard": False})
        nodes.add_node(num_cpus=1, node_ip_address="127.0.0.3")
    finally:
        os.environ.pop("PYTHONPATH") if path is None else os.environ.update(PYTHONPATH=path)
    yield nodes.address
    nodes.shutdown()


ON_A_CLUSTER = [pytest.param("dask", id="dask"), pytest.param("ray", id="ray", marks=pytest.mark.slow)]


@pytest.mark.parametrize("trainer", ["sequential", "vectorized"])
@pytest.mark.parametrize("backend", ON_A_CLUSTER)
def test_a_sweep_on_a_cluster_with_a_killed_worker_stores_every_run_once_equal_to_in_process(
        tmp_path: Path, request: pytest.FixtureRequest, killer: Path, one_thread: None, backend: str,
        trainer: str) -> None:
    address = request.getfixturevalue(f"{backend}_cluster")
    seeds = 4 if trainer == "vectorized" else 2
    killer.touch()
    used = sweep_into(tmp_path / "out", config("kill_once_task:make", trainer, seeds, backend=backend,
                                               address=address))
    assert not killer.exists(), "no worker was killed"
    assert used.endswith(f"; backend {backend} at {address}")
    runs = stored(tmp_path / "out")
    assert len(runs) == 2 * seeds and runs == in_process(tmp_path, trainer, seeds)


@pytest.mark.parametrize("backend", ON_A_CLUSTER)
def test_a_task_that_kills_every_worker_stops_the_sweep_in_one_line(
        tmp_path: Path, request: pytest.FixtureRequest, killer: Path, capsys: pytest.CaptureFixture,
        backend: str) -> None:
    address = request.getfixturevalue(f"{backend}_cluster")
    (killer.parent / "always_killer.py").write_text(textwrap.dedent(f"""
        import os, signal
        from dataclasses import replace
        from lrlab.tasks import load_task

        def make():
            digits = load_task("digits-mlp")

            def make_model():
                if os.getpid() != {os.getpid()}:
                    os.kill(os.getpid(), signal.SIGKILL)
                return digits.make_model()

            return replace(digits, name="always", make_model=make_model)
    """))
    code = main(["compare", "--task", "always_killer:make", "--epochs", "1", "--seeds", "1", "--schedules",
                 "constant()", "--trainer", "sequential", "--backend", backend, "--address", address,
                 "--out", str(tmp_path / "out"), "--no-report"])
    err = capsys.readouterr().err.strip().splitlines()
    engine = {"dask": "Dask", "ray": "Ray"}[backend]
    assert code == 1 and err[-1].startswith(
        f"lrlab: error: the {engine} workers training the same group of 1 runs kept dying")
    assert err[-1].endswith("0 runs stored; run the same command to resume")


@pytest.mark.parametrize(("backend", "module", "address"), [("dask", "distributed", "tcp://127.0.0.1:9"),
                                                              ("ray", "ray", "127.0.0.1:9")])
def test_an_unreachable_address_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture, backend: str, module: str,
                                            address: str) -> None:
    pytest.importorskip(module)
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 0.5)
    code = main(["compare", "--task", "digits-mlp", "--epochs", "1", "--seeds", "1", "--schedules", "constant()",
                 "--backend", backend, "--address", address, "--out", str(tmp_path), "--no-report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith(f"lrlab: error: address={address!r} cannot be reached: ")
    assert "Traceback" not in "".join(err)


# ---- stopping a driver that started its own cluster -------------------------------------------------------


def session(sid: int) -> set[int]:
    """The live processes of session ``sid``: a driver started in a session of its own, and all it started."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def start_compare(out: Path, backend: str, epochs: int, seeds: int = 2, until: str = "running") -> subprocess.Popen:
    """``lrlab compare --backend dask|ray`` (its own local cluster), once a run is stored with status ``until``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lrlab", "compare", "--task", "digits-mlp", "--epochs", str(epochs), "--seeds",
         str(seeds), "--schedules", "constant()", "--trainer", "sequential", "--backend", backend, "--out", str(out),
         "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        if (out / "lrlab.sqlite").exists() and any(r.status == until for r in Store(out).runs()):
            break
    assert len(session(process.pid)) > 1, "no worker process started"
    return process


def assert_no_process_left(sid: int, within_s: float = 30) -> None:
    """Wait up to ``within_s`` seconds for session ``sid`` to end; kill and fail on what is left."""
    deadline = time.monotonic() + within_s
    while session(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftover = session(sid)
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert not leftover, "a cluster process outlived the driver"


@pytest.mark.parametrize(("backend", "sig", "code"), [
    pytest.param("dask", signal.SIGINT, 130, marks=pytest.mark.slow), ("dask", signal.SIGTERM, 143),
    pytest.param("ray", signal.SIGTERM, 143, marks=pytest.mark.slow)])
def test_a_signal_stops_a_cluster_sweep_keeps_its_runs_and_leaves_no_cluster_process(
        tmp_path: Path, backend: str, sig: signal.Signals, code: int) -> None:
    pytest.importorskip({"dask": "distributed", "ray": "ray"}[backend])
    process = start_compare(tmp_path, backend, epochs=300)
    try:
        os.kill(process.pid, sig)  # the driver only, as `kill` or a job scheduler does
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == code, err[-2000:]
    assert err.strip().splitlines()[-1] == "interrupted: 0 runs stored; run the same command to resume"
    assert "Traceback" not in err
    assert_no_process_left(process.pid)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["dask", "ray"])
def test_a_killed_driver_takes_its_cluster_with_it_and_a_rerun_resumes(tmp_path: Path, request: pytest.FixtureRequest,
                                                                       one_thread: None, backend: str) -> None:
    address = request.getfixturevalue(f"{backend}_cluster")
    process = start_compare(tmp_path / "out", backend, epochs=10, seeds=6, until="done")
    os.kill(process.pid, signal.SIGKILL)  # the driver alone: its local cluster's workers must not linger
    process.communicate()
    # Ray's GCS and raylet stop with the driver; its workers and agents notice in 25-75 s (measured under load)
    assert_no_process_left(process.pid, within_s=30 if backend == "dask" else 150)
    before = {(r.schedule, r.seed): r for r in Store(tmp_path / "out").runs() if r.status == "done"}
    assert 0 < len(before) < 6

    resumed = parse_config({"task": "digits-mlp", "epochs": 10, "seeds": 6, "trainer": "sequential",
                            "schedules": {"constant()": "constant()"}, "backend": backend, "address": address})
    with plan_sweep(resumed, tmp_path / "out") as sweep:
        assert len(sweep.pending) == 6 - len(before)
        run_sweep(sweep)
    runs = stored(tmp_path / "out")
    with Store(tmp_path / "out", readonly=True) as store:
        after = {r.id: r for r in store.runs()}
    assert all(after[r.id].wall_s == r.wall_s for r in before.values())  # kept, not retrained
    sweep_into(tmp_path / "reference", resumed.model_copy(update={"backend": "local", "address": None}))
    assert runs == stored(tmp_path / "reference")

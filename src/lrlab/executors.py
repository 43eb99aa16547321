"""Where a sweep's groups of runs train: one seam (:class:`Executor`), three engines behind it.

The runner hands an executor a :class:`Job` (the task, its runs, the trainer) and groups of runs (lists of
indices into ``job.runs``); the executor trains them and hands each group's metrics back as the group ends
(``on_done``), in the order groups end. Only the driver writes the store: a group trained twice (a retried task)
is handed back once, and the driver stores what it is handed.

- :class:`InProcess`: one group after another in this process (the reference).
- :class:`LocalProcesses`: forked single-thread workers on this machine (:mod:`lrlab.workers`), a dead worker's
  group dealt again once.
- :class:`DaskExecutor`: the workers of a Dask distributed cluster (``pip install 'lrlab[dask]'``), at an
  address or a ``LocalCluster`` started on 127.0.0.1. The task goes by name and each worker process loads it once
  (nothing is pickled per run but the runs' specs); Dask re-runs the task of a worker that dies.
- :class:`RayExecutor`: the same over a Ray cluster (``pip install 'lrlab[ray]'``), at an address or a local one
  started by ``ray.init``; Ray retries the task of a worker that dies (``max_retries``).

On a cluster each group asks for :data:`THREADS_PER_GROUP` CPUs and, when the task's device is CUDA,
:data:`GPU_SHARE` of a GPU (Dask's ``resources``, Ray's ``num_cpus``/``num_gpus``). :func:`open_executor` picks an
executor from the config's ``backend``. Importing this module does not import torch.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from lrlab.errors import ConfigError
from lrlab.runs import RunMetrics, RunSpec

if TYPE_CHECKING:
    from lrlab.tasks import Task

__all__ = ["BACKENDS", "GPU_SHARE", "THREADS_PER_GROUP", "DaskExecutor", "Executor", "InProcess", "Job",
           "LocalProcesses", "RayExecutor", "open_executor"]

#: ``backend:`` values: ``local`` (this machine: in-process or forked workers), ``dask``, ``ray`` (a cluster)
BACKENDS = ("local", "dask", "ray")
#: how long to try reaching a cluster at ``--address`` before giving up, in seconds
CONNECT_TIMEOUT_S = 10.0
#: a group is tried on at most this many workers, then stops the sweep: Ray's ``max_retries`` + 1, and Dask's
#: ``allowed-failures`` + 1 in a cluster lrlab starts (a Dask cluster at an address keeps its own, default 3 + 1)
ATTEMPTS = 2
#: CPU threads a group trains on, and asks a cluster for (tiny models train fastest on one thread)
THREADS_PER_GROUP = 1
#: the fraction of a GPU a group asks a cluster for when the task's device is CUDA: the built-in models leave
#: most of a GPU idle, so four groups share one
GPU_SHARE = 0.25

OnStart = Callable[[list[int]], None]
OnStep = Callable[[int], None]
OnDone = Callable[[list[int], list[RunMetrics]], None]


@dataclass(frozen=True)
class Job:
    """What a sweep's groups share: the task (loaded, and by the name :func:`lrlab.tasks.load_task` takes, for
    workers that load it themselves), the runs the groups index, and the trainer (``sequential`` or
    ``vectorized``)."""

    task: Task
    task_name: str
    runs: Sequence[RunSpec]
    trainer: str


class Executor(Protocol):
    """Trains groups of a :class:`Job`'s runs and hands each group's metrics back as it ends.

    ``slots`` is how many groups train at once (the runner splits the runs into groups with it).
    :meth:`train` calls ``on_start(group)`` when a group is handed out, ``on_done(group, metrics)`` when it ends
    (metrics in the group's order) and, where the engine reports it, ``on_step(step)`` as training advances.
    :meth:`close` releases what the executor started (processes, a cluster), also after an interrupt.
    """

    slots: int

    def train(self, job: Job, groups: Sequence[list[int]], on_start: OnStart | None = None,
              on_step: OnStep | None = None, on_done: OnDone | None = None) -> None: ...

    def close(self) -> None: ...


class InProcess:
    """Every group in this process, one after another."""

    slots = 1

    def train(self, job: Job, groups: Sequence[list[int]], on_start: OnStart | None = None,
              on_step: OnStep | None = None, on_done: OnDone | None = None) -> None:
        from lrlab.vectorized import train_group

        for group in groups:
            if on_start is not None:
                on_start(group)
            metrics = train_group(job.task, [job.runs[i] for i in group], job.trainer, on_step)
            if on_done is not None:
                on_done(group, metrics)

    def close(self) -> None:
        pass


class LocalProcesses:
    """Forked single-thread worker processes on this machine (:func:`lrlab.workers.train_groups`)."""

    def __init__(self, processes: int) -> None:
        self.slots = processes

    def train(self, job: Job, groups: Sequence[list[int]], on_start: OnStart | None = None,
              on_step: OnStep | None = None, on_done: OnDone | None = None) -> None:
        from lrlab.workers import train_groups

        train_groups(job.task, job.runs, groups, self.slots, on_step, on_start, on_done, trainer=job.trainer)

    def close(self) -> None:
        pass  # the workers end with each train()


# ------------------------------------------------------------------------------------------------ Dask


class DaskExecutor:
    """The workers of a Dask distributed cluster: at ``address`` (``tcp://HOST:PORT``), or a ``LocalCluster`` of
    ``workers`` single-thread worker processes on 127.0.0.1, closed with :meth:`close`.

    Each group is one Dask task; the task is shipped by name and loaded once per worker process. It asks for the
    resources ``CPU`` and, for a CUDA ``device``, ``GPU`` (:data:`GPU_SHARE`) where the cluster's workers declare
    them (a local cluster's do; a GPU must be declared: ``dask worker ... --resources GPU=1``). A worker that
    dies has its task re-run elsewhere by Dask; a task that loses :data:`ATTEMPTS` workers stops the sweep with
    :class:`lrlab.workers.WorkerLostError`. Raises :class:`ConfigError` when Dask is not installed, the address
    cannot be reached, or no worker declares the GPU a CUDA device needs.
    """

    def __init__(self, address: str | None = None, workers: int = 1, device: str = "cpu") -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("backend='dask' needs Dask distributed: pip install 'lrlab[dask]'") from None
        self._cluster = None
        try:
            if address is None:
                declared = {"CPU": THREADS_PER_GROUP, **({"GPU": GPU_SHARE} if _on_gpu(device) else {})}
                # the scheduler reads it as it starts; a remote scheduler keeps its own setting. Its logs stay
                # quiet: a task's error reaches the driver as the task's exception, and a stop (Ctrl-C, SIGTERM)
                # closing comms mid-send is not an error, though distributed logs one with a traceback
                with dask.config.set({"distributed.scheduler.allowed-failures": ATTEMPTS - 1}):
                    self._cluster = LocalCluster(n_workers=workers, threads_per_worker=THREADS_PER_GROUP,
                                                 processes=True, host="127.0.0.1", dashboard_address=None,
                                                 resources=declared, silence_logs=logging.CRITICAL)
                self.client = Client(self._cluster)
            else:
                self.client = Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as error:
            self.close()
            where = f"address={address!r}" if address else "a local Dask cluster"
            raise ConfigError(f"{where} cannot be reached: {error}; expected a running Dask scheduler "
                              "(dask scheduler, then dask worker tcp://HOST:8786)") from None
        self.slots = max(1, sum(self.client.nthreads().values()))
        self.resources = self._requests(device)

    def _requests(self, device: str) -> dict[str, float]:
        """What each group asks for: ``CPU`` and ``GPU`` where a worker declares them (a resource no worker
        declares would leave the task waiting forever); a CUDA device on workers without a GPU is refused."""
        declared: set[str] = set()
        for worker in self.client.scheduler_info(n_workers=-1)["workers"].values():
            declared |= set(worker.get("resources", {}))
        if _on_gpu(device) and "GPU" not in declared:
            self.close()
            raise ConfigError(f"device={device!r} is invalid for this Dask cluster: no worker declares a GPU; "
                              "expected workers started with --resources GPU=1")
        wanted = {"CPU": THREADS_PER_GROUP, **({"GPU": GPU_SHARE} if _on_gpu(device) else {})}
        return {name: amount for name, amount in wanted.items() if name in declared}

    def train(self, job: Job, groups: Sequence[list[int]], on_start: OnStart | None = None,
              on_step: OnStep | None = None, on_done: OnDone | None = None) -> None:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        from lrlab.workers import WorkerLostError

        futures = {}
        for group in groups:
            future = self.client.submit(_train_named, job.task_name, [job.runs[i] for i in group], job.trainer,
                                        pure=False, resources=self.resources or None)
            futures[future] = group
            if on_start is not None:
                on_start(group)
        try:
            for future in as_completed(futures):
                try:
                    metrics = future.result()
                except KilledWorker as error:
                    raise WorkerLostError(f"the Dask workers training the same group of {len(futures[future])} runs "
                                          "kept dying, e.g. out of memory") from error
                if on_done is not None:
                    on_done(futures[future], metrics)
        except BaseException:
            self._kill_local_workers()
            raise
        finally:
            self.client.cancel(list(futures))

    def _kill_local_workers(self) -> None:
        """Stop our own cluster's workers at once (they hold nothing but unstored metrics): a graceful close
        would wait seconds for the groups in flight. A cluster at an address is left to its owner."""
        if self._cluster is None:
            return
        for nanny in self._cluster.workers.values():
            if nanny.pid:
                with contextlib.suppress(OSError):
                    os.kill(nanny.pid, signal.SIGKILL)

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self._cluster is not None:
            self._cluster.close()


@functools.lru_cache(maxsize=4)
def _load_task(name: str) -> Task:
    """A worker process's task, loaded once: the first group it trains builds the data, later groups reuse it."""
    from lrlab.tasks import load_task

    return load_task(name)


def _train_named(task_name: str, runs: list[RunSpec], trainer: str) -> list[RunMetrics]:
    """A cluster's task (Dask or Ray): train ``runs`` of the task called ``task_name`` on
    :data:`THREADS_PER_GROUP` threads, unless the worker's ``OMP_NUM_THREADS`` says otherwise."""
    import torch

    from lrlab.vectorized import train_group

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(THREADS_PER_GROUP)
    return train_group(_load_task(task_name), runs, trainer)


# ------------------------------------------------------------------------------------------------ Ray


class RayExecutor:
    """The workers of a Ray cluster: at ``address`` (``HOST:PORT`` of its head, ``ray://HOST:PORT``, ``auto``),
    or a Ray instance of ``workers`` CPUs started on this machine and stopped by :meth:`close`. A Ray already
    initialized in this process is used as it is, and left running.

    Each group is one Ray task asking for :data:`THREADS_PER_GROUP` CPUs (``num_cpus``) and, for a CUDA
    ``device``, :data:`GPU_SHARE` of a GPU (``num_gpus``); the task is shipped by name and loaded once per worker
    process. A task whose worker dies is retried (``max_retries``), and one that loses :data:`ATTEMPTS` workers
    stops the sweep with :class:`lrlab.workers.WorkerLostError`. Raises :class:`ConfigError` when Ray is not
    installed, the address cannot be reached, or the cluster has no GPU for a CUDA device.
    """

    def __init__(self, address: str | None = None, workers: int = 1, device: str = "cpu") -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("backend='ray' needs Ray: pip install 'lrlab[ray]'") from None
        self._owned = not ray.is_initialized()
        if self._owned:
            quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            # ray.init puts its own handlers on SIGTERM and SIGINT (SIGTERM would abort the driver, exit -6): the
            # caller's go back, so a stop takes its orderly path
            handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            if address is None:  # a new instance (not one already running here), its workers importing what this
                path = os.pathsep.join(p for p in sys.path if p)  # process imports (a user's task module too)
                ray.init(address="local", num_cpus=workers, runtime_env={"env_vars": {"PYTHONPATH": path}}, **quiet)
            else:
                _check_reachable(address)
                ray.init(address=address, **quiet)
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)
        available = ray.cluster_resources()
        gpus = GPU_SHARE if _on_gpu(device) else 0
        if gpus and not available.get("GPU"):
            self.close()
            raise ConfigError(f"device={device!r} is invalid for this Ray cluster: it has no GPU; expected nodes "
                              "started with GPUs (ray start --num-gpus N)")
        self.slots = max(1, int(available.get("CPU", 0) // THREADS_PER_GROUP))
        if gpus:
            self.slots = max(1, min(self.slots, int(available["GPU"] / gpus)))
        self._remote = ray.remote(_train_named).options(num_cpus=THREADS_PER_GROUP, num_gpus=gpus,
                                                        max_retries=ATTEMPTS - 1, retry_exceptions=False)

    def train(self, job: Job, groups: Sequence[list[int]], on_start: OnStart | None = None,
              on_step: OnStep | None = None, on_done: OnDone | None = None) -> None:
        import ray
        from ray.exceptions import NodeDiedError, RayTaskError, WorkerCrashedError

        from lrlab.workers import WorkerLostError

        refs = {}
        for group in groups:
            refs[self._remote.remote(job.task_name, [job.runs[i] for i in group], job.trainer)] = group
            if on_start is not None:
                on_start(group)
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                try:
                    metrics = ray.get(ready[0])
                except (WorkerCrashedError, NodeDiedError) as error:
                    raise WorkerLostError(f"the Ray workers training the same group of {len(refs[ready[0]])} runs "
                                          f"kept dying ({ATTEMPTS} tries), e.g. out of memory") from error
                except RayTaskError as error:  # an error in the task: raised here as itself, as in-process
                    raise error.cause if isinstance(error.cause, Exception) else error from None
                if on_done is not None:
                    on_done(refs[ready[0]], metrics)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if getattr(self, "_owned", False):
            import ray

            ray.shutdown()  # stops the instance started here; a cluster at an address is only left


def _check_reachable(address: str) -> None:
    """Raise :class:`ConfigError` unless ``HOST:PORT`` (``ray://`` or not) accepts a connection within
    :data:`CONNECT_TIMEOUT_S` (``ray.init`` would wait minutes for an address where nothing listens)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise ConfigError(f"address={address!r} cannot be reached: {error}; expected the head of a running Ray "
                          "cluster, HOST:PORT (ray start --head --port 6379)") from None


def _on_gpu(device: str) -> bool:
    """Whether a task on ``device`` (``cpu``, ``cuda``, ``cuda:1``) trains on a GPU."""
    return device.split(":")[0] == "cuda"


# -------------------------------------------------------------------------------------------- choosing one


def open_executor(backend: str, address: str | None, trainer: str, processes: int, runs: int,
                  device: str = "cpu") -> Executor:
    """The executor for ``backend``; close it when the sweep ends.

    ``local``: vectorized groups over ``processes`` forked workers when there are two or more, else in-process.
    ``dask``, ``ray``: the cluster at ``address``, else one started on this machine with one single-thread worker
    per core (at most ``runs``; for vectorized groups, ``processes``), its groups asking for a GPU share when
    ``device`` is CUDA.
    """
    if backend in ("dask", "ray"):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = max(1, processes if trainer == "vectorized" else min(cores, runs))
        return (DaskExecutor if backend == "dask" else RayExecutor)(address, workers, device)
    if backend != "local":
        raise ConfigError(f"backend={backend!r} is invalid: expected one of {list(BACKENDS)}")
    if trainer == "vectorized" and processes > 1:
        return LocalProcesses(processes)
    return InProcess()

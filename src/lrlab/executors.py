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

:func:`open_executor` picks one from the config's ``backend``. Importing this module does not import torch.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from lrlab.errors import ConfigError
from lrlab.runs import RunMetrics, RunSpec

if TYPE_CHECKING:
    from lrlab.tasks import Task

__all__ = ["BACKENDS", "DaskExecutor", "Executor", "InProcess", "Job", "LocalProcesses", "open_executor"]

#: ``backend:`` values: ``local`` (this machine: in-process or forked workers), ``dask`` (a Dask cluster)
BACKENDS = ("local", "dask")
#: how long to try reaching a Dask scheduler at ``--address`` before giving up, in seconds
CONNECT_TIMEOUT_S = 10.0
#: in a local cluster, a Dask task whose worker died this many times stops the sweep (``allowed-failures`` + 1; a
#: cluster at an address keeps its own setting, Dask's default 3 + 1)
DASK_ALLOWED_FAILURES = 2

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

    Each group is one Dask task; the task is shipped by name and loaded once per worker process. A worker that
    dies has its task re-run elsewhere by Dask; a task that loses :data:`DASK_ALLOWED_FAILURES` workers stops the
    sweep with :class:`lrlab.workers.WorkerLostError`. Raises :class:`ConfigError` when Dask is not installed or
    the address cannot be reached.
    """

    def __init__(self, address: str | None = None, workers: int = 1) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("backend='dask' needs Dask distributed: pip install 'lrlab[dask]'") from None
        self._cluster = None
        try:
            if address is None:
                # the scheduler reads it as it starts; a remote scheduler keeps its own setting
                with dask.config.set({"distributed.scheduler.allowed-failures": DASK_ALLOWED_FAILURES - 1}):
                    self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                 host="127.0.0.1", dashboard_address=None,
                                                 silence_logs=logging.ERROR)
                self.client = Client(self._cluster)
            else:
                self.client = Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as error:
            self.close()
            where = f"address={address!r}" if address else "a local Dask cluster"
            raise ConfigError(f"{where} cannot be reached: {error}; expected a running Dask scheduler "
                              "(dask scheduler, then dask worker tcp://HOST:8786)") from None
        self.slots = max(1, sum(self.client.nthreads().values()))

    def train(self, job: Job, groups: Sequence[list[int]], on_start: OnStart | None = None,
              on_step: OnStep | None = None, on_done: OnDone | None = None) -> None:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        from lrlab.workers import WorkerLostError

        futures = {}
        for group in groups:
            future = self.client.submit(_train_named, job.task_name, [job.runs[i] for i in group], job.trainer,
                                        pure=False)
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
    """A Dask task: train ``runs`` of the task called ``task_name`` (tiny models train fastest on one thread)."""
    import torch

    from lrlab.vectorized import train_group

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    return train_group(_load_task(task_name), runs, trainer)


# -------------------------------------------------------------------------------------------- choosing one


def open_executor(backend: str, address: str | None, trainer: str, processes: int, runs: int) -> Executor:
    """The executor for ``backend``; close it when the sweep ends.

    ``local``: vectorized groups over ``processes`` forked workers when there are two or more, else in-process.
    ``dask``: the cluster at ``address``, else a ``LocalCluster`` of one worker per core (at most ``runs``; for
    vectorized groups, ``processes``).
    """
    if backend == "dask":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = processes if trainer == "vectorized" else min(cores, runs)
        return DaskExecutor(address, max(1, workers))
    if backend != "local":
        raise ConfigError(f"backend={backend!r} is invalid: expected one of {list(BACKENDS)}")
    if trainer == "vectorized" and processes > 1:
        return LocalProcesses(processes)
    return InProcess()

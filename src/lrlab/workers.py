"""Groups of runs trained in forked worker processes, dealt one group at a time, each result back as it ends.

A sweep of vectorized groups (:func:`lrlab.vectorized.train_many`) uses every core by dealing its groups over
one forked single-thread process per core. Forking shares the loaded task and the imported modules at no cost
(nothing is pickled to a worker); a worker receives a group's run indices over its pipe, trains the group and
sends back only the metrics. The caller stores each group as it arrives, so an interrupt loses only the groups
in flight.

Stopping, by design:

- A worker never outlives the process that started it: on Linux the kernel kills it when its parent dies
  (``PR_SET_PDEATHSIG``, even after ``kill -9``); anywhere, it checks its parent after every step.
- Workers ignore SIGINT (a Ctrl-C in a terminal reaches the whole process group): the parent decides. When the
  parent stops for any reason (Ctrl-C, SIGTERM, an error) it kills its workers at once; they hold nothing but
  the unfinished groups' metrics.
- A worker that dies (``kill -9``, the out-of-memory killer) has its group dealt again to a fresh worker; a
  group that loses :data:`MAX_ATTEMPTS` workers stops the sweep with :class:`WorkerLostError`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkContext
from multiprocessing.process import BaseProcess
from typing import Any

import torch

from lrlab.batched import MIN_MEMBERS
from lrlab.children import become_child_of
from lrlab.runs import RunMetrics, RunSpec
from lrlab.tasks import Task
from lrlab.vectorized import train_group

__all__ = ["MAX_ATTEMPTS", "WorkerLostError", "process_count", "train_groups"]

#: a group is tried in at most this many workers; a group that kills them all stops the sweep
MAX_ATTEMPTS = 2
_POLL_S = 0.2  # how often the parent reports progress while it waits (and so how soon it sees a signal)

# (task, runs, trainer, steps done per worker slot): set before the workers fork, so nothing is pickled to them
_FORKED: tuple[Task, list[RunSpec], str, Any] | None = None


class WorkerLostError(RuntimeError):
    """A group of runs lost :data:`MAX_ATTEMPTS` worker processes (killed, e.g. by the out-of-memory killer), or a
    Dask task its allowed workers (:class:`lrlab.executors.DaskExecutor`)."""


def process_count(runs: int) -> int:
    """Worker processes for ``runs`` runs: one per available core, each with at least :data:`MIN_MEMBERS` runs
    (a batched step on one thread leaves the other cores idle); 1 where processes cannot fork."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, runs // MIN_MEMBERS))


@dataclass
class _Worker:
    slot: int
    process: BaseProcess
    conn: Connection
    group: list[int] | None = None  # the run indices it is training, or None when idle


def train_groups(task: Task, runs: Sequence[RunSpec], groups: Sequence[list[int]], processes: int,
                 on_step: Callable[[int], None] | None = None,
                 on_start: Callable[[list[int]], None] | None = None,
                 on_done: Callable[[list[int], list[RunMetrics]], None] | None = None,
                 trainer: str = "vectorized") -> None:
    """Train each group of ``runs`` (a list of indices) with ``trainer`` (:func:`lrlab.vectorized.train_group`:
    by default as one batched model), over ``processes`` processes.

    With ``processes <= 1`` the groups train one after another in this process; else each goes to the first
    idle one of ``processes`` forked single-thread workers. In this process, in the order groups end,
    ``on_start(group)`` is called when a group starts and ``on_done(group, metrics)`` when it ends (its runs'
    metrics, in the group's order). ``on_step(step)`` reports the step reached: after every batched step in
    this process, or about 5 times a second the step of the slowest busy worker. Raises :class:`WorkerLostError`
    when a group has lost :data:`MAX_ATTEMPTS` workers; an error inside a worker is raised here.
    """
    if processes <= 1 or len(groups) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for group in groups:
            if on_start is not None:
                on_start(group)
            metrics = train_group(task, [runs[i] for i in group], trainer, on_step)
            if on_done is not None:
                on_done(group, metrics)
        return
    global _FORKED
    context = multiprocessing.get_context("fork")
    steps_done = context.Array("l", processes, lock=False)
    _FORKED = (task, list(runs), trainer, steps_done)
    queue: deque[list[int]] = deque(groups)
    attempts = [0] * len(groups)
    index = {id(group): i for i, group in enumerate(groups)}
    workers: list[_Worker] = []
    try:
        workers = [_fork(context, slot) for slot in range(min(processes, len(groups)))]
        while queue or any(w.group is not None for w in workers):
            for w in workers:
                if w.group is None and queue:
                    w.group = queue.popleft()
                    attempts[index[id(w.group)]] += 1
                    steps_done[w.slot] = 0
                    if on_start is not None:
                        on_start(w.group)
                    try:
                        w.conn.send(w.group)
                    except OSError:  # it died while idle: the loop below sees it
                        pass
            busy = [w for w in workers if w.group is not None]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=_POLL_S)
            for k, w in enumerate(workers):
                if w.group is None or (w.conn not in ready and w.process.sentinel not in ready):
                    continue
                result = _receive(w)
                if result is None:  # the worker died: deal its group again to a fresh one
                    group = w.group
                    if attempts[index[id(group)]] >= MAX_ATTEMPTS:
                        raise WorkerLostError(f"a training process died ({_how(w.process)}) {MAX_ATTEMPTS} times on "
                                         f"the same group of {len(group)} runs, e.g. out of memory")
                    queue.appendleft(group)
                    _stop(w)
                    workers[k] = _fork(context, w.slot)
                    continue
                group, w.group = w.group, None
                if on_done is not None:
                    on_done(group, result)
            if on_step is not None and any(w.group is not None for w in workers):
                on_step(min(steps_done[w.slot] for w in workers if w.group is not None))
    finally:
        _FORKED = None
        for w in workers:
            _stop(w)


def _receive(w: _Worker) -> list[RunMetrics] | None:
    """The worker's metrics, or None when it died; an error it raised is raised here."""
    try:
        if not w.conn.poll():
            return None  # only its sentinel is ready: it exited without answering
        kind, payload = w.conn.recv()
    except (EOFError, OSError):
        return None
    if kind == "error":
        raise payload
    return payload


def _how(process: BaseProcess) -> str:
    process.join(timeout=1)
    code = process.exitcode
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _stop(w: _Worker) -> None:
    """Kill the worker (idle or not) and reap it."""
    if w.process.is_alive():
        w.process.kill()
    w.process.join()
    w.conn.close()


# -------------------------------------------------------------------------------------------- in the worker


def _fork(context: ForkContext, slot: int) -> _Worker:
    ours, theirs = context.Pipe()
    process = context.Process(target=_work, args=(slot, theirs, os.getpid()), daemon=True)
    process.start()
    theirs.close()
    return _Worker(slot, process, ours)


def _work(slot: int, conn: Connection, parent: int) -> None:
    """A worker's life: train each group it is sent, send back its metrics (or the error), until the pipe ends."""
    become_child_of(parent)
    torch.set_num_threads(1)
    assert _FORKED is not None
    task, runs, trainer, steps_done = _FORKED

    def count(step: int) -> None:
        steps_done[slot] = step
        if os.getppid() != parent:  # orphaned where PR_SET_PDEATHSIG does not exist
            os._exit(1)

    while True:
        try:
            group = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result: tuple[str, Any] = ("done", train_group(task, [runs[i] for i in group], trainer, count))
        except Exception as error:  # sent back whole, raised in the parent
            result = ("error", error)
        try:
            conn.send(result)
        except OSError:
            return
        except Exception:  # an error that cannot be pickled: its type and message
            conn.send(("error", RuntimeError(f"{type(result[1]).__name__}: {result[1]}")))

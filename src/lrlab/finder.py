"""The LR range test: sweep the learning rate up over a short run, read a peak LR off the loss curve.

:func:`find_lr` trains a model for ``num_steps`` updates while the LR grows from ``min_lr`` to ``max_lr``
(exponentially by default), records the loss after each update, and puts the model, the optimizer and every
random-number generator back exactly as they were. What to read off the curve is a separate question,
answered by pure functions of the recorded :class:`LRCurve`:

- :func:`steepest`: where the smoothed loss falls fastest *per decade of LR* (d loss / d log LR);
- :func:`valley`: a point two thirds of the way down the curve's main descent;
- :func:`minimum_div_10`: a tenth of the LR at the lowest smoothed loss.

One sweep is one noisy sample. :func:`find_lr_for_task` repeats the sweep over seeds (init and data order),
all seeds at once as one batched model where the task allows (:mod:`lrlab.vectorized`), and :func:`recommend`
combines every method on every seed into one LR with an interval, so a user sees how much the answer moves.

A point of the curve is ``(lr_k, loss after the update made at lr_k)``: in the default mode the loss is that of
the next training batch, measured before its own update (so a sweep of N updates costs N + 1 forward passes);
with ``val_fn`` it is the validation loss after the update.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lrlab.batched import MIN_MEMBERS, batched_step, can_vectorize, keep_rows, stack, vector_optimizer
from lrlab.runs import steps_per_epoch
from lrlab.tasks import OptimizerDefaults, Task, cross_entropy, make_optimizer

__all__ = [
    "METHODS",
    "Band",
    "FinderResult",
    "LRCurve",
    "Recommendation",
    "curve_band",
    "describe",
    "ema",
    "find_lr",
    "find_lr_for_task",
    "minimum_div_10",
    "preserved_rng",
    "recommend",
    "steepest",
    "sweep_steps",
    "task_batches",
    "valley",
]

MODES = ("exp", "linear")
#: :func:`find_lr_for_task`'s default sweep: this fraction of the training run's updates (OneCycle's rise) ...
SWEEP_FRACTION = 0.3
#: ... but at least this many updates
MIN_SWEEP_STEPS = 100


# ---- the recorded curve ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LRCurve:
    """One LR range test: the LR of every update and the loss measured after it.

    Args:
        lrs: the first param group's LR at each recorded update.
        losses: the raw loss after each update (training batch or validation, see the module docstring).
        smoothed: the bias-corrected EMA of ``losses`` (see :func:`ema`), what divergence and suggestions use.
        stop_step: index of the point at which the sweep stopped because the loss diverged (the smoothed loss
            rose above ``diverge_factor`` x its best, or a loss was not finite); None when it ran to the end.
            A point at ``stop_step`` is recorded only when its loss was finite.
        smooth: the EMA factor that made ``smoothed``.
        seed: the seed of the sweep, when :func:`find_lr_for_task` ran it.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    stop_step: int | None = None
    smooth: float = 0.98
    seed: int | None = None

    def __post_init__(self) -> None:
        if not len(self.lrs) == len(self.losses) == len(self.smoothed):
            raise ValueError(f"lrs, losses and smoothed have {len(self.lrs)}, {len(self.losses)} and "
                             f"{len(self.smoothed)} points: expected the same number")
        if any(not lr > 0 for lr in self.lrs):
            raise ValueError("lrs are invalid: expected every LR > 0 (the curve is read on a log axis)")

    @property
    def stopped_early(self) -> bool:
        """True when the sweep stopped because the loss diverged."""
        return self.stop_step is not None

    @property
    def usable(self) -> int:
        """Number of points before divergence: the suggestions look only at ``[0, usable)``."""
        return len(self.lrs) if self.stop_step is None else min(self.stop_step, len(self.lrs))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (for the store); :meth:`from_dict` reads it back."""
        return {"lrs": list(self.lrs), "losses": list(self.losses), "smoothed": list(self.smoothed),
                "stop_step": self.stop_step, "smooth": self.smooth, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRCurve:
        """The curve :meth:`to_dict` wrote."""
        return cls(tuple(data["lrs"]), tuple(data["losses"]), tuple(data["smoothed"]), data.get("stop_step"),
                   data.get("smooth", 0.98), data.get("seed"))


def ema(values: Sequence[float], smooth: float) -> list[float]:
    """Bias-corrected exponential moving average of ``values``.

    ``a_k = smooth a_(k-1) + (1 - smooth) x_k`` from ``a_(-1) = 0``, and ``s_k = a_k / (1 - smooth^(k+1))``: the
    correction removes the pull towards 0 of the first points (``s_0 = x_0``). ``smooth=0`` returns the
    values unchanged.

    >>> ema([1.0, 1.0, 4.0], 0.5)
    [1.0, 1.0, 2.7142857142857144]
    """
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth={smooth!r} is invalid: expected 0 <= smooth < 1")
    out, avg = [], 0.0
    for k, x in enumerate(values):
        avg = smooth * avg + (1 - smooth) * float(x)
        out.append(avg / (1 - smooth ** (k + 1)))
    return out


# ---- saving and restoring what a sweep touches -------------------------------------------------------------

@contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore torch's (CPU and every initialised CUDA device), Python's and NumPy's global RNG states on exit."""
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() \
        else None
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


@contextmanager
def _preserved(model: nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Restore the model's parameters, gradients, buffers and train/eval flags and the optimizer's state on exit."""
    params = [(p, p.detach().clone(), None if p.grad is None else p.grad.detach().clone())
              for p in model.parameters()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    modes = [(m, m.training) for m in model.modules()]
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    try:
        yield
    finally:
        with torch.no_grad():
            for p, value, grad in params:
                p.copy_(value)
                p.grad = grad
            for b, value in buffers:
                b.copy_(value)
        for m, training in modes:
            m.training = training
        optimizer.load_state_dict(optimizer_state)


# ---- the sweep -----------------------------------------------------------------------------------------------

def _sweep_lrs(min_lr: float, max_lr: float, num_steps: int, mode: str) -> list[float]:
    if mode == "exp":
        return [min_lr * (max_lr / min_lr) ** (k / (num_steps - 1)) for k in range(num_steps)]
    return [min_lr + (max_lr - min_lr) * k / (num_steps - 1) for k in range(num_steps)]


@dataclass
class _Recorder:
    """One sweep's points and its stop rule, shared by :func:`find_lr` and the batched sweeps."""

    smooth: float
    diverge_factor: float
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    stop_step: int | None = None
    avg: float = 0.0
    best: float = math.inf

    def add(self, k: int, lr: float, measured: float) -> bool:
        """Record update ``k``'s point; False when the sweep stops there (a non-finite loss, or divergence)."""
        if not math.isfinite(measured):
            self.stop_step = k
            return False
        self.avg = self.smooth * self.avg + (1 - self.smooth) * measured
        value = self.avg / (1 - self.smooth ** (k + 1))
        self.lrs.append(lr)
        self.losses.append(measured)
        self.smoothed.append(value)
        if self.best > 0 and value > self.diverge_factor * self.best:
            self.stop_step = k
            return False
        self.best = min(self.best, value)
        return True

    def curve(self, seed: int | None) -> LRCurve:
        """The recorded sweep as an :class:`LRCurve`."""
        return LRCurve(tuple(self.lrs), tuple(self.losses), tuple(self.smoothed), self.stop_step, self.smooth, seed)


def _check_sweep(min_lr: float, max_lr: float, num_steps: int, mode: str, smooth: float,
                 diverge_factor: float) -> None:
    if not (0 < min_lr < max_lr and math.isfinite(max_lr)):
        raise ValueError(f"min_lr={min_lr!r}, max_lr={max_lr!r} are invalid: expected 0 < min_lr < max_lr")
    if not (isinstance(num_steps, int) and num_steps >= 2):
        raise ValueError(f"num_steps={num_steps!r} is invalid: expected an integer >= 2")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is invalid: expected one of {list(MODES)}")
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth={smooth!r} is invalid: expected 0 <= smooth < 1")
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor={diverge_factor!r} is invalid: expected a number > 1")


def _cycle(batches: Iterable) -> Iterator:
    """The batches again and again (a DataLoader reshuffles each pass); ends when a pass yields nothing."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            return


def find_lr(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[Any, Any]],
    loss_fn: Callable[[Any, Any], Tensor],
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exp",
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
    val_fn: Callable[[nn.Module], float | Tensor] | None = None,
    seed: int | None = None,
) -> LRCurve:
    """Run the LR range test on ``model`` and ``optimizer``; return the curve and leave both as they were.

    Update ``k`` (0-based) uses the LR ``min_lr * (max_lr / min_lr) ** (k / (num_steps - 1))`` (``mode="exp"``)
    or ``min_lr + (max_lr - min_lr) * k / (num_steps - 1)`` (``"linear"``) for the first param group; every
    other group keeps its ratio to the first (group ``i`` gets ``lr x lr_i / lr_0``, its initial ``lr_i``).
    The sweep stops when the smoothed loss exceeds ``diverge_factor`` x the lowest smoothed loss so far, or a
    loss is not finite.

    Args:
        model: trained in place during the sweep; parameters, gradients, buffers and train/eval modes are
            restored afterwards, bit for bit.
        optimizer: an optimizer over ``model``'s parameters; its state (momentum buffers, step counts, each
            group's ``lr``) is restored afterwards.
        batches: ``(inputs, targets)`` pairs, e.g. a ``DataLoader``; iterated again when exhausted (a one-shot
            iterator that runs dry ends the sweep early, without a divergence mark).
        loss_fn: ``loss_fn(model(inputs), targets)`` -> scalar loss to minimise (assumed positive: divergence
            compares it with a multiple of its best).
        min_lr, max_lr: the first group's LR at the first and the last update, ``0 < min_lr < max_lr``.
        num_steps: updates in the sweep (>= 2).
        mode: ``"exp"`` (LR log-spaced: the usual choice) or ``"linear"``.
        smooth: EMA factor for the smoothed loss, ``0 <= smooth < 1`` (0: none).
        diverge_factor: stop when the smoothed loss exceeds this multiple of its best (> 1).
        val_fn: when given, ``val_fn(model)`` (called under ``torch.no_grad()``) is the loss recorded after each
            update, instead of the next training batch's; it may switch to ``model.eval()`` and back.
        seed: stored in the curve, for the caller's bookkeeping (the sweep itself draws no random numbers
            beyond what the model's forward pass and the batches do; all RNG states are restored).

    Returns:
        The :class:`LRCurve` (``lrs`` are the first group's).

    Raises:
        ValueError: an argument out of range, an optimizer whose first group has LR 0, or no batches.
    """
    _check_sweep(min_lr, max_lr, num_steps, mode, smooth, diverge_factor)
    base = float(optimizer.param_groups[0]["lr"])
    if not base > 0:
        raise ValueError(f"optimizer.param_groups[0]['lr']={base!r} is invalid: expected > 0 (the other groups' "
                         "LRs are kept as ratios to it)")
    ratios = [float(group["lr"]) / base for group in optimizer.param_groups]
    schedule = _sweep_lrs(min_lr, max_lr, num_steps, mode)
    with preserved_rng(), _preserved(model, optimizer):
        stream = _cycle(batches)

        def forward() -> Tensor | None:
            batch = next(stream, None)
            if batch is None:
                return None
            inputs, targets = batch
            return loss_fn(model(inputs), targets)

        loss = forward()
        if loss is None:
            raise ValueError("batches is empty: expected at least one (inputs, targets) batch")
        recorder = _Recorder(smooth, diverge_factor)
        for k, lr in enumerate(schedule):
            for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
                group["lr"] = lr * ratio
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last = k == num_steps - 1
            next_loss = forward() if val_fn is None or not last else None
            if val_fn is not None:
                with torch.no_grad():
                    measured = float(val_fn(model))
            elif next_loss is None:
                break  # a one-shot iterator ran dry
            else:
                measured = float(next_loss.detach())
            if not recorder.add(k, lr, measured) or next_loss is None:
                break
            loss = next_loss
    return recorder.curve(seed)


# ---- suggestions: pure functions of a curve ------------------------------------------------------------------

def _region(curve: LRCurve, skip_start: int, skip_end: int,
            to_minimum: bool) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Log-LRs and smoothed losses before divergence, and the candidates' index range ``[lo, hi)``.

    Candidates skip ``skip_start`` points at the start and ``skip_end`` before divergence (or the end); with
    ``to_minimum`` they also stop at the lowest smoothed loss, so a descent after the curve has turned up (a
    model recovering from a blow-up) is never read as the useful one.
    """
    if skip_start < 0 or skip_end < 0:
        raise ValueError(f"skip_start={skip_start!r}, skip_end={skip_end!r} are invalid: expected integers >= 0")
    n = curve.usable
    x, y = np.log(np.asarray(curve.lrs[:n], dtype=float)), np.asarray(curve.smoothed[:n], dtype=float)
    lo, hi = skip_start, n - skip_end
    if hi - lo >= 1 and to_minimum:
        hi = lo + int(np.argmin(y[lo:hi])) + 1
    if hi - lo < 3:
        where = " up to its lowest point" if to_minimum else ""
        raise ValueError(f"the curve has {n} points before divergence, {max(hi - lo, 0)} of them candidates{where} "
                         f"(after skip_start={skip_start}, skip_end={skip_end}): expected >= 3 (lower min_lr or "
                         "raise num_steps)")
    return x, y, lo, hi


def steepest(curve: LRCurve, *, skip_start: int = 10, skip_end: int = 5) -> float:
    """The LR where the smoothed loss falls fastest per unit of log-LR: ``argmin d smoothed / d log(lr)``.

    Taken against log(lr), not the step index or the LR itself, so the answer does not depend on the sweep's
    spacing (a linear sweep is read the same way). The derivative is central (``numpy.gradient`` over the
    log-LRs). Candidates: the points from ``skip_start`` up to the lowest smoothed loss, and not the last
    ``skip_end`` before divergence (the start is noisy; the end is already turning up).

    Raises:
        ValueError: fewer than 3 candidates (the curve is too short, or it never falls).
    """
    x, y, lo, hi = _region(curve, skip_start, skip_end, to_minimum=True)
    slope = np.gradient(y, x)
    return float(curve.lrs[lo + int(np.argmin(slope[lo:hi]))])


def valley(curve: LRCurve, *, skip_start: int = 10, skip_end: int = 5, depth: float = 2 / 3,
           tolerance: float = 0.02) -> float:
    """A point ``depth`` of the way down the curve's main descent (after fastai's "valley" idea).

    A descent is a run of candidate points (as for :func:`steepest`) over which the smoothed loss keeps going
    down (a rise of at most ``tolerance`` x the candidates' loss range above the run's lowest point does not
    break it), ending at its lowest point. The main descent is the one that falls furthest (then the longest),
    so a noisy flat start cannot outvote the real one. The answer is the first LR in it where the loss has
    fallen ``depth`` of the run's height: measured in loss, so where the sweep started does not move it.

    Raises:
        ValueError: fewer than 3 candidates, or ``depth``/``tolerance`` outside [0, 1].
    """
    if not 0 <= depth <= 1 or not 0 <= tolerance <= 1:
        raise ValueError(f"depth={depth!r}, tolerance={tolerance!r} are invalid: expected numbers in [0, 1]")
    _, y_all, lo, hi = _region(curve, skip_start, skip_end, to_minimum=True)
    y = y_all[lo:hi]
    slack = tolerance * float(y.max() - y.min())
    best: tuple[float, int, int, int] | None = None  # (drop, length, start, end)
    start = low = 0  # the current run starts at `start`; its lowest point so far is `low`
    for i in range(1, len(y) + 1):
        if i < len(y) and y[i] <= y[low] + slack:
            low = i if y[i] < y[low] else low
            continue
        run = (float(y[start:low + 1].max() - y[low]), low - start + 1, start, low)
        best = run if best is None or run[:2] > best[:2] else best
        start = low = i
    assert best is not None
    _, _, start, end = best
    top, bottom = float(y[start:end + 1].max()), float(y[end])
    pick = start + int(np.argmax(y[start:end + 1] <= top - depth * (top - bottom)))
    return float(curve.lrs[lo + pick])


def minimum_div_10(curve: LRCurve, *, skip_start: int = 10, skip_end: int = 0) -> float:
    """A tenth of the LR at the lowest smoothed loss before divergence (Smith's and fastai's rule of thumb).

    Raises:
        ValueError: fewer than 3 candidates.
    """
    _, _, _, hi = _region(curve, skip_start, skip_end, to_minimum=True)
    return float(curve.lrs[hi - 1]) / 10


#: method name -> suggestion function, in the order reports list them
METHODS: dict[str, Callable[[LRCurve], float]] = {
    "steepest": steepest,
    "valley": valley,
    "minimum/10": minimum_div_10,
}


@dataclass(frozen=True)
class Band:
    """Curves over seeds on one log-spaced LR grid: mean, min and max of the smoothed loss at each LR.

    ``count[i]`` is how many curves reach ``lrs[i]`` (a curve stops where it diverged); the statistics at a
    point are over those curves only.
    """

    lrs: tuple[float, ...]
    mean: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    count: tuple[int, ...]


def curve_band(curves: Sequence[LRCurve], num_points: int | None = None) -> Band:
    """The band of ``curves`` (their points before divergence), interpolated linearly in log-LR.

    The grid spans the lowest to the highest LR any curve reached, with ``num_points`` points (default: the
    longest curve's length).
    """
    parts = [(np.log(np.asarray(c.lrs[:c.usable])), np.asarray(c.smoothed[:c.usable])) for c in curves]
    parts = [(x, y) for x, y in parts if len(x) > 0]
    if not parts:
        raise ValueError("curves have no points before divergence: expected at least one")
    start, stop = min(float(x[0]) for x, _ in parts), max(float(x[-1]) for x, _ in parts)
    grid = np.linspace(start, stop, num_points or max(len(x) for x, _ in parts))
    table = np.full((len(parts), len(grid)), np.nan)
    for row, (x, y) in enumerate(parts):
        inside = (grid >= x[0] - 1e-12) & (grid <= x[-1] + 1e-12)
        table[row, inside] = np.interp(grid[inside], x, y)
    count = np.sum(~np.isnan(table), axis=0)
    with np.errstate(all="ignore"):
        mean = np.where(count > 0, np.nansum(table, axis=0) / np.maximum(count, 1), np.nan)
    low = np.array([np.nanmin(col) if n else np.nan for col, n in zip(table.T, count, strict=True)])
    high = np.array([np.nanmax(col) if n else np.nan for col, n in zip(table.T, count, strict=True)])
    return Band(tuple(np.exp(grid).tolist()), tuple(mean.tolist()), tuple(low.tolist()), tuple(high.tolist()),
                tuple(int(n) for n in count))


@dataclass(frozen=True)
class Recommendation:
    """A peak LR read off one or more sweeps, with how much the reading moves.

    Args:
        lr: ``exp(median)`` of every method's log-LR on every seed.
        low, high: the lowest and the highest of those LRs: every method on every seed picked inside it.
        per_method: method -> ``exp(median)`` of its log-LR over seeds (None: it failed on every seed).
        per_seed: for each curve, method -> its LR (None: the curve was too short for that method).
    """

    lr: float
    low: float
    high: float
    per_method: dict[str, float | None]
    per_seed: tuple[dict[str, float | None], ...]


def _median_lr(values: Sequence[float]) -> float:
    return float(np.exp(np.median(np.log(values))))


def recommend(curves: Sequence[LRCurve], methods: dict[str, Callable[[LRCurve], float]] | None = None
              ) -> Recommendation:
    """Combine suggestion ``methods`` (default :data:`METHODS`) over the ``curves`` (one per seed).

    Each method reads each curve; the LR is the median of all those picks in log space (robust to one method
    or one seed going astray), and the interval is their range.

    Raises:
        ValueError: no curves, or no method could read any curve.
    """
    methods = METHODS if methods is None else methods
    if not curves:
        raise ValueError("curves=[] is invalid: expected at least one curve")
    per_seed: list[dict[str, float | None]] = []
    for curve in curves:
        picks: dict[str, float | None] = {}
        for name, method in methods.items():
            try:
                picks[name] = method(curve)
            except ValueError:
                picks[name] = None
        per_seed.append(picks)
    everything = [v for picks in per_seed for v in picks.values() if v is not None]
    if not everything and all(c.stop_step == 0 for c in curves):  # a non-finite loss at once: not the LR's doing
        raise ValueError(f"the loss was not finite from the first step (step 0) of every sweep ({len(curves)}), "
                         "at the lowest LR: a lower min_lr will not help; check the data (NaN or inf in the "
                         "inputs or targets) and the model's output")
    if not everything:
        lengths = sorted({c.usable for c in curves})
        raise ValueError(f"no suggestion could be read: the curves have {lengths} points before divergence "
                         "(lower min_lr or raise num_steps)")
    per_method: dict[str, float | None] = {}
    for name in methods:
        values = [picks[name] for picks in per_seed if picks[name] is not None]
        per_method[name] = _median_lr([v for v in values if v is not None]) if values else None
    return Recommendation(_median_lr(everything), min(everything), max(everything), per_method, tuple(per_seed))


# ---- a task, several seeds -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FinderResult:
    """The LR range test of a task, repeated over seeds.

    Args:
        task: the task's name.
        curves: one :class:`LRCurve` per seed.
        recommendation: the combined suggestion (:func:`recommend`).
        band: the curves' band over seeds (:func:`curve_band`).
        settings: how the sweeps ran (min_lr, max_lr, num_steps, mode, batch_size, optimizer, ...), for the store.
    """

    task: str
    curves: tuple[LRCurve, ...]
    recommendation: Recommendation
    band: Band
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for the store: settings, the recommendation and every curve."""
        rec = self.recommendation
        return {"task": self.task, "settings": self.settings, "lr": rec.lr, "low": rec.low, "high": rec.high,
                "per_method": rec.per_method, "per_seed": list(rec.per_seed),
                "curves": [c.to_dict() for c in self.curves]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinderResult:
        """The result :meth:`to_dict` wrote (the band is recomputed from the curves), e.g. for a report."""
        curves = tuple(LRCurve.from_dict(c) for c in data["curves"])
        rec = Recommendation(data["lr"], data["low"], data["high"], dict(data["per_method"]),
                             tuple(dict(p) for p in data["per_seed"]))
        return cls(data["task"], curves, rec, curve_band(curves), dict(data.get("settings", {})))


def task_batches(task: Task, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
    """The task's training batches in the trainer's order for ``seed``: a fresh permutation each epoch, full batches.

    Endless; the order comes from its own ``torch.Generator`` seeded with ``seed``, as in :func:`lrlab.trainer.train`.
    """
    generator = torch.Generator().manual_seed(seed)
    n = len(task.x_train)
    per_epoch = max(1, n // batch_size)
    while True:
        order = torch.randperm(n, generator=generator)
        for i in range(per_epoch):
            index = order[i * batch_size:(i + 1) * batch_size]
            yield task.x_train[index], task.y_train[index]


def sweep_steps(task: Task, batch_size: int | None = None, epochs: int | None = None) -> int:
    """The default length of a task's sweep: ``max(100, round(0.3 x the run's updates))``.

    A short sweep spends few updates near each LR, so a blow-up has no time to build and the curve turns up
    later than a full run can bear: on mnist1d-cnn a 100-update sweep put every suggestion beyond the LR at
    which OneCycle diverges (``bench/RESULTS.md``). Sweeping as long as OneCycle's own rise (30% of the run)
    ties the sweep's pace to the run it is for.

    Args:
        task: the task.
        batch_size, epochs: the run's (default: the task's).
    """
    per_epoch = steps_per_epoch(task, task.batch_size if batch_size is None else batch_size)
    return max(MIN_SWEEP_STEPS, round(SWEEP_FRACTION * (task.epochs if epochs is None else epochs) * per_epoch))


def _batch_seeds(task: Task, seeds: Sequence[int], val: bool, vectorize: bool | None) -> bool:
    """Whether :func:`find_lr_for_task` runs the seeds' sweeps as one batched model (see its ``vectorize``)."""
    if vectorize is not None and not isinstance(vectorize, bool):
        raise ValueError(f"vectorize={vectorize!r} is invalid: expected True, False or None (auto)")
    if vectorize is False:
        return False
    if val:
        problem = "val=True records the validation loss, which only the sequential sweep measures"
    elif vectorize is None and len(seeds) < MIN_MEMBERS:
        problem = f"fewer than {MIN_MEMBERS} seeds (a batched step does not pay for itself below that)"
    elif vectorize is None and task.loss_fn is not cross_entropy:
        problem = "the loss is not lrlab.tasks.cross_entropy"
    else:
        ok, why = can_vectorize(task)
        problem = None if ok else why
    if problem is not None and vectorize:
        raise ValueError(f"vectorize=True is invalid for task {task.name!r}: {problem}")
    return problem is None


def _batched_sweeps(task: Task, seeds: Sequence[int], defaults: OptimizerDefaults, batch_size: int,
                    schedule: Sequence[float], smooth: float, diverge_factor: float) -> list[LRCurve]:
    """:func:`find_lr`'s sweep (training-batch mode) for every seed at once, as one batched model.

    Member k is ``seeds[k]``'s sweep in :func:`find_lr_for_task`, step for step: the same init and data order,
    the same LR at each update, the optimizer's float operations one for one (:mod:`lrlab.vectorized`), the loss
    *value* of the next batch computed outside vmap as the sequential sweep computes it, and its own smoothing
    and divergence stop. A member that stops leaves the batch; the others go on unchanged. Each batched call
    gives the loss recorded for update k and the gradient update k + 1 starts from (the sequential sweep reuses
    that forward pass the same way).
    """
    models = []
    for seed in seeds:
        torch.manual_seed(seed)  # find_lr_for_task's init, seed by seed
        models.append(task.make_model().train())
    params, buffers = stack(models)
    step_fn, loss_value = batched_step(task, models[0])
    optimizer = vector_optimizer(defaults, params)
    momentum = defaults.momentum if defaults.name == "sgd" else defaults.betas[0]
    streams = [task_batches(task, batch_size, seed) for seed in seeds]
    recorders = [_Recorder(smooth, diverge_factor) for _ in seeds]
    active = list(range(len(seeds)))  # members still sweeping, in batch order

    def measure() -> tuple[dict[str, Tensor], list[float]]:
        x, y = zip(*(next(streams[k]) for k in active), strict=True)
        grads, aux = step_fn(params, buffers, torch.stack(x), torch.stack(y))
        with torch.no_grad():  # each member's loss value exactly as the sequential sweep computes it
            losses = torch.stack([loss_value(a, t) for a, t in zip(aux.unbind(0), y, strict=True)]).tolist()
        return grads, losses

    grads, _ = measure()  # the first batch: its loss is not recorded (no update has been made yet)
    for k, lr in enumerate(schedule):
        optimizer.step(params, grads, [lr] * len(active), [momentum] * len(active), k)
        grads, losses = measure()  # the next batch's loss, before its own update; and that update's gradient
        keep = [row for row, (member, measured) in enumerate(zip(active, losses, strict=True))
                if recorders[member].add(k, lr, measured)]
        if len(keep) < len(active):  # stopped members leave the batch, frozen where they are
            rows = torch.tensor(keep, dtype=torch.long)
            active = [active[r] for r in keep]
            if not active:
                break
            params, buffers, grads = keep_rows(params, rows), keep_rows(buffers, rows), keep_rows(grads, rows)
            optimizer.keep(rows)
    return [recorder.curve(seed) for recorder, seed in zip(recorders, seeds, strict=True)]


def find_lr_for_task(
    task: Task,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    num_steps: int | None = None,
    mode: str = "exp",
    batch_size: int | None = None,
    epochs: int | None = None,
    optimizer: OptimizerDefaults | None = None,
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
    val: bool = False,
    on_seed: Callable[[int, LRCurve], None] | None = None,
    vectorize: bool | None = None,
) -> FinderResult:
    """Run :func:`find_lr` on a fresh model of ``task`` for each seed and combine the sweeps.

    Each seed fixes the model's init (``torch.manual_seed(seed)`` before ``task.make_model()``) and the data order
    (:func:`task_batches`), as the trainer does; the global RNG states are restored afterwards.

    Args:
        task: the task (``lrlab.tasks.load_task(name)``).
        seeds: one sweep per seed (at least one; distinct).
        min_lr, max_lr, mode, smooth, diverge_factor: as for :func:`find_lr`.
        num_steps: updates per sweep; None: :func:`sweep_steps` for the run (30% of its updates, >= 100).
        batch_size: examples per update (default: the task's).
        epochs: the length of the run the LR is for, used only by the default ``num_steps`` (default: the task's).
        optimizer: the optimizer to sweep (default: the task's); its ``lr`` is ignored.
        val: record the validation loss after each update instead of the next training batch's.
        on_seed: called with ``(seed, curve)`` after each sweep (progress display); with batched sweeps, for
            every seed in order once they have all finished.
        vectorize: run the seeds' sweeps at once as one batched model (``torch.func``, as
            :mod:`lrlab.vectorized` does), each seed's curve equal to its own sweep's (bitwise for MLPs on one
            thread). None (default): when :func:`lrlab.vectorized.can_vectorize` allows, there are at least
            ``MIN_MEMBERS`` (4) seeds, the loss is the built-in cross-entropy and ``val`` is False; False: one
            sweep after another; True: batched, or ValueError when the task or the settings do not allow it.

    Returns:
        A :class:`FinderResult` with the curves, the recommendation, the band and the settings.
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r} is invalid: expected a non-empty list of distinct seeds")
    batch_size = task.batch_size if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is invalid: expected an integer >= 1")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs={epochs!r} is invalid: expected an integer >= 1")
    num_steps = sweep_steps(task, batch_size, epochs) if num_steps is None else num_steps
    defaults = task.optimizer if optimizer is None else optimizer
    _check_sweep(min_lr, max_lr, num_steps, mode, smooth, diverge_factor)

    def val_loss(model: nn.Module) -> float:
        model.eval()
        loss = float(task.loss_fn(model(task.x_val), task.y_val))
        model.train()
        return loss

    batched = _batch_seeds(task, seeds, val, vectorize)
    with preserved_rng():
        if batched:
            curves = _batched_sweeps(task, seeds, defaults, batch_size, _sweep_lrs(min_lr, max_lr, num_steps, mode),
                                     smooth, diverge_factor)
            for seed, curve in zip(seeds, curves, strict=True):
                if on_seed is not None:
                    on_seed(seed, curve)
        else:
            curves = []
            for seed in seeds:
                torch.manual_seed(seed)
                model = task.make_model()
                model.train()
                opt = make_optimizer(defaults, model.parameters(), lr=min_lr)
                curve = find_lr(model, opt, task_batches(task, batch_size, seed), task.loss_fn, min_lr=min_lr,
                                max_lr=max_lr, num_steps=num_steps, mode=mode, smooth=smooth,
                                diverge_factor=diverge_factor, val_fn=val_loss if val else None, seed=seed)
                curves.append(curve)
                if on_seed is not None:
                    on_seed(seed, curve)
    settings = {"seeds": seeds, "min_lr": min_lr, "max_lr": max_lr, "num_steps": num_steps, "mode": mode,
                "batch_size": batch_size, "smooth": smooth, "diverge_factor": diverge_factor, "val": val,
                "vectorized": batched, "optimizer": {**defaults.__dict__, "betas": list(defaults.betas), "lr": None}}
    return FinderResult(task.name, tuple(curves), recommend(curves), curve_band(curves), settings)


def describe(result: FinderResult, total_steps: int | None = None) -> str:
    """A plain-text summary for a terminal: the LR, its interval, every method on every seed, and how to use it.

    Args:
        result: what :func:`find_lr_for_task` returned.
        total_steps: the run's length in updates, shown in the usage lines (default: ``total_steps``, a name).
    """
    rec, settings = result.recommendation, result.settings
    methods = list(rec.per_method)
    width = max(len(m) for m in [*methods, "seed"]) + 2
    lines = [
        f"LR range test on {result.task}: {len(result.curves)} sweep(s) of {settings.get('num_steps', '?')} updates, "
        f"LR {settings.get('min_lr', '?')} -> {settings.get('max_lr', '?')} ({settings.get('mode', 'exp')})",
        f"recommended peak LR: {rec.lr:.3g}   (every method on every seed picked in {rec.low:.3g} .. {rec.high:.3g})",
        "",
        "seed".ljust(8) + "".join(m.rjust(width) for m in methods) + "stopped at".rjust(14),
    ]
    for curve, picks in zip(result.curves, rec.per_seed, strict=True):
        stop = f"{curve.lrs[-1]:.3g}" if curve.stopped_early else "-"
        lines.append(str(curve.seed if curve.seed is not None else "?").ljust(8)
                     + "".join((f"{picks[m]:.3g}" if picks[m] is not None else "-").rjust(width) for m in methods)
                     + stop.rjust(14))
    lines.append("median".ljust(8) + "".join((f"{rec.per_method[m]:.3g}" if rec.per_method[m] is not None else "-")
                                             .rjust(width) for m in methods))
    steps = str(total_steps) if total_steps is not None else "total_steps"
    lines += [
        "",
        "use it as OneCycle's peak (or any schedule's peak LR):",
        f"  lrlab spec:  onecycle(max_lr={rec.lr:.3g})",
        f"  torch:       torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr={rec.lr:.3g}, total_steps={steps})",
        f"  lrlab:       lrlab.OneCycleLR(optimizer, max_lr={rec.lr:.3g}, total_steps={steps})",
        "",
        "a starting point, not the optimum: against grid searches it was within 1.7x of the best peak on 6 of 8",
        "task/optimizer pairs (bench/RESULTS.md); where the run matters, also try half and twice it.",
    ]
    return "\n".join(lines)

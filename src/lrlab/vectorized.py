"""The vectorized trainer: the runs of a comparison trained at once, as one batched model (``torch.func``).

A schedule comparison trains one architecture many times (schedules × seeds). On a CPU a small model spends
most of a sequential step in Python and framework overhead, not arithmetic. Here the K runs' parameters are
stacked along a leading "member" axis (``stack_module_state``) and one batched step,
``vmap(grad(functional_call))``, pays that overhead once for all K.

Member k is the sequential run ``train(task, runs[k])`` (:mod:`lrlab.trainer`), step for step: the same init
(``torch.manual_seed(seed)`` then ``task.make_model()``), its own data-order generator, its own schedule and
plateau controller, and an optimizer update that follows ``torch.optim``'s single-tensor (``foreach=False``)
float operations one for one, with the members' LRs and momenta as per-member tensors. For MLPs member k is
bitwise equal, in float32, to the sequential run on one thread (the CLI's setting for small models; on two
threads torch's own ``mm`` splits its sums differently, so the sequential runs themselves change).
Convolutions become grouped convolutions under vmap and round differently: ~1e-6 over the first hundred steps,
then chaotic drift (1e-12 in float64).

Differences from :func:`lrlab.trainer.train`, by design:

- ``wall_s`` of each run is its group's wall time divided by the group's members: the runs share every step,
  so that is the honest cost of one run (their sum is the sweep's time).
- ``on_step(step)`` is called once per batched step, for all the members of the group at once.
- A member that diverges leaves the batch: its parameters stay where they were and the others go on,
  unchanged (a member's arithmetic never depends on the others).

Speed (bench/RESULTS.md, 2-core CPU, one thread): the default study (6 schedules × 5 seeds of mnist1d-mlp) runs
about 2x faster than sequential runs, as fast as 2 single-thread processes; two processes each running half
the runs vectorized, about 3x. The first ``torch.func.grad`` call of a process imports ``torch._dynamo`` (1-3 s).
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, stack_module_state, vmap

from lrlab.controllers import Plateau
from lrlab.errors import ConfigError
from lrlab.spec import Plan, build
from lrlab.store import RunMetrics
from lrlab.tasks import OptimizerDefaults, Task, cross_entropy
from lrlab.trainer import RunSpec, horizon_for, lr_diverges

__all__ = ["MAX_GROUP", "MIN_MEMBERS", "TRAINERS", "available_memory", "can_vectorize", "choose_trainer", "group_key",
           "group_limit", "group_runs", "member_bytes", "train_many", "tune_allocator"]

TRAINERS = ("auto", "sequential", "vectorized")

#: below this many runs in a group the batched step does not pay for itself (break-even measured at K≈3)
MIN_MEMBERS = 4

# Modules that keep running statistics or draw random numbers: under vmap their per-member state or masks
# cannot follow the sequential run's, so results would not reproduce it.
_STATEFUL = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.modules.dropout._DropoutNd)
# Attention: the CPU kernels have no vmap batching rule (vmap falls back to a per-member loop), so a batched
# step is slower than sequential runs; the local multi-process backend is the way to parallelise these.
_ATTENTION = (nn.MultiheadAttention, nn.Transformer, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
# Convolutions vectorize correctly but become grouped convolutions under vmap, which oneDNN runs no faster on a
# CPU than separate runs (bench/RESULTS.md: 1.0-1.1x for mnist1d-cnn): ``auto`` leaves them sequential.
_GROUPED_UNDER_VMAP = (nn.modules.conv._ConvNd,)


# ------------------------------------------------------------------------------------------ choosing a trainer


def _unsupported_module(model: nn.Module) -> str | None:
    for name, module in model.named_modules():
        where = f"module {name!r} ({type(module).__name__})" if name else f"the model ({type(module).__name__})"
        if isinstance(module, _STATEFUL) and not (isinstance(module, nn.modules.dropout._DropoutNd) and module.p == 0):
            return (f"{where} keeps batch statistics or draws random masks, which cannot follow each seed's "
                    "sequential run under vmap")
        if isinstance(module, _ATTENTION) or "attention" in type(module).__name__.lower():
            return (f"{where} is attention, which has no CPU vmap batching rule (a batched step runs slower "
                    "than separate runs); use the sequential trainer")
    return None


def can_vectorize(task: Task) -> tuple[bool, str]:
    """Whether ``task``'s runs can be trained by :func:`train_many`, and why (one line either way).

    No for a task that declares ``vmappable=False``, a model with BatchNorm/InstanceNorm (running statistics),
    dropout (random masks) or attention (no batching rule on CPU), and a model whose batched forward/backward
    fails or falls back to a per-member loop (a vmap "batching rule not implemented" warning) on a probe of two
    members and two examples. The probe leaves torch's global RNG as it found it.
    """
    if not task.vmappable:
        return False, f"task {task.name!r} declares vmappable=False"
    with torch.random.fork_rng(devices=[]):
        models = [task.make_model(), task.make_model()]
    problem = _unsupported_module(models[0])
    if problem is not None:
        return False, problem
    step, _ = _batched_step(task, models[0])
    params, buffers = _stack(models)
    x = task.x_train[:2].unsqueeze(0).expand(2, *task.x_train[:2].shape)
    y = task.y_train[:2].unsqueeze(0).expand(2, *task.y_train[:2].shape)
    try:
        torch._C._functorch._set_vmap_fallback_warning_enabled(True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step(params, buffers, x, y)
    except Exception as error:  # any failure means "not vmappable"; say what it was
        first = (str(error).strip().splitlines() or [""])[0]
        return False, f"the model does not run under torch.func.vmap ({type(error).__name__}: {first[:160]})"
    finally:
        torch._C._functorch._set_vmap_fallback_warning_enabled(False)
    slow = [str(w.message) for w in caught if "batching rule" in str(w.message)]
    if slow:
        return False, f"vmap falls back to a per-member loop: {slow[0].splitlines()[0][:160]}"
    return True, f"task {task.name!r}: the model is BatchNorm-, dropout- and attention-free and runs under vmap"


def group_key(run: RunSpec) -> tuple:
    """What runs must share to train as one batched model: length, batch size and optimizer kind.

    LR, momentum (Adam's beta1), schedule, seed and divergence factor may differ per member.
    """
    opt = run.optimizer
    return (run.epochs, run.batch_size, opt.name, opt.nesterov, opt.weight_decay, opt.betas[1])


def group_runs(runs: Sequence[RunSpec], max_members: int | None = None, processes: int = 1) -> list[list[int]]:
    """Split ``runs`` into groups that can train together; each group is a list of indices into ``runs``.

    Runs with the same :func:`group_key` form a group, in order of first appearance. One of more than
    ``max_members`` runs is dealt into the fewest groups of at most that many (run j to group j mod n),
    and, where each keeps :data:`MIN_MEMBERS` runs, into a multiple of ``processes`` groups, so that the
    processes they are dealt over finish together.
    """
    if max_members is not None and max_members < 1:
        raise ConfigError(f"max_members={max_members!r} is invalid: expected an integer >= 1")
    groups: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(group_key(run), []).append(i)
    size = max_members or len(runs) or 1
    split = []
    for group in groups.values():
        parts = -(-len(group) // size)
        balanced = -(-parts // processes) * processes
        if len(group) // balanced >= MIN_MEMBERS:
            parts = balanced
        split.extend(group[j::parts] for j in range(parts))
    return split


def choose_trainer(task: Task, runs: Sequence[RunSpec], requested: str = "auto",
                   max_members: int | None = None) -> tuple[str, str]:
    """``("sequential" | "vectorized", reason)``: the trainer for these runs, given what the user asked for.

    ``auto`` picks vectorized when :func:`can_vectorize` says yes, the model has no convolution (vmap makes it a
    grouped convolution, no faster on a CPU than separate runs) and the largest group has at least
    :data:`MIN_MEMBERS` runs (below that a batched step costs about as much as separate runs), else
    sequential. ``vectorized`` for a task that cannot be vectorized raises :class:`ConfigError`.
    """
    if requested not in TRAINERS:
        raise ConfigError(f"trainer={requested!r} is invalid: expected one of {list(TRAINERS)}")
    if requested == "sequential":
        return "sequential", "requested"
    ok, why = can_vectorize(task)
    if requested == "vectorized":
        if not ok:
            raise ConfigError(f"trainer='vectorized' is invalid for task {task.name!r}: {why}")
        return "vectorized", "requested"
    if not ok:
        return "sequential", why
    with torch.random.fork_rng(devices=[]):
        model = task.make_model()
    conv = next((name for name, m in model.named_modules() if isinstance(m, _GROUPED_UNDER_VMAP)), None)
    if conv is not None:
        return "sequential", (f"module {conv!r} ({type(model.get_submodule(conv)).__name__}) becomes a grouped "
                              "convolution under vmap, no faster on a CPU than separate runs; "
                              "trainer='vectorized' forces it")
    largest = max((len(g) for g in group_runs(runs, max_members)), default=0)
    if largest < MIN_MEMBERS:
        return "sequential", (f"at most {largest} runs train together: below {MIN_MEMBERS} a batched step "
                              "does not pay for itself")
    return "vectorized", f"{len(runs)} runs in groups of up to {largest}; {why}"


# ------------------------------------------------------------------------------------------- group size

#: the most runs in one group: a batched step's cost per member levels off by about 30 members
#: (bench/RESULTS.md: 0.34 ms at 18, 0.31 ms at 30 for mnist1d-mlp), and an interrupt loses the groups in flight
MAX_GROUP = 32
#: memory of one step's records in a run's metrics (three Python floats in lists), in bytes
_RECORD_BYTES = 100


def member_bytes(task: Task, run: RunSpec) -> int:
    """An estimate of one member's memory in a batched group, in bytes.

    Its parameters, gradients, optimizer state and the update's temporaries (5-6 copies of the parameters),
    three copies of its activations over a batch (the forward's, the saved ones, their gradients; measured by
    a forward pass of one example) and its per-step records (:data:`_RECORD_BYTES` per step of the run).
    """
    with torch.random.fork_rng(devices=[]):
        model = task.make_model()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    sizes = [task.x_train[:1].numel() * task.x_train.element_size()]

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        sizes.append(output.numel() * output.element_size() if isinstance(output, Tensor) else 0)

    hooks = [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(task.x_train[:1])
    finally:
        for hook in hooks:
            hook.remove()
    state = 2 if run.optimizer.name in ("adam", "adamw") else 1
    steps = horizon_for(task, run).total_steps
    return params * (4 + state) + 3 * sum(sizes) * run.batch_size + steps * _RECORD_BYTES


def available_memory() -> int | None:
    """Memory the system can give without swapping (Linux ``MemAvailable``), in bytes; None when unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def group_limit(task: Task, run: RunSpec, processes: int, requested: int | None = None) -> tuple[int, str]:
    """The most runs per group, and why: ``requested`` (``max_members``), :data:`MAX_GROUP`, or what half
    the available memory holds over ``processes`` processes (:func:`member_bytes`), the smallest (at least 1)."""
    limits = [(requested, "max_members"), (MAX_GROUP, "the most that pays (MAX_GROUP)")]
    memory = available_memory()
    if memory is not None:
        each = member_bytes(task, run)
        limits.append((memory // 2 // processes // each,
                       f"half the available memory ({memory / 2**30:.1f} GiB) at ~{each / 2**20:.1f} MiB per run"))
    size, why = min((limit, why) for limit, why in limits if limit is not None)
    return max(1, size), why


# ----------------------------------------------------------------------------------------------- allocator

_ALLOCATOR_TUNED = False
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_allocator() -> bool:
    """Keep freed memory in the process (glibc only): return whether the settings were applied.

    glibc serves blocks above ``M_MMAP_THRESHOLD`` (128 KiB at first) with fresh ``mmap``\\ s and trims the heap
    top above ``M_TRIM_THRESHOLD``: the stacked temporaries of a batched step (hundreds of KiB each) are then
    returned to the OS and page-faulted back in at every step. Raising both thresholds (32 MiB, glibc's maximum
    for mmap; 1 GiB trim) keeps them in the heap. The cost: the process keeps its peak heap size. Process-wide
    and idempotent; a no-op on other C libraries. Measured (2-core CPU, 30 members): page faults per batched
    step ~7,500 -> 0 and a step 100 -> 73 ms for mnist1d-cnn; 5-10% end to end for mnist1d-mlp.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = all(libc.mallopt(option, value) == 1 for option, value in (
            (_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 16 << 20)))
    except (OSError, AttributeError):
        return False
    _ALLOCATOR_TUNED = ok
    return ok


# --------------------------------------------------------------------------------------------- batched model


def _stack(models: Sequence[nn.Module]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    params, buffers = stack_module_state(list(models))
    return ({k: v.detach() for k, v in params.items()}, {k: v.detach() for k, v in buffers.items()})


def _batched_step(task: Task, model: nn.Module) -> tuple[Callable, Callable[[Tensor, Tensor], Tensor]]:
    """``(params, buffers, x, y) -> (grads, aux)`` for every member at once, and ``loss_value(aux_k, y_k)``.

    The loss is differentiated inside vmap, so the backward runs torch's own per-model formulas batched
    (``mm`` becomes ``bmm`` with the same operand layout): that is what keeps MLP members bitwise equal to
    sequential runs. Each member's loss *value* is computed outside vmap, from ``aux``, exactly as the
    sequential trainer computes it (vmap's ``nll_loss`` rule sums in another order). ``aux`` is the model's
    output, or for the built-in cross-entropy its log-softmax (cross-entropy is log-softmax then NLL, so the
    value needs only the cheap NLL and the log-softmax is not computed twice).
    """
    base = copy.deepcopy(model).to("meta")
    log_probs = task.loss_fn is cross_entropy

    def loss(params: dict, buffers: dict, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        out = functional_call(base, (params, buffers), (x,))
        if log_probs:
            logp = F.log_softmax(out.flatten(0, -2), dim=-1)
            return F.nll_loss(logp, y.flatten()), logp
        return task.loss_fn(out, y), out

    def value(aux: Tensor, y: Tensor) -> Tensor:
        return F.nll_loss(aux, y.flatten()) if log_probs else task.loss_fn(aux, y)

    return vmap(grad(loss, has_aux=True)), value


def _batched_forward(model: nn.Module) -> Callable:
    """``(params, buffers, x) -> outputs``: every member's forward on the same inputs (validation)."""
    base = copy.deepcopy(model).to("meta")

    def forward(params: dict, buffers: dict, x: Tensor) -> Tensor:
        return functional_call(base, (params, buffers), (x,))

    return vmap(forward)


class _PerMember:
    """Per-member scalars (one per member of the batch) shaped to broadcast against a stacked ``(K, ...)`` tensor.

    In the tensor's dtype: a Python scalar meets a float32 (float64) kernel as float32 (float64), so the
    per-member value rounds exactly as the sequential run's scalar does.
    """

    def __init__(self, values: Sequence[float]) -> None:
        self.values = list(values)
        self._cache: dict[tuple[torch.dtype, int], Tensor] = {}

    def like(self, t: Tensor) -> Tensor:
        key = (t.dtype, t.dim())
        if key not in self._cache:
            self._cache[key] = torch.tensor(self.values, dtype=t.dtype).view(-1, *([1] * (t.dim() - 1)))
        return self._cache[key]


def _uniform(values: Sequence[float]) -> bool:
    return all(v == values[0] for v in values)


# ----------------------------------------------------------------------------------------------- optimizers


class _VectorSGD:
    """torch.optim.SGD (``foreach=False``) for K stacked members: per-member LR and momentum.

    torch's update per parameter, and here per member with its own ``lr``/``momentum``::

        g = grad + weight_decay * p                       (if weight_decay)
        buf = g (first use) | buf * momentum + g          (if momentum != 0)
        g = g + momentum * buf (nesterov) | buf           (if momentum != 0)
        p = p - lr * g                                    (one fused multiply-add, as ``add_(alpha=-lr)``)

    ``addcmul_(g, -lr)`` rounds like ``add_(g, alpha=-lr)`` (both one FMA per element).
    """

    def __init__(self, params: dict[str, Tensor], weight_decay: float, nesterov: bool) -> None:
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.bufs: dict[str, Tensor] | None = None
        self.started: Tensor | None = None  # per member: whether its momentum buffer exists

    def keep(self, rows: Tensor) -> None:
        if self.bufs is not None:
            self.bufs = {k: v[rows] for k, v in self.bufs.items()}
            self.started = self.started[rows]

    @torch.no_grad()
    def step(self, params: dict[str, Tensor], grads: dict[str, Tensor], lrs: list[float], momenta: list[float],
             step: int) -> None:
        use = [m != 0 for m in momenta]
        if self.bufs is None and any(use):
            self.bufs = {k: torch.zeros_like(v) for k, v in params.items()}
            self.started = torch.zeros(len(lrs), dtype=torch.bool)
        all_started = self.started is not None and bool(self.started.all())
        fresh = self.started is not None and not bool(self.started.any())
        same_m, same_lr = _uniform(momenta), _uniform(lrs)
        m_k, neg_lr_k = _PerMember(momenta), _PerMember([-lr for lr in lrs])
        mask = None if all(use) and (all_started or fresh) else torch.tensor(use)
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay != 0:
                g = g.add(p, alpha=self.weight_decay)
            if self.bufs is not None and any(use):
                m = momenta[0] if same_m else m_k.like(p)
                buf = self.bufs[name]
                if mask is None and fresh:
                    buf.copy_(g)
                elif mask is None:
                    buf.mul_(m).add_(g)
                else:  # some members skip momentum this step, or start their buffer now
                    shape = (-1, *([1] * (p.dim() - 1)))
                    started, on = self.started.view(shape), mask.view(shape)
                    buf.copy_(torch.where(on, torch.where(started, buf * m + g, g), buf))
                if self.nesterov:
                    d = g.add(buf, alpha=m) if same_m else g.addcmul(buf, m)
                else:
                    d = buf
                g = d if mask is None else torch.where(mask.view(-1, *([1] * (p.dim() - 1))), d, g)
            if same_lr:
                p.add_(g, alpha=-lrs[0])
            else:
                p.addcmul_(g, neg_lr_k.like(p))
        if self.started is not None:
            self.started |= torch.tensor(use)


class _VectorAdam:
    """torch.optim.Adam / AdamW (``foreach=False``, ``amsgrad=False``) for K stacked members.

    torch's update per parameter at step ``t`` (from 1), here with per-member ``lr`` and ``beta1``::

        p = p * (1 - lr * weight_decay)                   (AdamW)   | g = g + weight_decay * p  (Adam)
        m = lerp(m, g, 1 - beta1);  v = v * beta2 + (1 - beta2) * g * g
        p = p + (-lr / (1 - beta1**t)) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The scalars (bias corrections, step size) are computed in Python doubles, as torch does, then rounded to
    float32 once, as the kernels do with a Python scalar.
    """

    def __init__(self, params: dict[str, Tensor], weight_decay: float, beta2: float, decoupled: bool,
                 eps: float = 1e-8) -> None:
        self.weight_decay, self.beta2, self.decoupled, self.eps = weight_decay, beta2, decoupled, eps
        self.exp_avg = {k: torch.zeros_like(v) for k, v in params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(v) for k, v in params.items()}

    def keep(self, rows: Tensor) -> None:
        self.exp_avg = {k: v[rows] for k, v in self.exp_avg.items()}
        self.exp_avg_sq = {k: v[rows] for k, v in self.exp_avg_sq.items()}

    @torch.no_grad()
    def step(self, params: dict[str, Tensor], grads: dict[str, Tensor], lrs: list[float], beta1s: list[float],
             step: int) -> None:
        t = float(step + 1)  # torch keeps the count in a float32 tensor and reads it back with .item()
        bias2_sqrt = (1 - self.beta2 ** t) ** 0.5
        neg_step_sizes = _PerMember([-(lr / (1 - b1 ** t)) for lr, b1 in zip(lrs, beta1s, strict=True)])
        decays = _PerMember([1 - lr * self.weight_decay for lr in lrs])
        one_minus_b1 = 1 - beta1s[0] if _uniform(beta1s) else _PerMember([1 - b for b in beta1s])
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay != 0:
                if self.decoupled:
                    p.mul_(decays.like(p))
                else:
                    g = g.add(p, alpha=self.weight_decay)
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            m.lerp_(g, one_minus_b1 if isinstance(one_minus_b1, float) else one_minus_b1.like(p))
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = (v.sqrt() / bias2_sqrt).add_(self.eps)
            p.addcdiv_(m * neg_step_sizes.like(p), denom)  # = addcdiv_(m, denom, value=-step_size)


def vector_optimizer(opt: OptimizerDefaults, params: dict[str, Tensor]) -> _VectorSGD | _VectorAdam:
    """The vectorized counterpart of ``make_optimizer(opt, ...)`` over stacked ``params``."""
    if opt.name == "sgd":
        return _VectorSGD(params, opt.weight_decay, opt.nesterov)
    return _VectorAdam(params, opt.weight_decay, opt.betas[1], decoupled=opt.name == "adamw")


# ------------------------------------------------------------------------------------------------- members


@dataclass
class _Member:
    """One run inside a batched group: its plan (LR and momentum schedules), controller, data order and records.

    LRs are computed step by step, as the adapter does: nothing is stored per future step.
    """

    run: RunSpec
    plan: Plan
    default_momentum: float  # the optimizer's own momentum (Adam's beta1), where the plan schedules none
    controller: Plateau | None
    data_order: torch.Generator
    metrics: RunMetrics = field(default_factory=RunMetrics)
    first_loss: float | None = None
    epoch_losses: list[float] = field(default_factory=list)

    def scheduled_lr(self, step: int) -> float:
        """The schedule's LR at ``step``, without the controller's scale."""
        return float(self.plan.lr(step))

    def lr(self, step: int) -> float:
        """The LR the adapter would set for ``step``: ``schedule(step) * controller scale``."""
        value = self.scheduled_lr(step)
        return value * self.controller.scales[0] if self.controller is not None else value

    def momentum(self, step: int) -> float:
        return float(self.plan.momentum(step)) if self.plan.momentum is not None else self.default_momentum


def _member(task: Task, run: RunSpec) -> _Member:
    plan = build(run.schedule, horizon_for(task, run))
    controller = plan.new_controller()
    if controller is not None:
        controller.bind(1)
    opt = run.optimizer
    return _Member(run=run, plan=plan,
                   default_momentum=float(opt.betas[0] if opt.name in ("adam", "adamw") else opt.momentum),
                   controller=controller, data_order=torch.Generator().manual_seed(run.seed))


# ------------------------------------------------------------------------------------------------- trainer


def train_many(task: Task, runs: Sequence[RunSpec], on_step: Callable[[int], None] | None = None,
               max_members: int | None = None) -> list[RunMetrics]:
    """Train every run of ``runs`` on ``task``; return their metrics, in order, as :func:`train` would.

    Runs are grouped by :func:`group_runs` (same epochs, batch size and optimizer kind; at most
    ``max_members`` per group) and each group trains as one batched model. ``on_step(step)`` is called after
    every batched step. Raises :class:`ConfigError` when the task cannot be vectorized (see
    :func:`can_vectorize`, which this does not re-run: call it or :func:`choose_trainer` first).
    """
    if not task.vmappable:
        raise ConfigError(f"trainer='vectorized' is invalid for task {task.name!r}: it declares vmappable=False")
    tune_allocator()
    results: list[RunMetrics | None] = [None] * len(runs)
    for group in group_runs(runs, max_members):
        for i, metrics in zip(group, _train_group(task, [runs[i] for i in group], on_step), strict=True):
            results[i] = metrics
    return [m for m in results if m is not None]


def _evaluate(task: Task, forward: Callable, params: dict, buffers: dict) -> list[tuple[float, float | None]]:
    """Each member's validation loss and accuracy, computed as :func:`lrlab.trainer.evaluate` does."""
    with torch.no_grad():
        k = next(iter(params.values())).shape[0]
        outputs = forward(params, buffers, task.x_val.unsqueeze(0).expand(k, *task.x_val.shape))
        results = []
        for out in outputs.unbind(0):
            acc = None if task.accuracy_fn is None else float(task.accuracy_fn(out, task.y_val))
            results.append((float(task.loss_fn(out, task.y_val)), acc))
    return results


def _train_group(task: Task, runs: Sequence[RunSpec], on_step: Callable[[int], None] | None) -> list[RunMetrics]:
    """One batched model for runs that share epochs, batch size and optimizer kind (see :func:`group_key`)."""
    start = time.perf_counter()
    members, models = [], []
    for run in runs:
        torch.manual_seed(run.seed)  # the sequential trainer's init, run by run
        members.append(_member(task, run))
        models.append(task.make_model())
    params, buffers = _stack(models)
    (step_fn, loss_value), forward = _batched_step(task, models[0]), _batched_forward(models[0])
    optimizer = vector_optimizer(runs[0].optimizer, params)
    epochs, batch_size = runs[0].epochs, runs[0].batch_size
    n = len(task.x_train)
    per_epoch = max(1, n // batch_size)
    active = list(range(len(runs)))  # member indices still training, in batch order
    step = 0
    for epoch in range(1, epochs + 1):
        if not active:
            break
        orders = torch.stack([torch.randperm(n, generator=members[k].data_order) for k in active])
        for i in range(per_epoch):
            batch = orders[:, i * batch_size:(i + 1) * batch_size]
            x, y = task.x_train[batch], task.y_train[batch]
            grads, aux = step_fn(params, buffers, x, y)
            with torch.no_grad():  # each member's loss value exactly as the sequential trainer computes it
                losses = torch.stack([loss_value(a, target) for a, target in
                                      zip(aux.unbind(0), y.unbind(0), strict=True)]).tolist()
            lrs, momenta, diverged = [], [], []
            for row, (k, value) in enumerate(zip(active, losses, strict=True)):
                m = members[k]
                lr, momentum = m.lr(step), m.momentum(step)
                m.metrics.lr.append(lr)
                m.metrics.momentum.append(momentum)
                m.metrics.train_loss.append(value)
                m.first_loss = value if m.first_loss is None else m.first_loss
                if not math.isfinite(value) or value > m.run.divergence_factor * m.first_loss or lr_diverges(lr):
                    m.metrics.diverged_step = step
                    diverged.append(row)
                    continue
                m.epoch_losses.append(value)
                lrs.append(lr)
                momenta.append(momentum)
            if diverged:  # frozen where they are: out of the batch, the others untouched
                rows = torch.tensor([r for r in range(len(active)) if r not in diverged], dtype=torch.long)
                active = [active[r] for r in rows.tolist()]
                params, buffers = _keep(params, rows), _keep(buffers, rows)
                grads, orders = _keep(grads, rows), orders[rows]
                optimizer.keep(rows)
                if not active:
                    break
            optimizer.step(params, grads, lrs, momenta, step)
            step += 1
            if on_step is not None:
                on_step(step)
        if not active:
            break
        keep = []
        for row, (k, (val_loss, val_acc)) in enumerate(zip(active, _evaluate(task, forward, params, buffers),
                                                           strict=True)):
            m = members[k]
            m.metrics.epochs.append({"epoch": epoch, "step": step, "lr": m.lr(step),
                                     "train_loss": sum(m.epoch_losses) / len(m.epoch_losses),
                                     "val_loss": val_loss, "val_acc": val_acc})
            m.epoch_losses = []
            if not math.isfinite(val_loss):
                m.metrics.diverged_step = step
                continue
            keep.append(row)
            if m.controller is not None:  # ReduceLROnPlateau on the validation loss, once per epoch
                m.controller.observe(val_loss, step, [m.scheduled_lr(step)])
        if len(keep) < len(active):
            rows = torch.tensor(keep, dtype=torch.long)
            active = [active[r] for r in keep]
            params, buffers = _keep(params, rows), _keep(buffers, rows)
            optimizer.keep(rows)
    wall_s = (time.perf_counter() - start) / len(runs)
    for m in members:
        m.metrics.wall_s = wall_s
    return [m.metrics for m in members]


def _keep(tensors: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    return {k: v[rows] for k, v in tensors.items()}


# Public names of the batched-model kernels, for the finder's batched sweeps (lrlab.finder.task).
stack_models = _stack
batched_step = _batched_step
keep_rows = _keep
__all__ += ["batched_step", "keep_rows", "stack_models"]

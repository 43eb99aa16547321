"""Batched kernels (``torch.func``): K models of one architecture as one, for the vectorized trainer
(:mod:`lrlab.vectorized`) and the LR finder's batched sweeps (:mod:`lrlab.finder`).

The K members' parameters are stacked along a leading "member" axis (:func:`stack`); :func:`batched_step` is
``vmap(grad(functional_call))``, one step of every member for the Python and framework overhead of one, and
:func:`vector_optimizer` updates them with per-member LRs and momenta, following ``torch.optim``'s single-tensor
(``foreach=False``) float operations one for one. :func:`can_vectorize` says whether a task's model may be
batched at all. The first ``torch.func.grad`` call of a process imports ``torch._dynamo`` (1-3 s).
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import platform
import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, stack_module_state, vmap

from lrlab.tasks import LoaderTask, OptimizerDefaults, Task, cross_entropy

__all__ = ["MIN_MEMBERS", "batched_forward", "batched_step", "can_vectorize", "keep_rows", "stack", "tune_allocator",
           "vector_optimizer"]

#: below this many runs in a group the batched step does not pay for itself (break-even measured at K≈3)
MIN_MEMBERS = 4

# Modules that keep running statistics or draw random numbers: under vmap their per-member state or masks
# cannot follow the sequential run's, so results would not reproduce it.
_STATEFUL = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.modules.dropout._DropoutNd)
# Attention: the CPU kernels have no vmap batching rule (vmap falls back to a per-member loop), so a batched
# step is slower than sequential runs; the local multi-process backend is the way to parallelise these.
_ATTENTION = (nn.MultiheadAttention, nn.Transformer, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


# ------------------------------------------------------------------------------------------- what can be batched


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


def can_vectorize(task: Task | LoaderTask) -> tuple[bool, str]:
    """Whether ``task``'s runs can be trained by :func:`lrlab.vectorized.train_many`, and why (one line either way).

    No for a :class:`~lrlab.tasks.LoaderTask` (its loaders, optimizer and step run one model at a time), a task
    that declares ``vmappable=False``, a model with BatchNorm/InstanceNorm (running statistics),
    dropout (random masks) or attention (no batching rule on CPU), and a model whose batched forward/backward
    fails or falls back to a per-member loop (a vmap "batching rule not implemented" warning) on a probe of two
    members and two examples. The probe leaves torch's global RNG as it found it.
    """
    if isinstance(task, LoaderTask):
        return False, (f"task {task.name!r} is a LoaderTask: its own loaders, optimizer and step train one model "
                       "at a time")
    if not task.vmappable:
        return False, f"task {task.name!r} declares vmappable=False"
    with torch.random.fork_rng(devices=[]):
        models = [task.make_model(), task.make_model()]
    problem = _unsupported_module(models[0])
    if problem is not None:
        return False, problem
    step, _ = batched_step(task, models[0])
    params, buffers = stack(models)
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


# --------------------------------------------------------------------------------------------- batched model


def stack(models: Sequence[nn.Module], device: str = "cpu") -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The models' parameters and buffers, each stacked along a new leading member axis (detached copies), on
    ``device``."""
    params, buffers = stack_module_state(list(models))
    return ({k: v.detach().to(device) for k, v in params.items()},
            {k: v.detach().to(device) for k, v in buffers.items()})


def batched_step(task: Task, model: nn.Module) -> tuple[Callable, Callable[[Tensor, Tensor], Tensor]]:
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


def batched_forward(model: nn.Module) -> Callable:
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
        key = (t.dtype, t.dim(), t.device)
        if key not in self._cache:
            values = torch.tensor(self.values, dtype=t.dtype, device=t.device)
            self._cache[key] = values.view(-1, *([1] * (t.dim() - 1)))
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
        device = next(iter(params.values())).device
        if self.bufs is None and any(use):
            self.bufs = {k: torch.zeros_like(v) for k, v in params.items()}
            self.started = torch.zeros(len(lrs), dtype=torch.bool, device=device)
        all_started = self.started is not None and bool(self.started.all())
        fresh = self.started is not None and not bool(self.started.any())
        same_m, same_lr = _uniform(momenta), _uniform(lrs)
        m_k, neg_lr_k = _PerMember(momenta), _PerMember([-lr for lr in lrs])
        mask = None if all(use) and (all_started or fresh) else torch.tensor(use, device=device)
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
            self.started |= torch.tensor(use, device=device)


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


def keep_rows(tensors: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    """Only the members at ``rows`` (indices along the member axis) of every stacked tensor."""
    return {k: v[rows] for k, v in tensors.items()}


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

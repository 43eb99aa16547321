"""Scheduler step overhead and long-run accuracy: lrlab's drop-in classes against torch's (issue 2).

Table 1 times ``scheduler.step()`` for each of the 15 classes of ``lrlab.torch_compat`` and its namesake in
``torch.optim.lr_scheduler``, built with the same arguments on identical tiny SGD optimizers (2 param groups).
No ``optimizer.step()`` is taken (torch's warning about that is silenced), so only the scheduler is timed.
Repeats alternate lrlab, torch, lrlab, torch, ... so that drift in the machine's speed hits both alike; each
cell is the median over repeats of (time for ``--steps`` calls) / ``--steps``.

Table 2 gives the LR at step 1,000,000 for six classes: torch's (stepped 1,000,000 times: its LR is a
recursion), lrlab's (the LR its scheduler writes into the optimizer at that step; closed form, so the same
whether it was stepped or resumed there) and the closed-form formula evaluated here in float64 with ``math``,
with the relative errors of both against that formula.

Usage: ``python bench/step_overhead.py [--steps N] [--repeats R] [--long-steps T]``
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.optim import lr_scheduler as T

import lrlab
from lrlab import torch_compat as L

CLASSES = [
    "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "ReduceLROnPlateau", "LambdaLR", "MultiplicativeLR",
    "SequentialLR", "ChainedScheduler",
]


def inverse_time(step: int) -> float:
    return 1.0 / (1.0 + step / 100)


def slow_decay(step: int) -> float:
    return 0.99999


def make_optimizer(groups: int = 2) -> torch.optim.Optimizer:
    """A tiny SGD optimizer (momentum, for the classes that cycle it) with ``groups`` param groups."""
    params = [{"params": [torch.nn.Parameter(torch.zeros(4))], "lr": 0.1 / 10 ** g} for g in range(groups)]
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def make_scheduler(lib: Any, name: str, opt: torch.optim.Optimizer, steps: int) -> Any:
    """``lib.<name>(opt, ...)`` with typical arguments (``lib``: torch's lr_scheduler or lrlab's torch_compat)."""
    if name == "SequentialLR":
        children = [lib.LinearLR(opt, start_factor=0.1, total_iters=100), lib.CosineAnnealingLR(opt, T_max=steps)]
        return lib.SequentialLR(opt, children, milestones=[100])
    if name == "ChainedScheduler":
        children = [lib.ConstantLR(opt, factor=0.5, total_iters=100), lib.ExponentialLR(opt, gamma=0.999)]
        return lib.ChainedScheduler(children, optimizer=opt)
    kwargs: dict[str, dict[str, Any]] = {
        "StepLR": {"step_size": 30, "gamma": 0.5},
        "MultiStepLR": {"milestones": [300, 800], "gamma": 0.1},
        "ConstantLR": {"factor": 0.5, "total_iters": 100},
        "LinearLR": {"start_factor": 0.25, "total_iters": 100},
        "ExponentialLR": {"gamma": 0.999},
        "PolynomialLR": {"total_iters": steps, "power": 2.0},
        "CosineAnnealingLR": {"T_max": steps, "eta_min": 1e-4},
        "CosineAnnealingWarmRestarts": {"T_0": 100, "T_mult": 2, "eta_min": 1e-4},
        "CyclicLR": {"base_lr": 1e-3, "max_lr": 0.1, "step_size_up": 200},
        "OneCycleLR": {"max_lr": 0.1, "total_steps": steps + 1},
        "ReduceLROnPlateau": {"patience": 5},
        "LambdaLR": {"lr_lambda": inverse_time},
        "MultiplicativeLR": {"lr_lambda": slow_decay},
    }
    return getattr(lib, name)(opt, **kwargs[name])


def time_steps(lib: Any, name: str, steps: int) -> float:
    """Seconds per ``scheduler.step()`` over ``steps`` calls on a freshly built scheduler."""
    sched = make_scheduler(lib, name, make_optimizer(), steps)
    step: Callable[..., Any] = sched.step
    if name == "ReduceLROnPlateau":  # torch's needs a metric each step: the same, never improving, for both
        start = time.perf_counter()
        for _ in range(steps):
            step(1.0)
        return (time.perf_counter() - start) / steps
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def optimizer_step_time(numel: int, steps: int, repeats: int) -> float:
    """Seconds per ``optimizer.step()`` of SGD with momentum over 2 param groups of ``numel`` parameters in all."""
    opt = make_optimizer()
    for group in opt.param_groups:
        group["params"][0].data = torch.zeros(numel // 2)
        group["params"][0].grad = torch.ones(numel // 2)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            opt.step()
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def overhead_table(steps: int, repeats: int) -> list[tuple[str, float, float]]:
    rows = []
    for name in CLASSES:
        times: dict[str, list[float]] = {"lrlab": [], "torch": []}
        for _ in range(repeats):
            times["lrlab"].append(time_steps(L, name, steps))
            times["torch"].append(time_steps(T, name, steps))
        rows.append((name, statistics.median(times["torch"]), statistics.median(times["lrlab"])))
    return rows


# --- long run: closed forms in float64 -------------------------------------------------------------------

BASE = 0.1


def cyclic_exact(t: int, base_lr: float, max_lr: float, up: int, down: int, gamma: float) -> float:
    """torch's CyclicLR formula (mode exp_range): a triangle of period up + down, amplitude gamma ** t."""
    total = up + down
    cycle = math.floor(1 + t / total)
    x = 1.0 + t / total - cycle
    height = x / (up / total) if x <= up / total else (x - 1) / (up / total - 1)
    return base_lr + (max_lr - base_lr) * height * gamma ** t


def sgdr_exact(t: int, base_lr: float, eta_min: float, t0: int, mult: int) -> float:
    """SGDR: cycle i lasts t0 * mult ** i steps; cosine from base_lr to eta_min within it."""
    n = int(math.log(t / t0 * (mult - 1) + 1, mult))
    while t0 * (mult ** (n + 1) - 1) // (mult - 1) <= t:
        n += 1
    while t0 * (mult ** n - 1) // (mult - 1) > t:
        n -= 1
    start, length = t0 * (mult ** n - 1) // (mult - 1), t0 * mult ** n
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * (t - start) / length)) / 2


def long_cases(t: int) -> list[tuple[str, str, Callable[[Any, torch.optim.Optimizer], Any], float]]:
    """(class, arguments as shown, constructor for either library, exact LR at step ``t``)."""
    T_max = 2 * t
    return [
        ("ExponentialLR", "gamma=0.99999", lambda lib, o: lib.ExponentialLR(o, gamma=0.99999),
         BASE * 0.99999 ** t),
        ("CosineAnnealingLR", f"T_max={T_max:_}", lambda lib, o: lib.CosineAnnealingLR(o, T_max=T_max),
         BASE * (1 + math.cos(math.pi * t / T_max)) / 2),
        ("PolynomialLR", f"total_iters={T_max:_}, power=2", lambda lib, o: lib.PolynomialLR(o, total_iters=T_max,
                                                                                           power=2.0),
         BASE * (1 - t / T_max) ** 2),
        ("CyclicLR", "1e-3..0.1, up=1234, down=2345, exp_range, gamma=0.999999",
         lambda lib, o: lib.CyclicLR(o, base_lr=1e-3, max_lr=0.1, step_size_up=1234, step_size_down=2345,
                                     mode="exp_range", gamma=0.999999, cycle_momentum=False),
         cyclic_exact(t, 1e-3, 0.1, 1234, 2345, 0.999999)),
        ("CosineAnnealingWarmRestarts", "T_0=1000, T_mult=2, eta_min=1e-4",
         lambda lib, o: lib.CosineAnnealingWarmRestarts(o, T_0=1000, T_mult=2, eta_min=1e-4),
         sgdr_exact(t, BASE, 1e-4, 1000, 2)),
        ("MultiplicativeLR", "lr_lambda=lambda t: 0.99999", lambda lib, o: lib.MultiplicativeLR(o, slow_decay),
         BASE * 0.99999 ** t),
    ]


def long_run_table(t: int) -> list[tuple[str, str, float, float, float]]:
    rows = []
    for name, args, make, exact in long_cases(t):
        opt = make_optimizer(groups=1)
        sched = make(T, opt)
        for _ in range(t):
            sched.step()
        torch_lr = opt.param_groups[0]["lr"]
        opt = make_optimizer(groups=1)
        sched = make(L, opt)
        # closed form: resuming at step t sets the same LR that t calls of step() would (tests/test_torch_compat.py)
        sched.load_state_dict({**sched.state_dict(), "last_epoch": t, "_step_count": t + 1})
        lrlab_lr = opt.param_groups[0]["lr"]
        rows.append((name, args, torch_lr, lrlab_lr, exact))
    return rows


def rel(value: float, exact: float) -> float:
    return abs(value - exact) / abs(exact)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="scheduler.step() calls per timed repeat")
    parser.add_argument("--repeats", type=int, default=21, help="timed repeats per library (alternated)")
    parser.add_argument("--long-steps", type=int, default=1_000_000, help="step of the long-run LR table")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.optim\.lr_scheduler")
    torch.set_num_threads(1)

    print(f"python {platform.python_version()}, torch {torch.__version__}, lrlab {lrlab.__version__}, "
          f"{platform.machine()} {platform.processor() or ''}".rstrip())
    print(f"\nscheduler.step(), 2 param groups, median of {args.repeats} alternated repeats of {args.steps} steps\n")
    print(f"| {'class':<28} | {'torch µs/step':>13} | {'lrlab µs/step':>13} | {'lrlab/torch':>11} |")
    print(f"|{'-' * 30}|{'-' * 14}:|{'-' * 14}:|{'-' * 12}:|")
    for name, t_torch, t_lrlab in overhead_table(args.steps, args.repeats):
        print(f"| {name:<28} | {t_torch * 1e6:13.2f} | {t_lrlab * 1e6:13.2f} | {t_lrlab / t_torch:11.2f} |")
    for numel in (8, 1_000_000):
        per_step = optimizer_step_time(numel, max(1, args.steps // 10), 5)
        print(f"\nfor scale: optimizer.step() of the same SGD (momentum, 2 groups) over {numel:_} parameters: "
              f"{per_step * 1e6:.2f} µs", end="")
    print()
    sys.stdout.flush()

    t = args.long_steps
    print(f"\nLR at step {t:_} (base LR {BASE}): torch stepped {t:_} times, lrlab, float64 closed form\n")
    print("| class | arguments | torch | lrlab | closed form | torch rel. error | lrlab rel. error |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, shown, torch_lr, lrlab_lr, exact in long_run_table(t):
        print(f"| {name} | {shown} | {torch_lr:.17g} | {lrlab_lr:.17g} | {exact:.17g} | "
              f"{rel(torch_lr, exact):.1e} | {rel(lrlab_lr, exact):.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

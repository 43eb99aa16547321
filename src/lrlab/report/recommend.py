"""Which schedule? The best schedule of a study, the ones that tie with it, and the code to use it.

The best is the lowest mean final validation loss, unless a schedule overfits
(:data:`~lrlab.report.overfitting.OVERFIT_RULE`) and the lowest mean best-epoch validation loss is another
schedule's: a ranking by final loss then rewards whichever schedule stops learning first, so the best is the
lowest best-epoch loss, used with early stopping, and the text names the winner by final loss. Otherwise the
text says that the two rankings agree (or, with no overfitting, which schedule the best epoch would pick), and
tells to keep the best epoch's weights when the winner overfits itself.

The code is exact for the stored run: the spec is built against the run's horizon (steps, steps per epoch,
the optimizer's LR), read back from the store. A store is data: building never imports the module of a
stored ``fn(path=module:function)`` (``load_functions=False``); the code names it as text.
Where the winner is a single schedule that ``torch.optim.lr_scheduler`` also has, the torch class (or lrlab's
drop-in of the same name) is given too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lrlab.errors import ConfigError
from lrlab.report.data import Study
from lrlab.report.overfitting import Diagnosis, diagnose
from lrlab.schedules import Constant, Cosine, Exponential, OneCycle, Step
from lrlab.spec import Horizon, Plan, build
from lrlab.stats import compare

ALPHA = 0.05


@dataclass(frozen=True)
class Recommendation:
    """The study's best schedule and how to use it.

    Attributes:
        schedule, spec: the winner's display name and spec (lowest mean ``metric``).
        ties: schedules whose ``metric`` is not distinguishable from the winner's (Welch p > alpha).
        text: a few sentences saying so, and how overfitting was taken into account.
        code: a plain torch loop driven by ``ScheduledLR.from_plan(optimizer, build(spec, Horizon(...)))``.
        torch_code: the same schedule as a ``torch.optim.lr_scheduler`` class (lrlab's drop-in takes the same
            arguments), or None where torch has no single class for it.
    """

    schedule: str
    spec: str
    ties: tuple[str, ...]
    text: str
    code: str
    torch_code: str | None
    metric: str = "final validation loss"  # or "best-epoch validation loss", when a schedule overfits


def _horizon(study: Study) -> Horizon | None:
    stored = study.horizon
    return None if not stored else Horizon(**stored)


def _loop(horizon: Horizon, import_line: str, make_scheduler: str, per_step: str | None, per_epoch: str | None) -> str:
    epochs = horizon.total_steps // (horizon.steps_per_epoch or horizon.total_steps)
    lines = [
        "import torch",
        import_line,
        "",
        f"optimizer = ...  # your optimizer, with lr={horizon.base_lr:g} (the peak LR this study used)",
        f"scheduler = {make_scheduler}",
        f"for epoch in range({epochs}):",
        f"    for x, y in batches:  # {horizon.steps_per_epoch} steps per epoch",
        "        loss = loss_fn(model(x), y)",
        "        optimizer.zero_grad()",
        "        loss.backward()",
        "        optimizer.step()",
    ]
    if per_step:
        lines.append(f"        {per_step}")
    if per_epoch:
        lines.append(f"    {per_epoch}")
    return "\n".join(lines)


def _constant(plan: Plan) -> str | None:
    settings = plan.plateau
    if settings is None:
        return None  # a constant LR needs no scheduler
    return (f"ReduceLROnPlateau(optimizer, mode={settings.mode!r}, factor={settings.factor:g}, "
            f"patience={settings.patience}, threshold={settings.threshold:g}, "
            f"threshold_mode={settings.threshold_mode!r}, cooldown={settings.cooldown}, min_lr={settings.min_lr!r})")


def _cosine(plan: Plan) -> str | None:
    lr: Any = plan.lr
    return f"CosineAnnealingLR(optimizer, T_max={lr.steps}, eta_min={lr.min_lr:g})"


def _step(plan: Plan) -> str | None:
    lr: Any = plan.lr
    return f"StepLR(optimizer, step_size={lr.step_size}, gamma={lr.gamma:g})"


def _exponential(plan: Plan) -> str | None:
    lr: Any = plan.lr
    return f"ExponentialLR(optimizer, gamma={lr.gamma!r})"


def _onecycle(plan: Plan) -> str | None:
    lr: Any = plan.lr
    return (f"OneCycleLR(optimizer, max_lr={lr.max_lr:g}, total_steps={lr.total_steps}, pct_start={lr.pct_start:g}, "
            f"anneal_strategy={lr.anneal_strategy!r}, div_factor={lr.div_factor:g}, "
            f"final_div_factor={lr.final_div_factor:g}, three_phase={lr.three_phase})")


#: built LR schedule type -> its torch.optim.lr_scheduler constructor call (plateau only on a constant)
_TORCH_CLASSES: dict[type, Callable[[Plan], str | None]] = {
    Constant: _constant, Cosine: _cosine, Step: _step, Exponential: _exponential, OneCycle: _onecycle,
}


def torch_equivalent(plan: Plan) -> str | None:
    """``ClassName(optimizer, ...)`` of ``torch.optim.lr_scheduler`` giving the plan's LRs, or None."""
    lr = plan.lr
    if lr.__class__ is Cosine and getattr(lr, "cyclic", False):
        return None
    if plan.controller is not None and (plan.plateau is None or lr.__class__ is not Constant):
        return None  # torch has no GreedyLR and cannot combine a schedule with ReduceLROnPlateau; lrlab's spec can
    make = _TORCH_CLASSES.get(lr.__class__)
    return None if make is None else make(plan)


def _ties(study: Study, best: str, candidates: Sequence[str], alpha: float, early: bool) -> tuple[str, ...]:
    def values_of(name: str) -> np.ndarray:
        runs = study.schedules[name]
        return runs.best_val_loss() if early else runs.final_val_loss()

    reference = values_of(best)
    tied = []
    for name in candidates:
        values = values_of(name)
        if len(values) >= 2 and len(reference) >= 2 and np.isfinite(values).all():
            if compare(values, reference).p_value > alpha:
                tied.append(name)
    return tuple(tied)


def _reason(best: str, spec: str, diagnosis: Diagnosis, row: dict[str, dict[str, Any]], early: bool) -> str:
    """Why ``best``: its loss, and how overfitting (``diagnosis``) was taken into account."""
    final, low = row[best]["final_val_loss_mean"], row[best]["best_val_loss_mean"]
    epoch = f"about epoch {row[best]['best_val_loss_epoch_mean']:.0f}"
    if early:
        other = diagnosis.by_final[0]
        return (f"Use “{best}” ({spec}) with early stopping (keep the weights of the epoch with the lowest validation "
                f"loss, {epoch} here): the lowest mean best-epoch validation loss ({low:.4g}). "
                f"{len(diagnosis.overfit)} of {len(diagnosis.by_final)} schedules overfit, and by final validation "
                f"loss “{other}” ranks first instead ({row[other]['final_val_loss_mean']:.4g}), an early-stopping "
                "effect: this ranks by the best epoch, not the last.")
    text = f"Use “{best}” ({spec}): the lowest mean final validation loss ({final:.4g})"
    if not diagnosis.overfit:
        if diagnosis.agree:
            return text + ". No schedule overfits, and by best-epoch validation loss it ranks first too."
        first = diagnosis.by_best[0]
        return (text + f". No schedule overfits; by best-epoch validation loss “{first}” ranks first "
                f"({row[first]['best_val_loss_mean']:.4g} against {low:.4g}).")
    who = ("every schedule" if len(diagnosis.overfit) == len(diagnosis.by_final)
           else ", ".join(f"“{name}”" for name in diagnosis.overfit))
    text += (f", and the lowest best-epoch validation loss too ({low:.4g}): overfitting ({who}) does not change "
             "the pick.")
    if row[best]["overfits"]:
        text += f" It overfits itself: keep the weights of its best epoch ({epoch} here)."
    return text


def recommend(study: Study, rows: Sequence[dict[str, Any]], alpha: float = ALPHA) -> Recommendation | None:
    """The schedule to use, from the summary ``rows`` (best first), or None when no schedule finished."""
    diagnosis = diagnose(rows)
    early = bool(diagnosis.overfit) and not diagnosis.agree  # overfitting changes the pick: rank by the best epoch
    ranked = list(diagnosis.by_best if early else diagnosis.by_final)
    if not ranked:
        return None
    best = ranked[0]
    spec = study.schedules[best].spec
    ties = _ties(study, best, ranked[1:], alpha, early)
    metric = "best-epoch validation loss" if early else "final validation loss"
    text = _reason(best, spec, diagnosis, {r["schedule"]: r for r in rows}, early)
    if ties:
        text += (f" At {len(study.seeds)} seeds it is not distinguishable from {', '.join(f'“{t}”' for t in ties)}"
                 f" on {metric} (Welch p > {alpha}): any of them is as good on this evidence.")
    horizon = _horizon(study)
    if horizon is not None and study.peak_lr_of(best) is not None:  # the schedule's own peak LR, where it had one
        horizon = replace(horizon, base_lr=study.peak_lr_of(best))
    if horizon is None:
        return Recommendation(best, spec, ties, text, f"# build({spec!r}, Horizon(...)): the run's length is not "
                              "stored in this results directory", None, metric)
    try:
        plan = build(spec, horizon, load_functions=False)  # a store is data: import nothing it names
    except ConfigError:
        return Recommendation(best, spec, ties, text, "", None, metric)
    watch = (f"  # {'ReduceLROnPlateau' if plan.plateau is not None else 'GreedyLR'} watches the validation loss, "
             "once per epoch")
    horizon_args = (f"Horizon(total_steps={horizon.total_steps}, steps_per_epoch={horizon.steps_per_epoch}, "
                    f"base_lr={horizon.base_lr:g}" + (f", beta2={horizon.beta2:g})" if horizon.beta2 else ")"))
    code = _loop(horizon, "from lrlab import Horizon, ScheduledLR, build",
                 f"ScheduledLR.from_plan(optimizer, build({spec!r}, {horizon_args}))",
                 "scheduler.step()  # after every optimizer step: durations are in steps",
                 "scheduler.observe(validation_loss())" + watch if plan.controller is not None else None)
    torch_call = torch_equivalent(plan)
    torch_code = None
    if torch_call is not None:
        name = torch_call.split("(")[0]
        import_line = f"from torch.optim.lr_scheduler import {name}  # or: from lrlab import {name}"
        if name == "ReduceLROnPlateau":
            torch_code = _loop(horizon, import_line, torch_call, None, "scheduler.step(validation_loss())" + watch)
        else:
            torch_code = _loop(horizon, import_line, torch_call, "scheduler.step()  # after every optimizer step",
                               None)
    return Recommendation(best, spec, ties, text, code, torch_code, metric)

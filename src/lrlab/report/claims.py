"""The study's expected effects, each checked against the stored runs.

Every claim compares a *candidate* schedule with a *reference* schedule over seeds (Welch's t-test at
``alpha = 0.05``, difference of means with its 95% CI, Cohen's d) and gets one verdict:

- ``supported``: the candidate is better and ``p < alpha``;
- ``contradicted``: the candidate is worse and ``p < alpha``;
- ``tie (within seed noise)``: ``p >= alpha`` — at this number of seeds the two cannot be told apart;
- ``not testable``: a schedule the claim needs is missing, fewer than two seeds trained to the end on a
  side (no estimate of seed noise), or the metric does not exist for this task/config.

Runs that diverged are left out of the means; when *every* run of one side diverged and the other side has
runs trained to the end, the side that trained to the end is better (supported/contradicted, no test).
p-values are per comparison, not corrected for the several comparisons of one report.

The claims and how their schedules are found (spec strings compared without whitespace, case-insensitive):

1. A decaying schedule ends with a lower final validation loss than the constant-LR baseline. The baseline
   is the schedule whose spec is ``constant()`` (else the one named ``constant``). A schedule decays when
   its LR at the last step of its longest finished run is at most half of its peak; specs containing
   ``plateau(`` are left to claim 3. One row per decaying schedule.
2. OneCycle (spec starting with ``onecycle(``, else named ``onecycle``) reaches the config's ``target_acc``
   in fewer epochs than the baseline. A run that never reaches it counts as ``epochs + 1``.
3. ReduceLROnPlateau (spec containing ``plateau(``) ends with a lower final validation loss than the
   baseline: it escapes the plateau. One row per such schedule.
4. Cosine annealing (spec starting with ``cosine(`` and no ``>>``, else named ``cosine``) ends with a lower
   final validation loss than StepLR (spec starting with ``step(``, else named ``step``); the final
   accuracies are compared alongside when the task has them.
5. Warmup: for schedules ``X`` and ``warmup(...) >> X`` (the same spec after the first ``>>``), or two
   schedules named ``warmup`` and ``no-warmup``, the warmup one ends with a lower final validation loss;
   the other's runs that stall (final validation loss less than 5% below its first epoch's) or diverge
   are counted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lrlab.report.data import ScheduleRuns, Study
from lrlab.stats import Comparison, censored_epochs, compare, effect_size_label, epochs_to_target

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
TIE = "tie (within seed noise)"
NOT_TESTABLE = "not testable"
VERDICTS: tuple[str, ...] = (SUPPORTED, CONTRADICTED, TIE, NOT_TESTABLE)

ALPHA = 0.05
STALL_IMPROVEMENT = 0.05  # a run "stalls" when its final val loss is less than 5% below its first epoch's
_DECAY_KINDS = frozenset({"step", "multistep", "exponential", "cosine", "onecycle", "linear", "polynomial",
                          "tanh", "wsd", "inverse_sqrt", "warmup_cosine"})


@dataclass(frozen=True)
class Claim:
    """One expected effect and what the data say about it.

    ``number`` is the claim's number (1-5, see the module docstring); ``schedules`` are (candidate, reference)
    display names, empty when not found; ``observed`` gives the numbers behind the ``verdict``.
    """

    number: int
    statement: str
    schedules: tuple[str, ...]
    metric: str
    observed: str
    verdict: str
    comparison: Comparison | None = None


def _norm(spec: str) -> str:
    return re.sub(r"\s+", "", spec).lower()


def _kind(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z_][A-Za-z0-9_-]*)", spec)
    return match.group(1).lower() if match else ""


def _find(study: Study, kind: str, plain: bool = True) -> ScheduleRuns | None:
    """The first schedule whose spec is ``kind(...)`` (without ``>>`` when ``plain``), else one named ``kind``."""
    for sched in study.schedules.values():
        if _kind(sched.spec) == kind and not (plain and ">>" in sched.spec):
            return sched
    for sched in study.schedules.values():
        if sched.name.lower() == kind:
            return sched
    return None


def find_baseline(study: Study) -> ScheduleRuns | None:
    """The constant-LR baseline: spec ``constant()``, else the schedule named ``constant``; None if neither."""
    for sched in study.schedules.values():
        if _norm(sched.spec) == "constant()":
            return sched
    return next((s for s in study.schedules.values() if s.name.lower() == "constant"), None)


def decays(sched: ScheduleRuns) -> bool:
    """Whether the schedule's LR ends at most half its peak (from its longest finished run's stored LRs).

    With no run trained to the end, the spec's kind decides (after the last ``>>``).
    """
    runs = sched.done or ()
    if runs:
        lr = max(runs, key=lambda r: len(r.lr)).lr
        lr = lr[np.isfinite(lr)]
        return bool(len(lr)) and float(lr[-1]) <= 0.5 * float(lr.max())
    return _kind(sched.spec.split(">>")[-1]) in _DECAY_KINDS


def find_warmup_pairs(study: Study) -> list[tuple[ScheduleRuns, ScheduleRuns]]:
    """``(with warmup, without)`` pairs: ``warmup(...) >> X`` and ``X`` by spec, or ``warmup``/``no-warmup`` by name."""
    pairs = []
    by_spec = {_norm(s.spec): s for s in study.schedules.values()}
    for sched in study.schedules.values():
        head, sep, tail = sched.spec.partition(">>")
        if sep and _kind(head) == "warmup" and _norm(tail) in by_spec:
            pairs.append((sched, by_spec[_norm(tail)]))
    names = {s.name.lower(): s for s in study.schedules.values()}
    without = next((names[n] for n in ("no-warmup", "no_warmup", "nowarmup") if n in names), None)
    if "warmup" in names and without is not None and all(p[0] is not names["warmup"] for p in pairs):
        pairs.append((names["warmup"], without))
    return pairs


def _q(name: str) -> str:
    return f"“{name}”"


def _f(x: float, digits: int = 4) -> str:
    return "–" if not math.isfinite(x) else f"{x:.{digits}g}"


def _side(values: np.ndarray) -> str:
    if len(values) == 0:
        return "no run trained to the end"
    if len(values) == 1:
        return f"{_f(float(values[0]))} (1 seed)"
    return f"{_f(float(values.mean()))} ± {_f(float(values.std(ddof=1)), 2)} (n={len(values)})"


def versus(number: int, statement: str, cand: ScheduleRuns, ref: ScheduleRuns, metric: str,
            values: Callable[[ScheduleRuns], np.ndarray], lower_is_better: bool, alpha: float,
            extra: str = "") -> Claim:
    """Judge "``cand`` is better than ``ref`` on ``metric``" (``values``: each side's per-seed values, of the runs
    that trained to the end) as a :class:`Claim` numbered ``number``; ``extra`` is appended to what was observed."""
    a, b = values(cand), values(ref)
    names = (cand.name, ref.name)
    observed = f"{metric}: {cand.name} {_side(a)} vs {ref.name} {_side(b)}."
    for sched in (cand, ref):
        if sched.diverged:
            observed += f" {len(sched.diverged)}/{len(sched.runs)} runs of {sched.name} diverged (excluded)."
    tail = f" {extra}" if extra else ""
    if len(a) == 0 or len(b) == 0:
        if len(a) == 0 and len(b) == 0:
            return Claim(number, statement, names, metric, observed + " Nothing to compare." + tail, NOT_TESTABLE)
        verdict = SUPPORTED if len(b) == 0 else CONTRADICTED
        loser = ref.name if len(b) == 0 else cand.name
        return Claim(number, statement, names, metric,
                     observed + f" Every run of {loser} diverged, so it ends worse." + tail, verdict)
    comparison = compare(a, b)
    if not comparison.testable:
        observed += (f" Difference {comparison.diff:+.3g}; with a single seed on a side there is no estimate of "
                     "seed noise, so no confidence interval or test.")
        return Claim(number, statement, names, metric, observed + tail, NOT_TESTABLE, comparison)
    d = comparison.cohens_d
    observed += (f" Difference {comparison.diff:+.3g}, 95% CI [{comparison.ci_low:+.3g}, {comparison.ci_high:+.3g}];"
                 f" Welch p = {comparison.p_value:.3g}; Cohen's d = {d:+.2f} ({effect_size_label(d)}).")
    better = comparison.diff < 0 if lower_is_better else comparison.diff > 0
    if comparison.p_value < alpha:
        verdict = SUPPORTED if better else CONTRADICTED
    else:
        verdict = TIE
        n = min(comparison.n_a, comparison.n_b)
        observed += f" At {n} seeds the two schedules tie: the difference is within seed noise."
    return Claim(number, statement, names, metric, observed + tail, verdict, comparison)


def final_loss(sched: ScheduleRuns) -> np.ndarray:
    """The final validation losses of ``sched``'s runs that trained to the end, finite ones only."""
    values = sched.final_val_loss()
    return values[np.isfinite(values)]


def _final_acc(sched: ScheduleRuns) -> np.ndarray:
    values = sched.final_val_acc()
    return values[np.isfinite(values)]


def _claim_decay(study: Study, base: ScheduleRuns | None, alpha: float) -> list[Claim]:
    statement = "A decaying schedule ends with a lower validation loss than the constant-LR baseline."
    if base is None:
        return [Claim(1, statement, (), "final val loss",
                      "No baseline: no schedule has spec constant() or is named constant.", NOT_TESTABLE)]
    decaying = [s for s in study.schedules.values()
                if s is not base and "plateau(" not in _norm(s.spec) and decays(s)]
    if not decaying:
        return [Claim(1, statement, (), "final val loss",
                      "No decaying schedule (LR ending at most half its peak) besides the baseline.", NOT_TESTABLE)]
    return [versus(1, f"Decaying schedule {_q(s.name)} ends with a lower validation loss than the constant-LR "
                       f"baseline {_q(base.name)}.", s, base, "final val loss", final_loss, True, alpha)
            for s in decaying]


def _claim_onecycle(study: Study, base: ScheduleRuns | None, alpha: float) -> list[Claim]:
    target = study.target_acc
    statement = "OneCycle reaches the target accuracy in fewer epochs than the constant-LR baseline."
    cand = _find(study, "onecycle", plain=False)
    reason = None
    if cand is None:
        reason = "No OneCycle schedule (spec onecycle(...) or name onecycle)."
    elif base is None:
        reason = "No baseline: no schedule has spec constant() or is named constant."
    elif not study.has_accuracy:
        reason = "The task records no accuracy (not a classification task)."
    elif target is None:
        reason = "The config sets no target_acc."
    if reason is not None or cand is None or base is None or target is None:
        return [Claim(2, statement, (), "epochs to target", reason or "", NOT_TESTABLE)]
    statement = (f"OneCycle {_q(cand.name)} reaches validation accuracy {target:g} in fewer epochs than the "
                 f"constant-LR baseline {_q(base.name)}.")

    def reached(sched: ScheduleRuns) -> list[int | None]:
        return [epochs_to_target(r.epoch, r.val_acc, target) for r in sched.done]

    hits = {s.name: reached(s) for s in (cand, base)}
    extra = " ".join(f"{name} reached it in {sum(e is not None for e in h)}/{len(h)} runs trained to the end."
                     for name, h in hits.items())
    extra += f" A run that never reaches it counts as {study.epochs + 1} epochs."
    if not any(e is not None for h in hits.values() for e in h):
        return [Claim(2, statement, (cand.name, base.name), "epochs to target",
                      f"Neither schedule reached val acc {target:g} in any run. {extra}", NOT_TESTABLE)]
    return [versus(2, statement, cand, base, "epochs to target",
                    lambda s: censored_epochs(reached(s), study.epochs), True, alpha, extra)]


def _claim_plateau(study: Study, base: ScheduleRuns | None, alpha: float) -> list[Claim]:
    statement = ("ReduceLROnPlateau ends with a lower validation loss than the constant-LR baseline "
                 "(escapes the plateau).")
    plateaus = [s for s in study.schedules.values() if "plateau(" in _norm(s.spec)]
    if not plateaus:
        return [Claim(3, statement, (), "final val loss", "No schedule with plateau(...) in its spec.", NOT_TESTABLE)]
    if base is None:
        return [Claim(3, statement, (), "final val loss",
                      "No baseline: no schedule has spec constant() or is named constant.", NOT_TESTABLE)]
    plateaus = [s for s in plateaus if s is not base]
    if not plateaus:
        return [Claim(3, statement, (), "final val loss", "The only plateau schedule is the baseline.", NOT_TESTABLE)]
    return [versus(3, f"ReduceLROnPlateau {_q(s.name)} ends with a lower validation loss than the constant-LR "
                       f"baseline {_q(base.name)} (escapes the plateau).", s, base, "final val loss", final_loss,
                    True, alpha)
            for s in plateaus]


def _claim_cosine_step(study: Study, alpha: float) -> list[Claim]:
    statement = "Cosine annealing ends with a better validation loss than StepLR."
    cos, step = _find(study, "cosine"), _find(study, "step")
    if cos is None or step is None or cos is step:
        missing = " and ".join(n for n, s in (("cosine", cos), ("step", step)) if s is None) or "cosine or step"
        return [Claim(4, statement, (), "final val loss", f"No {missing} schedule.", NOT_TESTABLE)]
    extra = ""
    if study.has_accuracy:
        a, b = _final_acc(cos), _final_acc(step)
        extra = f"Final val acc: {cos.name} {_side(a)} vs {step.name} {_side(b)}"
        acc = compare(a, b)
        if acc.testable:
            extra += (f", difference {acc.diff:+.3g}, 95% CI [{acc.ci_low:+.3g}, {acc.ci_high:+.3g}], "
                      f"p = {acc.p_value:.3g}")
        extra += "."
    return [versus(4, f"Cosine annealing {_q(cos.name)} ends with a better validation loss than StepLR "
                       f"{_q(step.name)}.", cos, step, "final val loss", final_loss, True, alpha, extra)]


def _stalled(sched: ScheduleRuns) -> int:
    count = 0
    for run in sched.done:
        losses = run.val_loss[np.isfinite(run.val_loss)]
        if len(losses) and losses[-1] > (1 - STALL_IMPROVEMENT) * losses[0]:
            count += 1
    return count


def _claim_warmup(study: Study, alpha: float) -> list[Claim]:
    statement = "With warmup the schedule ends better; without it, training stalls or ends worse."
    pairs = find_warmup_pairs(study)
    if not pairs:
        return [Claim(5, statement, (), "final val loss",
                      "No pair of schedules X and warmup(...) >> X, nor schedules named warmup and no-warmup.",
                      NOT_TESTABLE)]
    claims = []
    for warm, cold in pairs:
        extra = (f"Without warmup, {_stalled(cold)}/{len(cold.done)} runs trained to the end stalled (final val "
                 f"loss less than {STALL_IMPROVEMENT:.0%} below epoch 1's) and {len(cold.diverged)}/{len(cold.runs)} "
                 f"diverged.")
        claims.append(versus(5, f"Warmup {_q(warm.name)} ends with a lower validation loss than {_q(cold.name)} "
                                 "without warmup, which stalls or ends worse.", warm, cold, "final val loss",
                              final_loss, True, alpha, extra))
    return claims


def evaluate_claims(study: Study, alpha: float = ALPHA) -> list[Claim]:
    """Every claim (1-5) judged from the study's runs, in order; untestable ones say why."""
    base = find_baseline(study)
    return [*_claim_decay(study, base, alpha), *_claim_onecycle(study, base, alpha),
            *_claim_plateau(study, base, alpha), *_claim_cosine_step(study, alpha), *_claim_warmup(study, alpha)]

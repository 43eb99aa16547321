"""The claim × task verdict table of ``lrlab claims``, from the stores alone (no torch).

Each cell judges one claim on one task (:class:`Cell`): a verdict, the effect with its 95% CI, Welch's p-value
and Cohen's d where they exist, and what was observed. Claims 1-5 are :func:`lrlab.report.evaluate_claims` on
the task's schedules; the others are this module's:

6a. Too large a constant LR diverges: some run of the constant schedule's tuning grid, or of the LR sweep that
    carries it up to 1000× the tuned LR (:data:`~lrlab.study.plan.SWEEP_FACTORS`), diverged; "not observed"
    when none did, with how much worse the highest LR ended.
6b. Too small a constant LR is slow: the tuned LR ends with a lower validation loss than an LR 10× below it
    (of the grid and the sweep, the LR below the pick nearest to pick / 10 on a log scale).
7.  Warmup matters more at batch 512 than at batch 16 (LR scaled with the batch): the difference in differences
    ``(cosine − warmup-cosine) at 512 − (the same) at 16`` of final validation loss is > 0.
8.  Warmup matters more in the Post-LN Transformer than in this task: the relative effect
    ``ln(cosine / warmup-cosine)`` (means of final validation loss) is larger there.
9.  Restarts (SGDR) end with a lower validation loss than plain cosine.
10. The best schedule beats schedule-free: the schedule with the best tuning score (on the held-out tuning
    seeds, so the pick is not judged on the seeds it was chosen on) against the schedule-free optimizer.

Verdicts: ``supported``, ``contradicted``, ``tie (within seed noise)``, ``not observed`` (the runs were made and
the effect the claim predicts did not happen: no run diverged, or a side has too few finished runs to test),
``not measured`` (what the claim needs is missing from this run: a schedule, an experiment, a metric, a second
seed; the budget decides which) and ``reference`` (the Post-LN task's own cell of claim 8). Runs that diverged
are left out of means; a side whose every run diverged ends worse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrlab.errors import ConfigError
from lrlab.report.claims import (
    ALPHA,
    CONTRADICTED,
    NOT_TESTABLE,
    SUPPORTED,
    TIE,
    Claim,
    evaluate_claims,
    final_loss,
    versus,
)
from lrlab.report.data import ScheduleRuns, Study, load_study
from lrlab.stats import Contrast, contrast
from lrlab.study.plan import BATCH_SIZES, POST_LN_TASK, SWEEP_DIR, WARMUP_PAIR

NOT_OBSERVED = "not observed"
NOT_MEASURED = "not measured"
REFERENCE = "reference"

#: row id -> the claim as the table states it
ROWS: dict[str, str] = {
    "1 step": "StepLR ends with a lower validation loss than constant LR",
    "1 cosine": "Cosine ends with a lower validation loss than constant LR",
    "1 onecycle": "OneCycle ends with a lower validation loss than constant LR",
    "1 warmup-cosine": "Warmup + cosine ends with a lower validation loss than constant LR",
    "1 sgdr": "SGDR ends with a lower validation loss than constant LR",
    "2": "OneCycle reaches the target accuracy in fewer epochs than constant LR",
    "3": "ReduceLROnPlateau ends with a lower validation loss than constant LR",
    "4": "Cosine ends with a lower validation loss than StepLR",
    "5": "Warmup + cosine ends with a lower validation loss than cosine alone",
    "6a": "Too large a constant LR diverges",
    "6b": "Too small a constant LR progresses slowly (10× below the tuned LR ends worse)",
    "7": f"Warmup matters more at batch {BATCH_SIZES[1]} than at batch {BATCH_SIZES[0]} (LR scaled with the batch)",
    "8": "Warmup matters more in the Post-LN Transformer than here",
    "9": "Warm restarts (SGDR) end with a lower validation loss than plain cosine",
    "10": "The best schedule ends with a lower validation loss than schedule-free",
}


@dataclass(frozen=True)
class Cell:
    """One claim on one task. ``effect`` is in ``metric``'s units, signed so that the claim predicts its sign
    as ``direction`` says (``"< 0"`` or ``"> 0"``); ``nan`` where not measured."""

    row: str
    task: str
    verdict: str
    metric: str = ""
    effect: float = math.nan
    direction: str = ""
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    cohens_d: float = math.nan
    n: str = ""
    observed: str = ""

    @property
    def claim(self) -> str:
        """The claim's statement (:data:`ROWS`)."""
        return ROWS[self.row]


@dataclass(frozen=True)
class TaskStudies:
    """A task's experiments as stored (None: not run, or no finished run)."""

    task: str
    schedules: Study | None
    schedulefree: Study | None = None
    batches: tuple[Study | None, ...] = (None, None)
    sweep: Study | None = None


def load_task_studies(task: str, directory: str | Path) -> TaskStudies:
    """``task``'s experiments under ``directory`` (laid out as :mod:`lrlab.study.plan` says)."""
    directory = Path(directory)
    return TaskStudies(task, _load(directory), _load(directory / "schedulefree"),
                       tuple(_load(directory / f"batch-{size}") for size in BATCH_SIZES), _load(directory / SWEEP_DIR))


def _load(directory: Path) -> Study | None:
    try:
        return load_study(directory)
    except ConfigError:  # no store, or no finished run
        return None


# ------------------------------------------------------------------------------------------------ cells


def _from_claim(row: str, task: str, claim: Claim, direction: str = "< 0") -> Cell:
    c = claim.comparison
    verdict = NOT_MEASURED if claim.verdict == NOT_TESTABLE else claim.verdict
    if c is None:
        return Cell(row, task, verdict, claim.metric, direction=direction, observed=claim.observed)
    return Cell(row, task, verdict, claim.metric, c.diff, direction, c.ci_low, c.ci_high, c.p_value, c.cohens_d,
                f"{c.n_a} vs {c.n_b}", claim.observed)


def _from_contrast(row: str, task: str, metric: str, result: Contrast, counts: str, observed: str) -> Cell:
    if not result.testable:
        return Cell(row, task, NOT_OBSERVED, metric, result.estimate, "> 0", n=counts,
                    observed=observed + " A group has fewer than two runs trained to the end: no test.")
    verdict = TIE if result.p_value >= ALPHA else SUPPORTED if result.estimate > 0 else CONTRADICTED
    observed += (f" Contrast {result.estimate:+.3g}, 95% CI [{result.ci_low:+.3g}, {result.ci_high:+.3g}], "
                 f"Welch–Satterthwaite p = {result.p_value:.3g}.")
    return Cell(row, task, verdict, metric, result.estimate, "> 0", result.ci_low, result.ci_high, result.p_value,
                n=counts, observed=observed)


def _missing(row: str, task: str, why: str) -> Cell:
    return Cell(row, task, NOT_MEASURED, observed=why)


def _study_claims(task: str, study: Study | None) -> list[Cell]:
    """Claims 1-5 and 9 on the task's schedules."""
    rows = [r for r in ROWS if r.split()[0] in ("1", "2", "3", "4", "5", "9")]
    if study is None:
        return [_missing(r, task, "The schedules were not run on this task.") for r in rows]
    found: dict[str, Cell] = {}
    for claim in evaluate_claims(study):
        row = {1: f"1 {claim.schedules[0] if claim.schedules else ''}", 2: "2", 3: "3", 4: "4", 5: "5"}[claim.number]
        if row in ROWS and row not in found:
            found[row] = _from_claim(row, task, claim)
    sgdr, cosine = study.schedules.get("sgdr"), study.schedules.get("cosine")
    if sgdr is not None and cosine is not None:
        found["9"] = _from_claim("9", task, versus(9, ROWS["9"], sgdr, cosine, "final val loss", final_loss, True,
                                                   ALPHA))
    absent = "Not measured here: the schedules it needs were not run on this task (see the budget)."
    return [found.get(r) or _missing(r, task, absent) for r in rows]


GridPoint = tuple[float, np.ndarray, int]  # (LR, final losses of the seeds that finished, how many diverged)


def _grid(study: Study | None, name: str) -> tuple[float, list[GridPoint]] | None:
    """A tuned schedule's pick and grid, by LR: ``(peak LR, [(lr, finished seeds' final losses, diverged)])``."""
    tuned = (study.tuned or {}).get(name) if study is not None else None
    if not tuned:
        return None
    points = [(float(p["lr"]), np.array([v for v in p["val_loss"] if v is not None], dtype=float), int(p["diverged"]))
              for p in tuned["points"]]
    return float(tuned["peak_lr"]), sorted(points, key=lambda p: p[0])


def constant_sweep(studies: TaskStudies) -> tuple[float, list[GridPoint], int] | None:
    """The constant schedule's tuning grid extended by the LR sweep, by LR: ``(tuned LR, points, how many of them
    the sweep added)``; None where the constant schedule was not tuned."""
    grid = _grid(studies.schedules, "constant")
    if grid is None:
        return None
    pick, points = grid
    sweep = studies.sweep
    added = [] if sweep is None else [
        (float(sweep.peak_lr_of(s.name) or math.nan), final_loss(s), len(s.diverged))
        for s in sweep.schedules.values()]
    return pick, sorted([*points, *added], key=lambda p: p[0]), len(added)


def _side(lr: float, losses: np.ndarray, diverged: int) -> ScheduleRuns:
    """A grid point as pseudo-runs for :func:`versus` (only their final losses and divergence are read)."""
    from lrlab.report.data import RunSeries

    empty = np.array([])

    def run(loss: float, status: str) -> RunSeries:
        return RunSeries(f"lr={lr:.3g}", "", 0, status, None, None, {}, empty, None, empty, np.array([1]),
                         np.array([loss]), None)

    return ScheduleRuns(f"lr={lr:.3g}", "", tuple([run(v, "done") for v in losses] +
                                                  [run(math.nan, "diverged")] * diverged))


def _lr_sweep(task: str, studies: TaskStudies) -> list[Cell]:
    """Claims 6a and 6b, from the constant schedule's tuning grid and the LR sweep around it (held-out seeds)."""
    swept = constant_sweep(studies)
    if swept is None:
        why = "No LR grid: the constant schedule was not tuned on this task in this budget."
        return [_missing("6a", task, why), _missing("6b", task, why)]
    pick, points, added = swept
    best = next(p for p in points if p[0] == pick)
    top = points[-1]
    metric = "final val loss"
    diverging = [p for p in points if p[2] > 0]
    what = "Grid and sweep" if added else "Grid"
    lrs = ", ".join(f"{p[0]:.3g}" for p in points)
    if diverging:
        onset = diverging[0]
        seeds = len(onset[1]) + onset[2]
        cell_a = Cell("6a", task, SUPPORTED, "runs diverged at the lowest diverging LR", onset[2] / seeds, "> 0",
                      n=f"{onset[2]}/{seeds}", observed=(
                          f"{what} {lrs} (tuned LR {pick:.3g}): {onset[2]}/{seeds} runs at LR {onset[0]:.3g} "
                          f"({onset[0] / pick:.3g}× the tuned LR) diverged; "
                          f"{sum(p[2] for p in diverging)} diverged over the {len(diverging)} LRs where any did."))
    elif top[0] == pick:
        cell_a = _missing("6a", task, f"{what} {lrs}: the tuned LR is the highest; nothing above it was run.")
    else:
        judged = versus(6, ROWS["6a"], _side(*best), _side(*top), metric, final_loss, True, ALPHA)
        cell_a = Cell("6a", task, NOT_OBSERVED, metric, observed=(
            f"{what} {lrs} (tuned LR {pick:.3g}): no run diverged, up to {top[0]:.3g} ({top[0] / pick:.3g}× the "
            f"tuned LR). Against the highest LR: {judged.observed}"))
    below = [p for p in points if p[0] < pick]
    if not below:
        cell_b = _missing("6b", task, f"{what} {lrs}: the tuned LR is the lowest; nothing below it was run.")
    else:
        low = min(below, key=lambda p: abs(math.log(p[0] / (pick / 10))))
        judged = versus(6, ROWS["6b"], _side(*best), _side(*low), metric, final_loss, True, ALPHA)
        cell_b = _from_claim("6b", task, judged)
        cell_b = Cell(**{**cell_b.__dict__, "observed": f"Tuned LR {pick:.3g} against {low[0]:.3g} "
                                                        f"({pick / low[0]:.3g}× lower; {what.lower()} {lrs}): "
                                                        f"{judged.observed}"})
    return [cell_a, cell_b]


def _pair(study: Study | None) -> tuple[np.ndarray, np.ndarray, str] | None:
    """``(cosine, warmup-cosine)`` final losses of ``study``, and their counts (None when one is missing)."""
    warm, cold = (study.schedules.get(n) for n in WARMUP_PAIR) if study is not None else (None, None)
    if warm is None or cold is None:
        return None
    counts = (f"{len(cold.done)}+{len(cold.diverged)} diverged / {len(warm.done)}+{len(warm.diverged)} diverged"
              if cold.diverged or warm.diverged else f"{len(cold.done)} / {len(warm.done)}")
    return final_loss(cold), final_loss(warm), counts


def _batch(task: str, studies: TaskStudies) -> Cell:
    """Claim 7: the warmup effect at the large batch minus at the small one."""
    small, large = (_pair(s) for s in studies.batches)
    if small is None or large is None:
        return _missing("7", task, f"Not measured here: the batch {BATCH_SIZES[0]}/{BATCH_SIZES[1]} experiments "
                                   "were not run on this task (see the budget).")
    metric = "Δ(cosine − warmup) final val loss, large − small batch"
    observed = (f"Warmup's effect (cosine − warmup-cosine, final val loss): batch {BATCH_SIZES[1]}: "
                f"{_mean(large[0]) - _mean(large[1]):+.3g}; batch {BATCH_SIZES[0]}: "
                f"{_mean(small[0]) - _mean(small[1]):+.3g}.")
    diverged = _diverged(studies.batches[1], WARMUP_PAIR[1])
    if diverged and len(large[0]) < 2:
        return Cell("7", task, SUPPORTED, metric, direction="> 0", n=large[2], observed=(
            f"Without warmup at batch {BATCH_SIZES[1]}, {diverged} runs diverged (fewer than two trained to the "
            f"end); with warmup {len(large[1])} trained to the end. {observed}"))
    result = contrast([(1, large[0]), (-1, large[1]), (-1, small[0]), (1, small[1])])
    return _from_contrast("7", task, metric, result, f"{large[2]} | {small[2]}", observed)


def _diverged(study: Study | None, name: str) -> int:
    sched = study.schedules.get(name) if study is not None else None
    return 0 if sched is None else len(sched.diverged)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


def _post_ln(task: str, studies: TaskStudies, reference: TaskStudies | None) -> Cell:
    """Claim 8: warmup's relative effect in the Post-LN Transformer minus in this task."""
    if task == POST_LN_TASK:
        return Cell("8", task, REFERENCE, observed="The Post-LN Transformer: the other tasks' cells compare with it.")
    post = _pair(reference.schedules) if reference is not None else None
    here = _pair(studies.schedules)
    if post is None or here is None:
        where = POST_LN_TASK if post is None else task
        return _missing("8", task, f"Not measured: no cosine/warmup-cosine pair on {where} in this run.")
    metric = "ln(cosine / warmup) final val loss, Post-LN − this task"
    observed = (f"Warmup's relative effect ln(cosine / warmup-cosine): {POST_LN_TASK} "
                f"{math.log(_mean(post[0]) / _mean(post[1])):+.3g}, {task} "
                f"{math.log(_mean(here[0]) / _mean(here[1])):+.3g}."
                if min(map(len, (*post[:2], *here[:2]))) else "A side has no run trained to the end.")
    result = contrast([(1, post[0]), (-1, post[1]), (-1, here[0]), (1, here[1])], log=True)
    return _from_contrast("8", task, metric, result, f"{post[2]} | {here[2]}", observed)


def _schedule_free(task: str, studies: TaskStudies) -> Cell:
    """Claim 10: the best tuned schedule against the schedule-free optimizer."""
    study, free = studies.schedules, studies.schedulefree
    if study is None or free is None or not free.schedules:
        return _missing("10", task, "Not measured here: schedule-free was not run on this task (see the budget; "
                                    "it needs pip install 'lrlab[schedulefree]').")
    contender = next(iter(free.schedules.values()))
    scores = {name: _tuned_score(study, name) for name in study.schedules}
    if all(math.isfinite(s) for s in scores.values()):
        best_name = min(scores, key=scores.__getitem__)
        how = f"best by its tuning score on the held-out seeds ({scores[best_name]:.4g})"
    else:
        best_name = min(study.schedules, key=lambda n: _mean(final_loss(study.schedules[n])) if len(
            final_loss(study.schedules[n])) else math.inf)
        how = "best on these seeds (not tuned: the pick is favoured by the seeds it was chosen on)"
    judged = versus(10, ROWS["10"], study.schedules[best_name], contender, "final val loss", final_loss, True, ALPHA)
    cell = _from_claim("10", task, judged)
    lr = free.peak_lr_of(contender.name)
    decay = _decay_note(study, best_name, free, contender.name)
    return Cell(**{**cell.__dict__, "observed": f"Best schedule: {best_name}, {how}; schedule-free: "
                                                f"{contender.name} at LR {lr:.3g}. {judged.observed}{decay}"})


def _decay_note(study: Study, name: str, free: Study, free_name: str) -> str:
    """A caveat when weight decay, applied as LR × wd per update by torch's and schedulefree's optimizers alike,
    is over 3× stronger on one side of claim 10 at the two tuned LRs (empty otherwise)."""
    per_update = [(s.peak_lr_of(n) or math.nan) * float((s.optimizer or {}).get("weight_decay") or 0)
                  for s, n in ((study, name), (free, free_name))]
    if not all(v > 0 for v in per_update) or max(per_update) < 3 * min(per_update):
        return ""
    stronger = "schedule-free" if per_update[1] > per_update[0] else name
    return (f" Caveat: weight decay per update (LR × wd) is {per_update[0]:.2g} for {name} and {per_update[1]:.2g} "
            f"for schedule-free, {max(per_update) / min(per_update):.3g}× stronger on the {stronger} side: the two "
            f"differ in regularization as well as in schedule.")


def _tuned_score(study: Study, name: str) -> float:
    grid = _grid(study, name)
    if grid is None:
        return math.nan
    pick, points = grid
    losses = next(p for p in points if p[0] == pick)
    return _mean(losses[1]) if losses[2] == 0 else math.inf


def task_cells(studies: TaskStudies, reference: TaskStudies | None) -> list[Cell]:
    """Every claim's cell on one task, in :data:`ROWS` order; ``reference``: the Post-LN task's studies."""
    task = studies.task
    cells = [*_study_claims(task, studies.schedules), *_lr_sweep(task, studies),
             _batch(task, studies), _post_ln(task, studies, reference), _schedule_free(task, studies)]
    order = list(ROWS)
    return sorted(cells, key=lambda c: order.index(c.row))


def claim_cells(tasks: Sequence[TaskStudies]) -> list[Cell]:
    """The table: every claim × task cell, claims in :data:`ROWS` order, tasks in the given order."""
    reference = next((t for t in tasks if t.task == POST_LN_TASK), None)
    by_task = [task_cells(t, reference) for t in tasks]
    return [cells[i] for i in range(len(ROWS)) for cells in by_task]

"""The summary: one row per schedule with final metrics over seeds, ranked best first.

The ranking rule (:data:`RANKING_RULE`): first by the share of seeds that diverged (each a failure), then by
the mean final validation loss of the runs that trained to the end; so a schedule whose seeds mostly diverged
never ranks first on the mean of its survivors.

Means, standard deviations (ddof=1) and 95% CIs are over the runs that trained to the end; diverged runs
are excluded from them and counted in ``diverged``. ``best_val_loss_*`` is each run's lowest validation loss
over its epochs (what early stopping keeps) and the epoch of it; ``train_val_gap_mean`` is the mean of final
validation loss minus final training loss (the last epoch's mean mini-batch loss); ``overfits`` applies
:data:`~lrlab.report.overfitting.OVERFIT_RULE`. ``epochs_to_target_mean`` is the mean over the runs
that reached ``target_acc`` (``epochs_to_target_reached`` says how many did); None when none did.
Undefined values (no accuracy, one seed, no run to the end) are None in rows and empty in the CSV.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from lrlab.report.data import Study
from lrlab.report.files import replacing
from lrlab.report.overfitting import diagnose, overfits
from lrlab.stats import describe, epochs_to_target

SUMMARY_COLUMNS: tuple[str, ...] = (
    "rank", "schedule", "spec", "peak_lr", "seeds", "diverged",
    "final_val_loss_mean", "final_val_loss_std", "final_val_loss_ci_low", "final_val_loss_ci_high",
    "final_val_acc_mean", "final_val_acc_std", "final_val_acc_ci_low", "final_val_acc_ci_high",
    "best_val_acc_mean", "epochs_to_target_mean", "epochs_to_target_reached", "wall_s_mean",
    "best_val_loss_mean", "best_val_loss_std", "best_val_loss_epoch_mean", "final_train_loss_mean",
    "train_val_gap_mean", "overfits",
)


RANKING_RULE = ("Schedules are ranked by the share of their seeds that diverged (each a failure), then by the "
                "mean final validation loss of the runs that trained to the end.")


def _value(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def summary_rows(study: Study) -> list[dict[str, Any]]:
    """One dict per schedule (keys :data:`SUMMARY_COLUMNS`), best first by :data:`RANKING_RULE`.

    Schedules without any run trained to the end (all diverged) come last, in display order, unranked.
    """
    rows = []
    for sched in study.schedules.values():
        done = sched.done
        loss = describe(sched.final_val_loss())
        acc = describe(sched.final_val_acc())
        best = describe([r.best_val_acc for r in done])
        best_loss = describe(sched.best_val_loss())
        train = [r.final_train_loss for r in done]
        gap = [r.final_val_loss - t for r, t in zip(done, train, strict=True)]
        row: dict[str, Any] = {
            "rank": None, "schedule": sched.name, "spec": sched.spec, "peak_lr": study.peak_lr_of(sched.name),
            "seeds": len(sched.runs),
            "diverged": len(sched.diverged),
            "final_val_loss_mean": _value(loss.mean), "final_val_loss_std": _value(loss.std),
            "final_val_loss_ci_low": _value(loss.ci_low), "final_val_loss_ci_high": _value(loss.ci_high),
            "final_val_acc_mean": _value(acc.mean), "final_val_acc_std": _value(acc.std),
            "final_val_acc_ci_low": _value(acc.ci_low), "final_val_acc_ci_high": _value(acc.ci_high),
            "best_val_acc_mean": _value(best.mean),
            "epochs_to_target_mean": None, "epochs_to_target_reached": None,
            "wall_s_mean": _value(describe([r.wall_s if r.wall_s is not None else math.nan for r in done]).mean),
            "best_val_loss_mean": _value(best_loss.mean), "best_val_loss_std": _value(best_loss.std),
            "best_val_loss_epoch_mean": _value(describe([r.best_val_loss_epoch for r in done]).mean),
            "final_train_loss_mean": _value(describe(train).mean),
            "train_val_gap_mean": _value(describe(gap).mean),
        }
        row["overfits"] = overfits(row["final_val_loss_mean"], row["final_val_loss_std"], row["best_val_loss_mean"])
        if study.target_acc is not None and study.has_accuracy:
            reached = [epochs_to_target(r.epoch, r.val_acc, study.target_acc) for r in done]
            hits = [e for e in reached if e is not None]
            row["epochs_to_target_reached"] = len(hits)
            row["epochs_to_target_mean"] = _value(describe(hits).mean)
        rows.append(row)
    rows.sort(key=lambda r: (r["final_val_loss_mean"] is None, r["diverged"] / max(r["seeds"], 1),
                             r["final_val_loss_mean"] or 0.0))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank if row["final_val_loss_mean"] is not None else None
    return rows


def write_summary_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write the rows as CSV with the header :data:`SUMMARY_COLUMNS` (None -> empty cell); return the path.

    The file is replaced in one step: a failed write leaves the earlier one as it was."""
    path = Path(path)
    with replacing(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(SUMMARY_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in SUMMARY_COLUMNS})
    return path


def fmt(x: float | None, digits: int = 4) -> str:
    """A number with ``digits`` significant digits, or an en dash for a missing value."""
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def fmt_mean(row: dict[str, Any], metric: str) -> str:
    """``mean ± std`` of ``metric`` (e.g. ``final_val_loss``) from a summary row (just the mean for one seed)."""
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    return fmt(mean) if std is None else f"{fmt(mean)} ± {fmt(std, 2)}"


def fmt_ci(row: dict[str, Any], metric: str) -> str:
    """``[low, high]`` of ``metric``'s 95% CI from a summary row (an en dash without one)."""
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    return "–" if low is None or high is None else f"[{fmt(low, 3)}, {fmt(high, 3)}]"


def fmt_best(row: dict[str, Any]) -> str:
    """Mean best-epoch validation loss with its mean epoch, e.g. ``0.912 (9.4)``, marked ``overfits`` when so."""
    if row.get("best_val_loss_mean") is None:
        return "–"
    mark = ", overfits" if row.get("overfits") else ""
    return f"{fmt(row['best_val_loss_mean'])} ({fmt(row.get('best_val_loss_epoch_mean'), 3)}{mark})"


def fmt_target(row: dict[str, Any]) -> str:
    """Mean epochs to target with how many runs reached it, e.g. ``4.2 (5/5)``."""
    reached = row.get("epochs_to_target_reached")
    if reached is None or row["seeds"] == row["diverged"]:
        return "–"
    return f"{fmt(row.get('epochs_to_target_mean'), 3)} ({reached}/{row['seeds'] - row['diverged']})"


def summary_table(rows: Sequence[dict[str, Any]], title: str | None = "Schedules, best first") -> Table:
    """A rich table of the rows for the terminal (user strings are shown literally, never as markup)."""
    has_acc = any(r.get("final_val_acc_mean") is not None for r in rows)
    has_target = any(r.get("epochs_to_target_reached") is not None for r in rows)
    own_lrs = len({r.get("peak_lr") for r in rows}) > 1
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("schedule")
    table.add_column("spec", overflow="fold")
    if own_lrs:
        table.add_column("peak LR", justify="right")
    table.add_column("seeds", justify="right")
    table.add_column("diverged", justify="right")
    table.add_column("final val loss", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("best val loss (epoch)", justify="right")
    if has_acc:
        table.add_column("final val acc", justify="right")
        table.add_column("best val acc", justify="right")
    if has_target:
        table.add_column("epochs to target", justify="right")
    table.add_column("wall s", justify="right")
    for row in rows:
        cells: list[str | Text] = [
            "–" if row["rank"] is None else str(row["rank"]), Text(str(row["schedule"])), Text(str(row["spec"])),
            *([fmt(row.get("peak_lr"), 3)] if own_lrs else []),
            str(row["seeds"]), str(row["diverged"]), fmt_mean(row, "final_val_loss"), fmt_ci(row, "final_val_loss"),
            fmt_best(row),
        ]
        if has_acc:
            cells += [fmt_mean(row, "final_val_acc"), fmt(row.get("best_val_acc_mean"))]
        if has_target:
            cells.append(fmt_target(row))
        cells.append(fmt(row.get("wall_s_mean"), 3))
        table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells))
    return table


def report_notes(study: Study, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Plain sentences on what the numbers leave out or how they were made (for the HTML and the terminal)."""
    notes = list(study.notes)
    if all(r.diverged_step == 0 for s in study.schedules.values() for r in s.runs):  # no number to qualify
        return [*notes, "The training loss was not finite from the first step (step 0, before any update) in every "
                        "run, whatever the schedule: the learning rate is not the cause. Check the data (NaN or inf "
                        "in the inputs or targets) and the model's output."]
    done_counts = [len(s.done) for s in study.schedules.values()]
    if done_counts and max(done_counts) <= 1:
        notes.append("Only one seed per schedule trained to the end: no standard deviation, confidence interval "
                     "or test is possible, so every comparison is 'not testable'. Run more seeds.")
    else:
        single = [s.name for s in study.schedules.values() if len(s.done) == 1]
        if single:
            notes.append(f"A single run trained to the end for: {', '.join(single)} (no CI for them).")
    all_diverged = [s.name for s in study.schedules.values() if not s.done]
    if all_diverged:
        notes.append(f"Every run diverged for: {', '.join(all_diverged)}; they have no final metrics and rank last.")
    diagnosis = diagnose(rows)
    if diagnosis.text:
        notes.append(diagnosis.text)
    if any(r["diverged"] for r in rows):
        notes.append("Diverged runs are excluded from means, spreads and CIs, and counted in the 'diverged' column. "
                     + RANKING_RULE)
    if study.tuned:
        picks = ", ".join(f"{name} {grid['peak_lr']:.3g}" for name, grid in study.tuned.items())
        notes.append(f"Each schedule ran at its own peak LR, the best of a grid of real runs on held-out seeds "
                     f"(compare --peak-lr tune: {picks}; figure lr_sensitivity): the claims compare the schedules "
                     "at their tuned peaks, not at one shared LR.")
    if not study.has_accuracy:
        notes.append("This task records no accuracy: accuracy columns, the accuracy figure and time-to-target are "
                     "left out.")
    elif study.target_acc is not None:
        notes.append(f"Epochs to target: the first epoch with validation accuracy >= {study.target_acc:g}; the mean "
                     "is over the runs that reached it, and the count of those runs is in parentheses. In claim 2, a "
                     f"run that never reaches it counts as {study.epochs + 1} epochs.")
    notes.append("CIs are 95% Student-t intervals of the mean over seeds; comparisons use Welch's t-test (alpha "
                 "0.05), uncorrected for the several comparisons of one report. Bands in figures span min..max "
                 "over seeds.")
    return notes

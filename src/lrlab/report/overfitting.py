"""Overfitting: whether validation loss rises after its minimum, and how the ranking reads with early stopping.

A ranking by final validation loss is fair only where training is not dominated by overfitting: when every
schedule's validation loss bottoms out and rises again, the schedule that stops learning first (the first to
cut its LR) wins by an implicit early stop. This module says when that happens (:data:`OVERFIT_RULE`) and gives
the ranking by best-epoch validation loss, what early stopping would keep, beside the ranking by final loss.

It works on the summary rows (:func:`lrlab.report.summary.summary_rows`), whose per-schedule means it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: the rise of the final validation loss over the best epoch's, relative to the best, above which a schedule
#: can be called overfitting (the seed noise must be exceeded too)
OVERFIT_MARGIN = 0.05

OVERFIT_RULE = (f"A schedule overfits when its mean final validation loss exceeds its runs' mean best-epoch "
                f"validation loss by more than {OVERFIT_MARGIN:.0%} of it and by more than the seed standard "
                "deviation of its final loss (only the first test with a single seed).")


def overfits(final_mean: float | None, final_std: float | None, best_mean: float | None) -> bool | None:
    """Whether a schedule overfits by :data:`OVERFIT_RULE`: ``final_mean - best_mean`` is above both
    ``OVERFIT_MARGIN * best_mean`` and ``final_std`` (over seeds; None with one seed). None when undefined.

    E.g. a best of 1.0: a final of 1.10 ± 0.02 overfits; 1.04 ± 0.01 (4%) does not, nor 1.10 ± 0.2 (seed noise).
    """
    if final_mean is None or best_mean is None:
        return None
    rise = final_mean - best_mean
    return rise > OVERFIT_MARGIN * abs(best_mean) and (final_std is None or rise > final_std)


def _ranked(rows: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """The ranked rows ordered as :data:`~lrlab.report.summary.RANKING_RULE` orders them, by ``metric``'s mean."""
    ranked = [r for r in rows if r["rank"] is not None and r.get(metric) is not None]
    return sorted(ranked, key=lambda r: (r["diverged"] / max(r["seeds"], 1), r[metric]))


@dataclass(frozen=True)
class Diagnosis:
    """Which schedules overfit, and the two rankings.

    Attributes:
        overfit: the schedules that overfit by :data:`OVERFIT_RULE`, in ranking order by final loss.
        best_epoch: the mean best epoch over those schedules' runs (epochs; None when none overfits).
        by_final, by_best: the ranked schedules by mean final and by mean best-epoch validation loss (each as
            the summary ranks: the share of diverged seeds first).
        text: plain sentences saying so, with the rule, for the notes.
    """

    overfit: tuple[str, ...]
    best_epoch: float | None
    by_final: tuple[str, ...]
    by_best: tuple[str, ...]
    text: str

    @property
    def agree(self) -> bool:
        """Whether the same schedule ranks first by final and by best-epoch validation loss."""
        return self.by_final[:1] == self.by_best[:1]


def _ranking_text(rows: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"{r['schedule']} {r['best_val_loss_mean']:.4g} (epoch {r['best_val_loss_epoch_mean']:.0f})"
                     for r in rows)


def diagnose(rows: Sequence[dict[str, Any]]) -> Diagnosis:
    """The overfitting diagnosis of a study from its summary ``rows`` (keys ``overfits``, ``best_val_loss_*``)."""
    by_final, by_best = _ranked(rows, "final_val_loss_mean"), _ranked(rows, "best_val_loss_mean")
    overfit = [r for r in by_final if r.get("overfits")]
    names_final = tuple(r["schedule"] for r in by_final)
    names_best = tuple(r["schedule"] for r in by_best)
    if not by_final:
        return Diagnosis((), None, (), (), "")
    if not overfit:
        text = (f"No schedule overfits: each one's final validation loss is within {OVERFIT_MARGIN:.0%} (or the "
                "seed noise) of its best epoch's, so the ranking by final loss is not an early-stopping effect. "
                + OVERFIT_RULE)
        if names_final[:1] != names_best[:1]:
            text += (f" By best-epoch validation loss “{names_best[0]}” would rank first, by final loss "
                     f"“{names_final[0]}”.")
        return Diagnosis((), None, names_final, names_best, text)
    epoch = sum(r["best_val_loss_epoch_mean"] for r in overfit) / len(overfit)
    rises = [r["final_val_loss_mean"] / r["best_val_loss_mean"] - 1 for r in overfit]
    rise = f"{min(rises):.0%}" if len(rises) == 1 else f"{min(rises):.0%}–{max(rises):.0%}"
    who = ("All schedules overfit" if len(overfit) == len(by_final)
           else f"{len(overfit)} of {len(by_final)} schedules overfit ({', '.join(r['schedule'] for r in overfit)})")
    text = (f"{who}: validation loss bottoms out near epoch {epoch:.0f} and rises after it, ending {rise} above its "
            "minimum. A ranking by final loss then rewards the schedule that stops learning first (e.g. the first "
            "to cut its LR), an implicit early stop; with early stopping (each run's best epoch) the ranking is: "
            f"{_ranking_text(by_best)}")
    text += ("; the same winner as by final loss." if names_final[0] == names_best[0]
             else f"; by final loss “{names_final[0]}” ranks first instead.")
    return Diagnosis(tuple(r["schedule"] for r in overfit), epoch, names_final, names_best, f"{text} {OVERFIT_RULE}")

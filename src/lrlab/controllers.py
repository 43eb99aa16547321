"""Controllers: what depends on observed metrics rather than on the step alone.

:class:`Plateau` is ReduceLROnPlateau as a small state machine. It keeps one multiplicative scale per
param group; the LR is ``schedule(step) * scale``, so a plateau controller composes with any schedule
(warmup then plateau, cosine with plateau). Pure Python: no torch import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lrlab.schedules.checks import check_choice, check_int, check_nonneg, check_range

PLATEAU_MODES = ("min", "max")
THRESHOLD_MODES = ("rel", "abs")


class Plateau:
    """Reduce the LR by ``factor`` once a metric has not improved for ``patience`` observations.

    Same rules as ``torch.optim.lr_scheduler.ReduceLROnPlateau``: ``mode`` ``min``/``max``; an
    observation improves on the best when it beats it by ``threshold`` (``threshold_mode`` ``rel``:
    a fraction of best, ``abs``: an amount); after a reduction ``cooldown`` observations are ignored;
    a reduction never takes a group's LR below its ``min_lr`` and is skipped when it would change the LR
    by less than ``eps``.

    ``sign_safe=True`` fixes torch's flaw with metrics that can be negative: with ``rel``, torch requires
    ``metric < best * (1 - threshold)``, which for a negative ``best`` accepts a *worse* value as an
    improvement. With ``sign_safe`` the margin is ``threshold * |best|`` on either sign.
    ``start_step``: observations made before that many optimizer steps are ignored (e.g. during warmup).
    """

    def __init__(self, mode: str = "min", factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 threshold_mode: str = "rel", cooldown: int = 0, min_lr: float | Sequence[float] = 0.0,
                 eps: float = 1e-8, sign_safe: bool = False, start_step: int = 0) -> None:
        check_choice("mode", mode, PLATEAU_MODES)
        check_range("factor", factor, 0.0, 1.0, high_open=True)
        check_int("patience", patience, 0)
        check_nonneg("threshold", threshold)
        check_choice("threshold_mode", threshold_mode, THRESHOLD_MODES)
        check_int("cooldown", cooldown, 0)
        for value in min_lr if isinstance(min_lr, (list, tuple)) else [min_lr]:
            check_nonneg("min_lr", value)
        check_nonneg("eps", eps)
        check_int("start_step", start_step, 0)
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown = threshold, threshold_mode, cooldown
        self.min_lr, self.eps, self.sign_safe, self.start_step = min_lr, eps, sign_safe, start_step
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.observations = 0
        self.scales: list[float] = []

    def __repr__(self) -> str:
        return (f"Plateau(mode={self.mode!r}, factor={self.factor}, patience={self.patience}, "
                f"threshold={self.threshold}, threshold_mode={self.threshold_mode!r}, cooldown={self.cooldown}, "
                f"min_lr={self.min_lr}, eps={self.eps}, sign_safe={self.sign_safe}, start_step={self.start_step})")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]  # mutable state

    def bind(self, num_groups: int) -> None:
        """Size the per-group scales for an optimizer with ``num_groups`` param groups (all start at 1)."""
        if isinstance(self.min_lr, (list, tuple)) and len(self.min_lr) != num_groups:
            raise ValueError(f"min_lr={list(self.min_lr)} is invalid: expected {num_groups} values, one per group")
        if len(self.scales) != num_groups:
            self.scales = [1.0] * num_groups

    def min_lrs(self) -> list[float]:
        """The per-group LR floors.

        Raises ``RuntimeError`` if ``min_lr`` is a list and a param group was added since (torch's rule: the
        list must be extended by hand, e.g. ``scheduler.min_lrs.append(floor)``).
        """
        if not isinstance(self.min_lr, (list, tuple)):
            return [self.min_lr] * len(self.scales)
        if len(self.min_lr) != len(self.scales):
            raise RuntimeError(f"The number of param groups in the optimizer ({len(self.scales)}) differs from the "
                               f"number of min_lr values ({len(self.min_lr)}): a param group was added after "
                               "construction; append its floor to min_lr (ReduceLROnPlateau.min_lrs)")
        return list(self.min_lr)

    def is_better(self, value: float, best: float) -> bool:
        """Whether ``value`` improves on ``best`` by more than the threshold."""
        if self.threshold_mode == "abs":
            margin = self.threshold
        elif self.sign_safe:
            margin = self.threshold * abs(best) if math.isfinite(best) else 0.0
        else:
            # torch's rule, kept bit for bit: best * (1 -/+ threshold)
            return value < best * (1.0 - self.threshold) if self.mode == "min" else value > best * (
                1.0 + self.threshold)
        return value < best - margin if self.mode == "min" else value > best + margin

    def observe(self, metric: float, step: int, uncontrolled_lrs: Sequence[float]) -> bool:
        """Take one observation of the metric, made after ``step`` optimizer steps; return whether it reduced.

        ``uncontrolled_lrs`` are the groups' LRs from the schedule alone at ``step``: a reduction sets each
        group's LR to ``max(lr * factor, min_lr)`` and keeps that as a ratio to the schedule.
        """
        if step < self.start_step:
            return False
        self.scales += [1.0] * (len(uncontrolled_lrs) - len(self.scales))  # groups added since: scale 1
        current = float(metric)
        self.observations += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs <= self.patience:
            return False
        for g, (base, floor) in enumerate(zip(uncontrolled_lrs, self.min_lrs(), strict=True)):
            old_lr = base * self.scales[g]
            new_lr = max(old_lr * self.factor, floor)
            if old_lr - new_lr > self.eps:
                self.scales[g] = new_lr / base if base > 0 else self.scales[g] * self.factor
        self.cooldown_counter = self.cooldown
        self.num_bad_epochs = 0
        return True

    def state_dict(self) -> dict[str, Any]:
        """The controller's state (plain numbers and lists: safe for ``torch.save(weights_only=True)``)."""
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs, "cooldown_counter": self.cooldown_counter,
                "observations": self.observations, "scales": list(self.scales)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.observations = int(state["observations"])
        self.scales = [float(s) for s in state["scales"]]

"""Controllers: what depends on observed metrics rather than on the step alone.

:class:`Plateau` is ReduceLROnPlateau and :class:`Greedy` is GreedyLR, each a small state machine. Each keeps
one multiplicative scale per param group; the LR is ``schedule(step) * scale``, so a controller composes with
any schedule (warmup then plateau, cosine with greedy). Pure Python: no torch import.
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


class Greedy:
    """GreedyLR (Subramanian et al., 2025; HF transformers' ``GreedyLR``): lower the LR on a plateau, *raise* it
    after sustained improvement.

    Each observation (after optional smoothing over the last ``window_size`` values when ``smooth``) either
    improves on the best by ``threshold`` (``threshold_mode`` ``abs`` or ``rel``, torch's rule) or not. After
    more than ``patience`` improving observations in a row the LR is divided by ``factor`` (capped at
    ``max_lr``) and the next ``warmup`` observations are ignored; after more than ``patience`` bad ones it is
    multiplied by ``factor`` (floored at ``min_lr``) and the next ``cooldown`` are ignored. A change smaller
    than ``eps`` is skipped. When every group sits at its floor for ``reset_start`` reductions in a row, the
    controller starts afresh at the schedule's LR. The LR is ``schedule(step) * scale`` per param group.
    ``start_step``: observations made before that many optimizer steps are ignored (e.g. during a warmup).

    In one line: ``scale /= factor`` after more than ``patience`` improvements in a row (LR <= ``max_lr``),
    ``scale *= factor`` after more than ``patience`` non-improvements in a row (LR >= ``min_lr``).
    """

    def __init__(self, mode: str = "min", factor: float = 0.95, patience: int = 10, threshold: float = 1e-6,
                 threshold_mode: str = "abs", cooldown: int = 0, warmup: int = 0,
                 min_lr: float | Sequence[float] = 1e-3, max_lr: float | Sequence[float] = 1.0, eps: float = 1e-8,
                 smooth: bool = False, window_size: int = 50, reset_start: int = 500, start_step: int = 0) -> None:
        check_choice("mode", mode, PLATEAU_MODES)
        check_range("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
        check_int("patience", patience, 0)
        check_nonneg("threshold", threshold)
        check_choice("threshold_mode", threshold_mode, THRESHOLD_MODES)
        check_int("cooldown", cooldown, 0)
        check_int("warmup", warmup, 0)
        for name, bound in (("min_lr", min_lr), ("max_lr", max_lr)):
            for value in bound if isinstance(bound, (list, tuple)) else [bound]:
                check_nonneg(name, value)
        check_nonneg("eps", eps)
        check_int("window_size", window_size, 1)
        check_int("reset_start", reset_start, 0)
        check_int("start_step", start_step, 0)
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown, self.warmup = threshold, threshold_mode, cooldown, warmup
        self.min_lr, self.max_lr, self.eps = min_lr, max_lr, eps
        self.smooth, self.window_size, self.reset_start = smooth, window_size, reset_start
        self.start_step = start_step
        self.scales: list[float] = []
        self._fresh()

    def _fresh(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = self.num_good_epochs = self.cooldown_counter = self.warmup_counter = 0
        self.reset_countdown = self.reset_start
        self.window: list[float] = []
        self.scales = [1.0] * len(self.scales)

    def __repr__(self) -> str:
        return (f"Greedy(mode={self.mode!r}, factor={self.factor}, patience={self.patience}, threshold="
                f"{self.threshold}, threshold_mode={self.threshold_mode!r}, cooldown={self.cooldown}, warmup="
                f"{self.warmup}, min_lr={self.min_lr}, max_lr={self.max_lr}, eps={self.eps}, smooth={self.smooth}, "
                f"window_size={self.window_size}, reset_start={self.reset_start}, start_step={self.start_step})")

    def bind(self, num_groups: int) -> None:
        """Size the per-group scales for an optimizer with ``num_groups`` param groups (all start at 1)."""
        for name, bound in (("min_lr", self.min_lr), ("max_lr", self.max_lr)):
            if isinstance(bound, (list, tuple)) and len(bound) != num_groups:
                raise ValueError(f"{name}={list(bound)} is invalid: expected {num_groups} values, one per group")
        if len(self.scales) != num_groups:
            self.scales = [1.0] * num_groups

    def _per_group(self, bound: float | Sequence[float]) -> list[float]:
        return list(bound) if isinstance(bound, (list, tuple)) else [bound] * len(self.scales)

    def is_better(self, value: float, best: float) -> bool:
        """Whether ``value`` improves on ``best`` by more than the threshold (torch's rule)."""
        if self.threshold_mode == "rel":
            if self.mode == "min":
                return value < best * (1.0 - self.threshold)
            return value > best * (1.0 + self.threshold)
        return value < best - self.threshold if self.mode == "min" else value > best + self.threshold

    def observe(self, metric: float, step: int, uncontrolled_lrs: Sequence[float]) -> bool:
        """Take one observation, made after ``step`` optimizer steps; return whether the LR changed.
        ``uncontrolled_lrs``: the groups' LRs from the schedule alone at ``step``."""
        if step < self.start_step:
            return False
        self.scales += [1.0] * (len(uncontrolled_lrs) - len(self.scales))
        current = float(metric)
        if self.smooth:
            self.window = [*self.window, current][-self.window_size:]
            current = sum(self.window) / len(self.window)
        if self.cooldown_counter > 0 or self.warmup_counter > 0:
            if self.cooldown_counter > 0:
                self.cooldown_counter -= 1
            else:
                self.warmup_counter -= 1
            self.num_bad_epochs = self.num_good_epochs = 0
            return False
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
            self.num_good_epochs += 1
        else:
            self.num_bad_epochs += 1
            self.num_good_epochs = 0
        if self.num_good_epochs > self.patience:
            self.warmup_counter, self.num_good_epochs = self.warmup, 0
            self.reset_countdown = self.reset_start
            return self._rescale(uncontrolled_lrs, up=True)
        if self.num_bad_epochs > self.patience:
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
            changed = self._rescale(uncontrolled_lrs, up=False)
            floors = self._per_group(self.min_lr)
            if all(base * scale <= floor for base, scale, floor in zip(uncontrolled_lrs, self.scales, floors,
                                                                        strict=True)):
                self.reset_countdown -= 1
                if self.reset_countdown <= 0:
                    self._fresh()
                    return True
            return changed
        return False

    def _rescale(self, uncontrolled_lrs: Sequence[float], up: bool) -> bool:
        changed = False
        bounds = self._per_group(self.max_lr if up else self.min_lr)
        for g, (base, bound) in enumerate(zip(uncontrolled_lrs, bounds, strict=True)):
            old_lr = base * self.scales[g]
            new_lr = min(old_lr / self.factor, bound) if up else max(old_lr * self.factor, bound)
            if (new_lr - old_lr if up else old_lr - new_lr) > self.eps and base > 0:
                self.scales[g] = new_lr / base
                changed = True
        return changed

    def state_dict(self) -> dict[str, Any]:
        """The controller's state (plain numbers and lists)."""
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs, "num_good_epochs": self.num_good_epochs,
                "cooldown_counter": self.cooldown_counter, "warmup_counter": self.warmup_counter,
                "reset_countdown": self.reset_countdown, "window": list(self.window), "scales": list(self.scales)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.best = float(state["best"])
        for key in ("num_bad_epochs", "num_good_epochs", "cooldown_counter", "warmup_counter", "reset_countdown"):
            setattr(self, key, int(state[key]))
        self.window = [float(v) for v in state["window"]]
        self.scales = [float(s) for s in state["scales"]]


#: what a spec's plan may carry: a controller whose per-group ``scales`` multiply the schedule's LRs
Controller = Plateau | Greedy

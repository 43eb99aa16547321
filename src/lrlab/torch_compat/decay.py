"""Drop-in classes for torch's closed-form decays: StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR,
PolynomialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, LambdaLR and MultiplicativeLR.
"""

from __future__ import annotations

import math
import types
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import _initial_mode

from lrlab.schedules import (
    Anneal,
    Constant,
    Cosine,
    CosineRestarts,
    Exponential,
    Function,
    Join,
    Multiplicative,
    MultiStep,
    Polynomial,
    Schedule,
    Step,
)
from lrlab.schedules.checks import check_int, check_nonneg, check_positive, check_range
from lrlab.torch_compat.base import DropIn, as_number, check_steps, count_groups, per_group_fns, write_lrs


class StepLR(DropIn):
    """Decay each group's LR by ``gamma`` every ``step_size`` steps: ``base_lr * gamma ** (t // step_size)``.

    Example: ``step_size=2, gamma=0.1`` and base LR 1 give 1, 1, 0.1, 0.1, 0.01, ...
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        check_int("step_size", step_size, 1)
        check_nonneg("gamma", gamma)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Step(base, self.step_size, self.gamma)


class MultiStepLR(DropIn):
    """Decay each group's LR by ``gamma`` at each milestone: ``base_lr * gamma ** #{m in milestones: m <= t}``.

    A milestone listed twice counts twice, and the milestones need not be sorted (``milestones`` keeps
    torch's ``Counter`` of them).
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones = Counter(check_steps("milestones", milestones))
        check_nonneg("gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return MultiStep(base, tuple(sorted(self.milestones.elements())), self.gamma)


class ConstantLR(DropIn):
    """``base_lr * factor`` for the first ``total_iters`` steps, then ``base_lr``.

    Unlike torch: ``factor=0`` works (torch divides by zero at ``total_iters``), and ``total_iters=0`` gives
    ``base_lr`` from the start (torch applies the factor forever, against its own closed form).
    """

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        check_range("factor", factor, 0.0, 1.0)
        check_int("total_iters", total_iters, 0)
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Join((Constant(base * self.factor), Constant(base)), (self.total_iters,))


class LinearLR(DropIn):
    """Ramp each group's LR linearly from ``base_lr * start_factor`` to ``base_lr * end_factor`` in ``total_iters``.

    ``base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)``.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        check_range("start_factor", start_factor, 0.0, 1.0, low_open=True)
        check_range("end_factor", end_factor, 0.0, 1.0)
        check_int("total_iters", total_iters, 1)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Anneal(base * self.start_factor, base * self.end_factor, self.total_iters, "linear")


class ExponentialLR(DropIn):
    """``base_lr * gamma ** t``, without torch's drift."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        check_positive("gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Exponential(base, self.gamma)


class PolynomialLR(DropIn):
    """``base_lr * (1 - min(t, total_iters) / total_iters) ** power``: 0 from ``total_iters`` on."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        check_int("total_iters", total_iters, 1)
        check_nonneg("power", power)
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Polynomial(base, 0.0, self.total_iters, self.power)


class CosineAnnealingLR(DropIn):
    """``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``, a cosine wave of period ``2 * T_max``.

    Torch computes it recursively and keeps following the cosine back up after ``T_max``; lrlab computes the
    closed form, so it does not drift.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        check_int("T_max", T_max, 1)
        check_nonneg("eta_min", eta_min)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Cosine(base, self.eta_min, self.T_max, cyclic=True)

    def torch_scales_by_ratio(self) -> bool:
        """Torch's recursion is a ratio of cosines only with ``eta_min=0``, up to ``T_max``."""
        return self.eta_min == 0 and self.last_epoch <= self.T_max


class CosineAnnealingWarmRestarts(DropIn):
    """Cosine annealing with warm restarts (SGDR): cycle ``i`` lasts ``T_0 * T_mult ** i`` epochs.

    ``eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``, with ``T_cur`` the epochs since the
    last restart and ``T_i`` the current cycle's length. ``step()`` adds one to ``T_cur``; ``step(epoch)``
    (torch's way to step within an epoch, e.g. ``step(epoch + i / iters)``) sets ``T_cur``/``T_i`` for that
    fractional epoch. As in torch, neither form warns.
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        check_int("T_0", T_0, 1)
        check_int("T_mult", T_mult, 1)
        check_nonneg("eta_min", eta_min)
        self.T_0, self.T_i, self.T_mult, self.eta_min, self.T_cur = T_0, T_0, T_mult, eta_min, last_epoch
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return CosineRestarts(base, self.eta_min, self.T_0, float(self.T_mult))

    def lr_values(self, scaled: bool = True) -> list[float]:
        """The LR per group from ``T_cur`` and ``T_i``."""
        cosine = (1.0 + math.cos(math.pi * self.T_cur / self.T_i)) / 2.0
        return [self.eta_min + (float(b) - self.eta_min) * cosine for b in self.base_lrs]

    def torch_scales_by_ratio(self) -> bool:
        """Torch's class sets the LR from ``base_lrs``: it does not scale what another scheduler wrote."""
        return False

    def step(self, epoch: float | None = None) -> None:  # type: ignore[override]
        """One epoch more (``T_cur + 1``), or torch's ``step(epoch)`` at a (fractional) epoch."""
        self._check_not_driven()
        self._step_count += 1
        self._get_lr_called_within_step = False
        if epoch is None and self.last_epoch >= 0:
            self.last_epoch += 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur %= self.T_i
                self.T_i *= self.T_mult
        else:
            self.seek_step(0 if epoch is None else epoch)
        write_lrs(self)

    def _initial_step(self) -> None:
        self._step_count = 0
        self._get_lr_called_within_step = False
        with _initial_mode(self):
            self._step_count += 1
            self.seek_step(self.last_epoch + 1)  # closed form, also when resuming from last_epoch
            write_lrs(self)

    def seek_step(self, step: float) -> None:
        """Set ``T_cur``/``T_i`` for a (fractional) epoch ``>= 0`` and ``last_epoch = floor(epoch)``."""
        step = as_number(step)
        if step == -1:  # before the first step (a SequentialLR child before its segment)
            self.T_cur, self.T_i, self.last_epoch = -1, self.T_0, -1
            return
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step >= 0 or math.isinf(step):
            raise ValueError(f"epoch={step!r} is invalid: expected a number >= 0")
        _, self.T_cur, length = self._schedule(0, 1.0).cycle_at(step)  # type: ignore[attr-defined]
        self.T_i = int(length) if float(length).is_integer() else length
        if isinstance(step, int):
            self.T_cur = int(self.T_cur)
        self.last_epoch = math.floor(step)


class LambdaLR(DropIn):
    """``base_lr * lr_lambda(t)`` per group; ``lr_lambda`` (one callable, or one per group) is a function of ``t``.

    Its ``state_dict`` holds torch's ``lr_lambdas``: None for a function, the ``__dict__`` of a callable object.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        self.lr_lambdas = per_group_fns("lr_lambda", lr_lambda, count_groups(optimizer))
        super().__init__(optimizer, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        return Function(self.lr_lambdas[group], base)

    def torch_scales_by_ratio(self) -> bool:
        """Torch's class sets ``base_lr * lr_lambda(t)``: it does not scale what another scheduler wrote."""
        return False

    def state_dict(self) -> dict[str, Any]:
        """Torch's state; ``lr_lambdas``: None for a plain function, a copy of a callable object's ``__dict__``."""
        state = super().state_dict()
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state (this class's or torch's); a callable object's ``__dict__`` is updated in place."""
        state = {k: v for k, v in state_dict.items() if k != "lr_lambdas"}
        for fn, saved in zip(self.lr_lambdas, state_dict.get("lr_lambdas", []), strict=False):
            if saved is not None:
                fn.__dict__.update(saved)
        super().load_state_dict(state)


class MultiplicativeLR(LambdaLR):
    """``base_lr * lr_lambda(1) * ... * lr_lambda(t)`` per group, as a prefix product.

    ``step(epoch)`` sets the LR to that product at ``epoch`` and warns: torch multiplies the current LR by
    ``lr_lambda(epoch)`` once instead.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        self._cache: dict[tuple[int, float], Multiplicative] = {}
        super().__init__(optimizer, lr_lambda, last_epoch)

    def _schedule(self, group: int, base: float) -> Schedule:
        fn = self.lr_lambdas[group]
        cached = self._cache.get((group, base))
        if cached is None or cached.fn is not fn:  # the prefix products are kept between steps
            cached = self._cache[group, base] = Multiplicative(fn, base)
        return cached

    def torch_scales_by_ratio(self) -> bool:
        """Torch's class multiplies the LR by ``lr_lambda(t)``."""
        return True

    def _seek(self, epoch: Any) -> None:
        warnings.warn("MultiplicativeLR.step(epoch): lrlab sets the LR to base_lr * lr_lambda(1) * ... * "
                      "lr_lambda(epoch); torch multiplies the current LR by lr_lambda(epoch) once instead",
                      UserWarning, stacklevel=5)
        super()._seek(epoch)

"""Drop-in classes for torch's cycles: CyclicLR and OneCycleLR, which also cycle momentum (or Adam's beta1)."""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from functools import partial
from typing import Any

from torch.optim import Optimizer

from lrlab.schedules import Cyclic, OneCycle, OneCycleMomentum, Schedule
from lrlab.schedules.checks import check_choice, check_finite, check_int, check_positive, check_range
from lrlab.schedules.cyclic import ANNEAL_STRATEGIES, CYCLIC_MODES, one_cycle_phases
from lrlab.torch_compat.base import DropIn, check_cycle_momentum, count_groups, per_group, set_momentum, set_value


def _triangular_scale(x: float) -> float:
    return 1.0


def _triangular2_scale(x: float) -> float:
    return 1.0 / (2.0 ** (x - 1))


def _exp_range_scale(gamma: float, x: float) -> float:
    return gamma**x


class CyclicLR(DropIn):
    """Cyclical learning rate (Smith 2017) between ``base_lr`` and ``max_lr``; momentum cycles the other way.

    With ``cycle = floor(1 + t / (up + down))`` and ``x`` the position in the cycle, the LR is
    ``base_lr + (max_lr - base_lr) * height(x) * scale``, where ``height`` rises 0 to 1 over ``step_size_up``
    steps and falls back over ``step_size_down``, and ``scale`` is 1 (``triangular``), ``1 / 2 ** (cycle - 1)``
    (``triangular2``), ``gamma ** t`` (``exp_range``) or ``scale_fn(cycle or t)``. With ``cycle_momentum`` the
    momentum (or Adam's beta1) is ``max_momentum - (max_momentum - base_momentum) * height(x) * scale``.
    Same param group keys and attributes as torch's (``base_lrs`` are the cycle's lower bounds); ``scale_fn``
    must be a pure function.
    """

    def __init__(self, optimizer: Optimizer, base_lr: float | list[float], max_lr: float | list[float],
                 step_size_up: int = 2000, step_size_down: int | None = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Callable[[float], float] | None = None, scale_mode: str = "cycle",
                 cycle_momentum: bool = True, base_momentum: float | list[float] = 0.8,
                 max_momentum: float | list[float] = 0.9, last_epoch: int = -1) -> None:
        n = count_groups(optimizer)
        check_int("last_epoch", last_epoch, -1)
        base_lrs = per_group("base_lr", base_lr, n)
        self.max_lrs = per_group("max_lr", max_lr, n)
        check_int("step_size_up", step_size_up, 1)
        if step_size_down is not None:
            check_int("step_size_down", step_size_down, 0)
        if scale_fn is None:
            check_choice("mode", mode, CYCLIC_MODES)
        elif not callable(scale_fn):
            raise ValueError(f"scale_fn={scale_fn!r} is invalid: expected None or a callable x -> scale")
        check_positive("gamma", gamma)
        check_choice("scale_mode", scale_mode, ("cycle", "iterations"))
        check_cycle_momentum(optimizer, cycle_momentum)
        down = step_size_up if step_size_down is None else step_size_down
        self.total_size = float(step_size_up + down)
        self.step_ratio = step_size_up / self.total_size
        self.mode, self.gamma, self._scale_fn_custom = mode, gamma, scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else ("iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                set_value(group, "lr", lr)
        if cycle_momentum:
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = per_group("base_momentum", base_momentum, n, check_finite)
            self.max_momentums = per_group("max_momentum", max_momentum, n, check_finite)
            if last_epoch == -1:
                for group, low, high in zip(optimizer.param_groups, self.base_momentums, self.max_momentums,
                                            strict=True):
                    set_momentum(group, high)
                    group["max_momentum"], group["base_momentum"] = high, low
        self._cycle_lows = base_lrs
        super().__init__(optimizer, last_epoch)

    def _initial_step(self) -> None:
        self._chain_base_lrs = [float(b) for b in self.base_lrs]  # the groups' initial_lr
        self.base_lrs = self.__dict__.pop("_cycle_lows")  # as torch: the cycle's lower bounds
        super()._initial_step()

    @property
    def _scale_fn_ref(self) -> Callable[[float], float]:
        if self.mode == "triangular2":
            return _triangular2_scale
        if self.mode == "exp_range":
            return partial(_exp_range_scale, self.gamma)
        return _triangular_scale

    def scale_fn(self, x: float) -> float:
        """The amplitude scale at ``x`` (the cycle, or the step for ``scale_mode="iterations"``)."""
        return (self._scale_fn_custom or self._scale_fn_ref)(x)

    def _shape(self) -> dict[str, Any]:
        up = round(self.total_size * self.step_ratio)
        return {"step_size_up": up, "step_size_down": round(self.total_size) - up, "gamma": self.gamma,
                "mode": self.mode if self._scale_fn_custom is None else "triangular",
                "scale_fn": self._scale_fn_custom, "scale_mode": self.scale_mode}

    def _schedule(self, group: int, base: float) -> Schedule:
        return Cyclic(base, float(self.max_lrs[group]), **self._shape())

    @property
    def momentum_schedules(self) -> list[Schedule] | None:  # type: ignore[override]
        """The momentum cycles (max to base and back), if ``cycle_momentum``."""
        if not self.cycle_momentum:
            return None
        return [Cyclic(float(lo), float(hi), **self._shape(), descending=True)
                for lo, hi in zip(self.base_momentums, self.max_momentums, strict=True)]

    def chain_bases(self) -> list[float]:
        """The groups' ``initial_lr``: beside another scheduler, the cycle's LR is relative to it."""
        return list(self.__dict__.get("_chain_base_lrs", self.base_lrs))

    def torch_scales_by_ratio(self) -> bool:
        """Torch's class sets the cycle's LR: it does not scale what another scheduler wrote."""
        return False

    def state_dict(self) -> dict[str, Any]:
        """Torch's state; ``_scale_fn_custom``: None for a function, a copy of a callable object's ``__dict__``."""
        state = super().state_dict()
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = None if fn is None or isinstance(fn, types.FunctionType) else fn.__dict__.copy()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state (this class's or torch's); a callable ``scale_fn`` object is updated in place."""
        state = {k: v for k, v in state_dict.items() if k != "_scale_fn_custom"}
        saved = state_dict.get("_scale_fn_custom")
        if saved is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(saved)
        super().load_state_dict(state)


class OneCycleLR(DropIn):
    """The 1cycle policy (Smith & Topin 2018): warm up to ``max_lr``, then anneal far below the start.

    The LR rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start * total_steps`` steps,
    then anneals (``cos`` or ``linear``) to ``max_lr / div_factor / final_div_factor`` at step
    ``total_steps - 1``; ``three_phase`` comes back to the initial LR first. Momentum (or Adam's beta1)
    cycles between ``max_momentum`` and ``base_momentum`` the other way. Same param group keys (``initial_lr``,
    ``max_lr``, ``min_lr``, ``max_momentum``, ``base_momentum``) and state as torch's. Differences: from step
    ``total_steps`` on the LR stays at its minimum (torch climbs back up at ``total_steps``, then raises), and
    when ``pct_start * total_steps == 1`` the warm-up has zero steps and step 0 is at the peak (torch raises
    ``ZeroDivisionError``).
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85, max_momentum: float | list[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        n = count_groups(optimizer)
        check_int("last_epoch", last_epoch, -1)
        max_lrs = per_group("max_lr", max_lr, n)
        if total_steps is not None:
            check_int("total_steps", total_steps, 1)
        elif epochs is None or steps_per_epoch is None:
            raise ValueError("total_steps=None is invalid: expected an integer >= 1, or both epochs and "
                             "steps_per_epoch")
        else:
            check_int("epochs", epochs, 1)
            check_int("steps_per_epoch", steps_per_epoch, 1)
            total_steps = epochs * steps_per_epoch
        check_range("pct_start", pct_start, 0.0, 1.0)
        check_choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)
        check_positive("div_factor", div_factor)
        check_positive("final_div_factor", final_div_factor)
        check_cycle_momentum(optimizer, cycle_momentum)
        in_unit = lambda name, value: check_range(name, value, 0.0, 1.0)  # noqa: E731
        base_ms = per_group("base_momentum", base_momentum, n, in_unit)
        max_ms = per_group("max_momentum", max_momentum, n, in_unit)
        self.total_steps, self._anneal_func_type = total_steps, anneal_strategy
        self._schedule_phases = self._phases(pct_start, total_steps, three_phase)
        self._pct_start, self._div_factor, self._final_div_factor = pct_start, div_factor, final_div_factor
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs, strict=True):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = "betas" in optimizer.defaults
            if last_epoch == -1:
                for group, low, high in zip(optimizer.param_groups, base_ms, max_ms, strict=True):
                    set_momentum(group, high)
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _phases(pct_start: float, total_steps: int, three_phase: bool) -> list[dict[str, Any]]:
        """Torch's ``_schedule_phases``: each phase's last step and the group keys it goes between."""
        lr = one_cycle_phases(total_steps, pct_start, three_phase, "initial_lr", "max_lr", "min_lr")
        m = one_cycle_phases(total_steps, pct_start, three_phase, "max_momentum", "base_momentum", "max_momentum")
        return [{"end_step": end, "start_lr": a, "end_lr": b, "start_momentum": c, "end_momentum": d}
                for (end, a, b), (_, c, d) in zip(lr, m, strict=True)]

    @staticmethod
    def _annealing_cos(start: float, end: float, pct: float) -> float:
        """Cosine from ``start`` (``pct=0``) to ``end`` (``pct=1``)."""
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    @staticmethod
    def _annealing_linear(start: float, end: float, pct: float) -> float:
        """Straight line from ``start`` (``pct=0``) to ``end`` (``pct=1``)."""
        return (end - start) * pct + start

    def _shape(self) -> dict[str, Any]:
        return {"total_steps": self.total_steps, "pct_start": self._pct_start,
                "anneal_strategy": self._anneal_func_type, "three_phase": len(self._schedule_phases) == 3}

    def _schedule(self, group: int, base: float) -> Schedule:
        peak = float(self.optimizer.param_groups[group]["max_lr"])
        return OneCycle(peak, div_factor=self._div_factor, final_div_factor=self._final_div_factor, **self._shape())

    @property
    def momentum_schedules(self) -> list[Schedule] | None:  # type: ignore[override]
        """The momentum cycle (max, down to base, back up) per group, if ``cycle_momentum``."""
        if not self.cycle_momentum:
            return None
        return [OneCycleMomentum(base_momentum=float(g["base_momentum"]), max_momentum=float(g["max_momentum"]),
                                 **self._shape()) for g in self.optimizer.param_groups]

    def torch_scales_by_ratio(self) -> bool:
        """Torch's class sets the cycle's LR: it does not scale what another scheduler wrote."""
        return False

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state (this class's or torch's, whose 1cycle shape is read from its phases and groups)."""
        state = dict(state_dict)
        legacy = state.pop("anneal_func", None)
        if legacy is not None:  # torch before 2.1 saved the function
            state["_anneal_func_type"] = "linear" if legacy is OneCycleLR._annealing_linear else "cos"
        if "_pct_start" not in state and "_schedule_phases" in state:
            group = self.optimizer.param_groups[0]
            state["_pct_start"] = (state["_schedule_phases"][0]["end_step"] + 1) / state["total_steps"]
            state["_div_factor"] = float(group["max_lr"]) / float(group["initial_lr"])
            state["_final_div_factor"] = float(group["initial_lr"]) / float(group["min_lr"])
        super().load_state_dict(state)

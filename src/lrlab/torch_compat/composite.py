"""Drop-in composites, SequentialLR and ChainedScheduler: the children's schedules composed, their plateau
controllers routed.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Sequence
from typing import Any, SupportsFloat

from torch.optim import Optimizer

from lrlab.adapter import ScheduledLR
from lrlab.controllers import Plateau
from lrlab.schedules import Constant, Join, Schedule
from lrlab.schedules.checks import check_int
from lrlab.torch_compat.base import DropIn, check_steps, count_groups, drivers_of, warn_order, write_lrs


def _absolute_schedules(child: ScheduledLR) -> list[Schedule]:
    """A child's per-group schedules as absolute LRs (a ``relative=True`` child's factors times its base LRs)."""
    if child.relative:
        return [s * float(b) for s, b in zip(child.schedules, child.base_lrs, strict=True)]
    return list(child.schedules)


class _PlateauLeaf:
    """A child's :class:`Plateau`, seen at the child's own steps with the child's own schedule."""

    def __init__(self, plateau: Plateau, child: ScheduledLR) -> None:
        self.plateau, self.child = plateau, child

    def scales_at(self, step: int) -> list[float]:
        return list(self.plateau.scales)

    def observe(self, metric: float, step: int) -> bool:
        return self.plateau.observe(metric, step, [s(step) for s in _absolute_schedules(self.child)])


class _PlateauSegments:
    """The controllers of a :class:`SequentialLR`'s children: the one whose segment holds the step is active."""

    def __init__(self, parts: list[Any], milestones: list[int], num_groups: int) -> None:
        self.parts, self.milestones, self.num_groups = parts, milestones, num_groups

    def _active(self, step: int) -> tuple[Any, int]:
        i = sum(m <= step for m in self.milestones)
        return self.parts[i], step - (self.milestones[i - 1] if i else 0)

    def scales_at(self, step: int) -> list[float]:
        part, local = self._active(step)
        return [1.0] * self.num_groups if part is None else part.scales_at(local)

    def observe(self, metric: float, step: int) -> bool:
        part, local = self._active(step)
        return False if part is None else part.observe(metric, local)


class _PlateauProduct:
    """The controllers of a :class:`ChainedScheduler`'s children: all observe, their scales multiply."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts

    def scales_at(self, step: int) -> list[float]:
        scales = self.parts[0].scales_at(step)
        for part in self.parts[1:]:
            scales = [a * b for a, b in zip(scales, part.scales_at(step), strict=True)]
        return scales

    def observe(self, metric: float, step: int) -> bool:
        return any([part.observe(metric, step) for part in self.parts])  # every part observes


def _plateaus_of(child: ScheduledLR) -> Any:
    """The child's controllers as a node (``scales_at``/``observe``), or None if it has none."""
    if isinstance(child, _ComposedLR):
        return child.plateaus
    if child.controller is not None:
        return _PlateauLeaf(child.controller, child)
    return None


def _check_children(schedulers: Sequence[ScheduledLR], optimizer: Optimizer | None) -> Optimizer:
    """Check the children of a composite; return their (common) optimizer."""
    if not isinstance(schedulers, (list, tuple)) or not schedulers:
        raise ValueError(f"schedulers={schedulers!r} is invalid: expected a non-empty list of schedulers")
    for i, child in enumerate(schedulers):
        if not isinstance(child, ScheduledLR):
            raise ValueError(f"schedulers[{i}]={type(child).__name__} is invalid: expected an lrlab scheduler "
                             "(lrlab.torch_compat or ScheduledLR); torch's own cannot be composed in closed form")
    optimizer = schedulers[0].optimizer if optimizer is None else optimizer
    count_groups(optimizer)
    for i, child in enumerate(schedulers):
        if child.optimizer is not optimizer:
            raise ValueError(f"schedulers[{i}]={type(child).__name__} is invalid: expected a scheduler of the same "
                             "optimizer as the others")
    return optimizer


class _ComposedLR(DropIn):
    """A scheduler whose LR is ``schedule(t) * plateaus.scales_at(t)``, both from its children.

    The children stop driving the optimizer themselves; the composite sets their ``last_epoch`` and
    ``get_last_lr()`` as torch's stepping would, and their ``state_dict`` is part of its own.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[ScheduledLR], plateaus: Any) -> None:
        self._schedulers, self.plateaus = list(schedulers), plateaus
        entry = drivers_of(optimizer)
        for child in schedulers:
            child._driven_by = weakref.ref(self)
        entry.refs = [r for r in entry.refs if r() not in schedulers]
        self._momentum = self._compose_momentum(optimizer)
        super().__init__(optimizer, -1)

    def _compose_momentum(self, optimizer: Optimizer) -> list[Schedule] | None:
        raise NotImplementedError

    @property
    def momentum_schedules(self) -> list[Schedule] | None:  # type: ignore[override]
        """The momentum the children schedule, composed (see the class docstring)."""
        return self._momentum

    def lr_values(self, scaled: bool = True) -> list[float]:
        """The composed schedule at ``last_epoch``, times the active controllers' scales."""
        lrs = [s(self.last_epoch) for s in self.schedules]
        if scaled and self.plateaus is not None:
            lrs = [lr * s for lr, s in zip(lrs, self.plateaus.scales_at(self.last_epoch), strict=True)]
        return lrs

    def torch_scales_by_ratio(self) -> bool:
        """As its children."""
        return all(not isinstance(c, DropIn) or c.torch_scales_by_ratio() for c in self._schedulers)

    def step(self, metrics: SupportsFloat | None = None) -> None:  # type: ignore[override]
        """Advance one step; with ``metrics``, first feed the children's controllers (see the class docstring)."""
        self._check_not_driven()
        warn_order(self)
        if metrics is not None:
            self.observe(metrics)
        self._advance(None)

    def _advance(self, epoch: Any) -> None:
        super()._advance(epoch)
        self.seek_step(self.last_epoch)

    def observe(self, metric: SupportsFloat) -> bool:
        """Feed one metric to the children's controllers; return whether one cut. The new LR applies at once."""
        if self.plateaus is None:
            raise ValueError(f"metrics were given but no child of this {type(self).__name__} has a controller "
                             "(e.g. ReduceLROnPlateau)")
        reduced = self.plateaus.observe(float(metric), max(self.last_epoch, 0))
        if reduced:
            write_lrs(self)
        return reduced

    def _state_keys(self) -> tuple[str, ...]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Torch's keys (the children's states under ``_schedulers``), plus lrlab's step counts."""
        state = {k: self.__dict__[k] for k in self._state_keys()}
        state["_schedulers"] = [child.state_dict() for child in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state (this class's or torch's); the optimizer's LRs are left alone, as in torch."""
        for child, saved in zip(self._schedulers, state_dict["_schedulers"], strict=True):
            child.load_state_dict(saved)
        for key in self._state_keys():
            if key in state_dict:
                setattr(self, key, state_dict[key])
        if "last_epoch" not in state_dict:  # torch's ChainedScheduler: the children's count
            self.last_epoch = self._schedulers[0].last_epoch


def _sequential_momentum(optimizer: Optimizer, children: Sequence[ScheduledLR],
                         milestones: list[int]) -> list[Schedule] | None:
    """Per group, the children's momentum schedules joined; a child without one holds the last value."""
    if all(c.momentum_schedules is None for c in children):
        return None
    starts, ends = [0, *milestones], [*milestones, None]
    joined = []
    for g, group in enumerate(optimizer.param_groups):
        held = float(group["betas"][0] if "betas" in group else group["momentum"])
        pieces: list[Schedule] = []
        for child, start, end in zip(children, starts, ends, strict=True):
            schedules = child.momentum_schedules
            if schedules is None:
                pieces.append(Constant(held))
                continue
            pieces.append(schedules[g])
            if end is not None and end > start:
                held = pieces[-1](end - start - 1)
        joined.append(Join(tuple(pieces), tuple(milestones)))
    return joined


class SequentialLR(_ComposedLR):
    """One child after another: child ``i`` drives the LR from ``milestones[i - 1]``, from its own step 0.

    Per group the LR is ``Join(children's schedules, milestones)``: at step ``t`` in segment ``i``,
    ``child_i(t - milestones[i - 1])``. This is what torch's SequentialLR does for closed-form children;
    the same sequence as torch for children StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR,
    PolynomialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, LambdaLR, CyclicLR, and also
    MultiplicativeLR or OneCycleLR as first child. Elsewhere torch's recursion gives other values (a
    MultiplicativeLR child continues from the previous segment's LR; OneCycleLR overwrites ``initial_lr``,
    from which torch restarts the first child); lrlab keeps each child's own curve. The children were
    constructed (and wrote the LRs): construction resets the LRs for the composite's step. Each child's
    ``last_epoch`` is its own step (``-1`` before its segment, its last step after it) and the active
    child's ``get_last_lr()`` is the composite's, as in torch.

    Momentum: if a child schedules momentum (CyclicLR, OneCycleLR with ``cycle_momentum``), it drives it in
    its segment; a segment whose child does not keeps the last value, as torch does.

    Differences from torch: ``last_epoch`` resumes at the right step (torch restarts the first child and then
    resumes the active one from its step 0); a SequentialLR or ChainedScheduler child works at any position
    (torch shifts it by one step as first child and raises ``NotImplementedError`` elsewhere); and
    ReduceLROnPlateau children are accepted (torch rejects them): in its segment the LR is the child's base
    LR times its controller's scale. ``step(metrics)`` feeds the metric to the controller of the child whose
    segment holds the current step (``last_epoch``, the step whose LR was just used), then steps; in a
    segment whose child has no controller the metric is ignored (so ``step(val_loss)`` can be called every
    epoch, warmup included). It raises ``ValueError`` if no child has a controller.
    """

    def __init__(self, optimizer: Optimizer, schedulers: list[ScheduledLR], milestones: list[int],
                 last_epoch: int = -1) -> None:
        optimizer = _check_children(schedulers, optimizer)
        milestones = check_steps("milestones", milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones={milestones!r} is invalid: expected {len(schedulers) - 1} milestones for "
                             f"{len(schedulers)} schedulers")
        if milestones != sorted(milestones):
            raise ValueError(f"milestones={milestones!r} is invalid: expected non-decreasing steps")
        check_int("last_epoch", last_epoch, -1)
        parts = [_plateaus_of(c) for c in schedulers]
        plateaus = _PlateauSegments(parts, milestones, len(optimizer.param_groups)) \
            if any(p is not None for p in parts) else None
        self._milestones, self._resume = milestones, last_epoch
        super().__init__(optimizer, schedulers, plateaus)

    def _initial_step(self) -> None:
        self.last_epoch = self.__dict__.pop("_resume")
        super()._initial_step()

    def _compose_momentum(self, optimizer: Optimizer) -> list[Schedule] | None:
        return _sequential_momentum(optimizer, self._schedulers, self._milestones)

    @property
    def schedules(self) -> list[Schedule]:  # type: ignore[override]
        """Per group, the children's absolute schedules joined at the milestones."""
        per_child = [_absolute_schedules(c) for c in self._schedulers]
        return [Join(tuple(s[g] for s in per_child), tuple(self._milestones))
                for g in range(len(self.optimizer.param_groups))]

    def seek_step(self, step: int) -> None:
        """Set the step, and each child's: its own step in its segment, clamped to ``[-1, its last step]``."""
        self.last_epoch = step
        starts, ends = [0, *self._milestones], [*self._milestones, None]
        for child, start, end in zip(self._schedulers, starts, ends, strict=True):
            local = max(step - start, -1) if end is None else max(min(step, end - 1) - start, -1)
            if local != child.last_epoch:
                child._step_count = getattr(child, "_step_count", 0) + 1
                if isinstance(child, DropIn):
                    child.seek_step(local)
                else:
                    child.last_epoch = local
            if start <= step and (end is None or step < end):
                child._last_lr = list(getattr(self, "_last_lr", []))

    def _state_keys(self) -> tuple[str, ...]:
        return ("_milestones", "last_epoch", "_last_lr", "_step_count")


class ChainedScheduler(_ComposedLR):
    """All children at once: per group, ``base_lr * prod_i(child_i(t) / child_i.base_lr)``.

    ``base_lr`` is the group's ``initial_lr``. This is what torch's ChainedScheduler computes when each child
    multiplies the LR by a ratio of its own closed form: the same sequence as torch for children StepLR,
    MultiStepLR, ExponentialLR, ConstantLR (``total_iters >= 1``), LinearLR, PolynomialLR, MultiplicativeLR,
    and CosineAnnealingLR with ``eta_min=0`` up to step ``T_max`` (after it torch adds an unscaled
    ``base_lr * (1 - cos(pi / T_max)) / 2``). For children whose torch recursion is not a ratio
    (LambdaLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR, CosineAnnealingLR with ``eta_min > 0``)
    torch's result depends on the order of the children; lrlab's is always the product of factors, and it
    warns. Momentum follows the last child that schedules it (as the last such child's ``step`` wins in
    torch). Every child's ``last_epoch`` is the composite's, and its ``get_last_lr()`` the product up to it.

    ReduceLROnPlateau children are accepted (torch rejects them): their scale multiplies the LR, and their
    ``min_lr`` bounds their own factor (``base_lr * scale >= min_lr``). ``step(metrics)`` feeds the metric to
    every child with a controller, then steps; it raises ``ValueError`` if no child has one.
    """

    def __init__(self, schedulers: Sequence[ScheduledLR], optimizer: Optimizer | None = None) -> None:
        optimizer = _check_children(schedulers, optimizer)
        for i, child in enumerate(schedulers):
            for g, base in enumerate(child.base_lrs):
                if float(base) == 0.0 and float(optimizer.param_groups[g].get("initial_lr", 0.0)) != 0.0:
                    raise ValueError(f"schedulers[{i}]={type(child).__name__} is invalid: its base LR in param "
                                     f"group {g} is 0, so its factor (value / base LR) is undefined")
        odd = [type(c).__name__ for c in schedulers if isinstance(c, DropIn) and not c.torch_scales_by_ratio()]
        if len(schedulers) > 1 and odd:
            warnings.warn(f"ChainedScheduler: torch's {', '.join(odd)} does not scale the LR by a ratio, so "
                          "torch's chained LRs depend on the order of the children; lrlab's are the product of "
                          "the children's factors", UserWarning, stacklevel=2)
        parts = [p for p in map(_plateaus_of, schedulers) if p is not None]
        super().__init__(optimizer, schedulers, _PlateauProduct(parts) if parts else None)

    def _compose_momentum(self, optimizer: Optimizer) -> list[Schedule] | None:
        with_momentum = [c.momentum_schedules for c in self._schedulers if c.momentum_schedules is not None]
        return with_momentum[-1] if with_momentum else None

    def _factors(self, upto: int) -> list[Schedule]:
        """Per group, ``base_lr`` times the factors of children ``0 .. upto``."""
        chains = []
        for g, base in enumerate(self.base_lrs):
            chain: Schedule = Constant(float(base))
            if float(base) != 0.0:
                for child in self._schedulers[:upto + 1]:
                    chain = chain * (_absolute_schedules(child)[g] * (1.0 / float(child.base_lrs[g])))
            chains.append(chain)
        return chains

    @property
    def schedules(self) -> list[Schedule]:  # type: ignore[override]
        """Per group, ``base_lr`` times every child's factor."""
        return self._factors(len(self._schedulers) - 1)

    def seek_step(self, step: int) -> None:
        """Set the step, and every child's; each child's last LR is the product of the factors up to it."""
        self.last_epoch = step
        if step < 0 or not hasattr(self, "_last_lr"):  # before its segment in a SequentialLR, or constructing
            for child in self._schedulers:
                child.last_epoch = step
            return
        # torch steps the children in turn: after child i, children 0..i are at `step`, the others one behind
        now, before = self._child_factors(step), self._child_factors(step - 1)
        for i, child in enumerate(self._schedulers):
            if child.last_epoch != step:
                child._step_count = getattr(child, "_step_count", 0) + 1
            if isinstance(child, DropIn):
                child.seek_step(step)
            else:
                child.last_epoch = step
            if i == len(self._schedulers) - 1:
                child._last_lr = list(self._last_lr)
                continue
            lrs = [float(b) for b in self.base_lrs]
            for factors in now[:i + 1] + before[i + 1:]:
                lrs = [lr * f for lr, f in zip(lrs, factors, strict=True)]
            child._last_lr = lrs

    def _child_factors(self, step: int) -> list[list[float]]:
        """Each child's factor per group at ``step`` (1 before step 0), controller scales included."""
        if step < 0:
            return [[1.0] * len(self.base_lrs) for _ in self._schedulers]
        out = []
        for child in self._schedulers:
            values = [s(step) for s in _absolute_schedules(child)]
            node = _plateaus_of(child)
            scales = node.scales_at(step) if node is not None else [1.0] * len(values)
            out.append([v * c / float(b) if float(b) else 0.0
                        for v, c, b in zip(values, scales, child.base_lrs, strict=True)])
        return out

    def _state_keys(self) -> tuple[str, ...]:
        return ("_last_lr", "last_epoch", "_step_count")

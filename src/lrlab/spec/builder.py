"""Building a spec for one run (:func:`build`): chains, products and calls to schedules and a plan."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from lrlab.schedules import Constant, Schedule, Warmup, join
from lrlab.spec.args import Args, Built, Context
from lrlab.spec.errors import LocatedError, SpecError, unknown_name
from lrlab.spec.language import REGISTRY, Call, Chain, Product, Spec, format_value
from lrlab.spec.parser import parse
from lrlab.spec.plan import ControllerSettings, Horizon, Plan


def _short(node: Spec, width: int = 40) -> str:
    text = str(node)
    return text if len(text) <= width else text[: width - 3] + "..."


def _is_controller(node: Any) -> bool:
    entry = REGISTRY.get(node.name) if isinstance(node, Call) else None
    return entry is not None and entry.controller


def build_node(node: Spec, ctx: Context) -> Built:
    """Build one node (a call, chain or product) in ``ctx``; a schedule's own builder for a call."""
    if isinstance(node, Call):
        entry = REGISTRY.get(node.name)
        if entry is None:
            raise LocatedError(node.col, unknown_name("schedule", node.name, list(REGISTRY)))
        for name, _ in node.args:
            if name not in entry.arg_names():
                raise LocatedError(node.col, unknown_name("argument", name, entry.arg_names(), f" for {node.name}"))
        return entry.builder(Args(node, entry, ctx), ctx)
    if isinstance(node, Chain):
        return _build_chain(node, ctx)
    if isinstance(node, Product):
        return _build_product(node, ctx)
    raise TypeError(f"{node!r} is not a Spec")


def as_schedule(built: Built, ctx: Context, col: int) -> Schedule:
    """The LR schedule of a built node that ends a chain (a lone warmup ramps up to ``base_lr`` and holds)."""
    if built.ramp is None:
        assert built.lr is not None
        return built.lr
    if built.ramp.steps >= ctx.span:
        raise LocatedError(col, f"warmup lasts {built.ramp.steps} steps, but only {ctx.span} steps are left for it and "
                                 f"what follows (training has {ctx.horizon.total_steps} steps)")
    return Warmup(Constant(ctx.base_lr), built.ramp.steps, built.ramp.shape, built.ramp.start)


def _build_chain(chain: Chain, ctx: Context) -> Built:
    pieces: list[Built] = []
    used = 0  # steps taken by the pieces built so far
    warmup_before = None
    last = len(chain.parts) - 1
    for i, part in enumerate(chain.parts):
        remaining = ctx.span - used
        piece_ctx = replace(ctx, span=remaining, offset=ctx.offset + used, warmup_before=warmup_before)
        built = build_node(part, piece_ctx)
        if i < last:
            if built.controller is not None:
                raise LocatedError(part.col, "a controller (plateau, greedy) can only be in the last piece of a "
                                              "'>>' chain: it runs until the end of training")
            if built.duration is None:
                raise LocatedError(part.col, f"{_short(part)} needs a length (steps=, epochs= or frac=): "
                                              "every piece before '>>' does")
            if built.duration >= remaining:
                raise LocatedError(part.col, f"{_short(part)} lasts {built.duration} steps, but only {remaining} steps "
                                              f"are left for it and the pieces after it "
                                              f"(training has {ctx.horizon.total_steps} steps)")
            used += built.duration
        else:
            built = replace(built, lr=as_schedule(built, piece_ctx, part.col),
                            duration=None if built.ramp else built.duration, ramp=None)
        pieces.append(built)
        warmup_before = built.ramp.steps if built.ramp else None
    duration = None if pieces[-1].duration is None else used + pieces[-1].duration
    momentum = join_momentum([piece.momentum for piece in pieces], [piece.duration for piece in pieces])
    return Built(_chain_lr(pieces), duration, momentum, pieces[-1].controller)


def _chain_lr(pieces: list[Built]) -> Schedule:
    """The pieces' LR schedules as one flat :class:`~lrlab.schedules.Join` (never nested, so a chain of any
    length is evaluated without recursion). A warmup ramps up to the start of the piece after it."""
    schedules: list[Schedule] = []
    for piece in reversed(pieces):
        if piece.ramp is None:
            assert piece.lr is not None
            schedules.append(piece.lr)
            continue
        following = schedules[-1]
        if isinstance(following, Warmup):  # a warmup into a warmup: ramp to its (fixed) start, not through it
            following = Constant(following(0))
        schedules.append(Warmup(following, piece.ramp.steps, piece.ramp.shape, piece.ramp.start))
    schedules.reverse()
    boundaries = list(itertools.accumulate(piece.duration or 0 for piece in pieces[:-1]))
    return join(schedules, boundaries)


def join_momentum(schedules: Sequence[Schedule | None], lengths: Sequence[int | None]) -> Schedule | None:
    """Consecutive pieces' momentum schedules as one schedule; None when no piece has one.

    Piece ``i`` runs ``lengths[i]`` steps (the last may be None: the rest of the run), from its own step 0.
    A piece without a schedule (None) holds the value at the end of the nearest scheduled piece before it
    (``schedule(length)``, the step after its last), or without one before it, the start of the first
    scheduled piece (``schedule(0)``). This is the hold rule of ``a >> b`` in a spec.

    >>> from lrlab.schedules import Anneal
    >>> momentum = join_momentum([None, Anneal(0.95, 0.85, 10), None], [5, 10, None])
    >>> [round(momentum(t), 3) for t in (0, 4, 5, 10, 14, 15, 100)]
    [0.95, 0.95, 0.95, 0.9, 0.86, 0.85, 0.85]
    """
    scheduled = [s for s in schedules if s is not None]
    if not scheduled:
        return None
    held = scheduled[0](0)
    pieces: list[Schedule] = []
    boundaries: list[int] = []
    at = 0
    for i, (schedule, length) in enumerate(zip(schedules, lengths, strict=True)):
        if i:
            boundaries.append(at)
        if schedule is None:
            pieces.append(Constant(held))
        else:
            pieces.append(schedule)
            if length is not None:
                held = schedule(length)
        at += length or 0
    return join(pieces, boundaries)


def _build_product(product: Product, ctx: Context) -> Built:
    lead = next((i for i, f in enumerate(product.factors) if isinstance(f, Spec) and not _is_controller(f)), None)
    schedules: list[Schedule] = []
    factor = 1.0
    momentum: Schedule | None = None
    controller: ControllerSettings | None = None
    durations: list[int] = []
    for i, node in enumerate(product.factors):
        col = product.factor_col(i)
        if not isinstance(node, Spec):
            if not (math.isfinite(node) and node >= 0):
                raise LocatedError(col, f"{format_value(node)} is invalid as a factor: expected a finite number >= 0")
            factor *= node
            continue
        built = build_node(node, ctx if i == lead else replace(ctx, base_lr=1.0))
        if built.ramp is not None:
            raise LocatedError(col, "warmup(...) cannot be multiplied: it ramps into the piece after it, "
                                     "as in warmup(steps=100) >> cosine()")
        if built.momentum is not None:
            if momentum is not None:
                raise LocatedError(col, "only one factor of a product may schedule momentum")
            momentum = built.momentum
        if built.controller is not None:
            if controller is not None:
                raise LocatedError(col, "only one controller (plateau or greedy) is allowed in a spec")
            controller = built.controller
        if built.duration is not None:
            durations.append(built.duration)
        if not built.neutral:
            assert built.lr is not None
            schedules.append(built.lr)
    lr = schedules[0] if schedules else Constant(ctx.base_lr)
    for schedule in schedules[1:]:
        lr = lr * schedule
    if factor != 1.0:
        lr = lr * factor
    return Built(lr, max(durations) if durations else None, momentum, controller)


def build(spec: Spec | str, horizon: Horizon, *, load_functions: bool = True) -> Plan:
    """Build a spec for one run: resolve its durations against ``horizon`` and make its schedules.

    Args:
        spec: a spec string or a parsed :class:`Spec`.
        horizon: the run's length (steps, steps per epoch), the optimizer's LR and Adam's beta2.
        load_functions: import the module of each ``fn(path=module:function)``. False for a spec read from
            stored results, which is data and must never run code: the path is only checked for its form,
            and the plan's LR raises :class:`ConfigError` at the steps where that function would be called.

    Returns:
        a :class:`Plan` with absolute LR values. Raises :class:`SpecError` (a :class:`ConfigError`) for any
        mistake: unknown names, bad values, durations that do not fit the run.

    Example: ``build("cosine(min_lr=0.01)", Horizon(100, base_lr=0.1)).lr(0) == 0.1``.
    """
    if not isinstance(horizon, Horizon):
        raise TypeError(f"horizon={horizon!r} is invalid: expected a Horizon")
    text = spec if isinstance(spec, str) else str(spec)
    node = parse(text)  # a Spec given directly is re-read from its text, so errors can point at a column
    ctx = Context(horizon, horizon.total_steps, horizon.base_lr, load_functions=load_functions)
    try:
        built = build_node(node, ctx)
        lr = as_schedule(built, ctx, node.col)
    except LocatedError as problem:
        raise SpecError(text, problem.column, problem.reason) from None
    return Plan(lr, built.momentum, built.controller, node, horizon)


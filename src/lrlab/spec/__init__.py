"""Schedule specs: one textual form for every schedule, the same in the CLI, YAML configs and Python.

A spec is a small expression over the schedules of a registry (``lrlab schedules`` lists them)::

    constant()
    step(every_epochs=10, gamma=0.1)
    warmup(steps=500) >> cosine(min_lr=1e-5)
    onecycle(max_lr=0.1, pct_start=0.3)
    cosine(epochs=30) * plateau(patience=3)
    warmup(steps=500) >> cosine() * greedy(patience=5, factor=0.9)
    warmup(frac=0.05, shape=cosine) >> plateau(patience=3, factor=0.5)
    wsd(decay_frac=0.2, shape=1-sqrt)
    sgdr(period_epochs=5, mult=2, decay=0.8)
    clamp(exponential(gamma=0.99), min=1e-4)
    constant() * 0.5

Grammar (spaces between tokens are ignored)::

    spec    := chain
    chain   := product ( ">>" product )*        one piece after another
    product := atom ( "*" atom )*              binds tighter than ">>"
    atom    := call | NAME | number | "(" chain ")"   a bare NAME is the call without arguments
    call    := NAME "(" [ arg ( "," arg )* [","] ] ")"
    arg     := NAME "=" value | value          positional only where a schedule takes it (clamp's schedule)
    value   := chain | number | bool | word | string | list
    list    := "[" [ value ( "," value )* [","] ] "]"
    number  := 30 | -2 | 0.5 | 1e-5 | inf      an int stays an int, a float a float
    bool    := true | false
    word    := a run of letters, digits and _ . : + -   (cosine, 1-sqrt, auto, none, pkg.mod:fn)
    string  := "..." or '...'                   a backslash takes the next character literally

What it means:

- ``name(...)`` is a schedule; a parameter not given takes its default. A bare ``name`` where a schedule
  belongs is ``name()``: ``warmup(steps=5) >> cosine`` reads as ``warmup(steps=5) >> cosine()`` (inside a
  call's arguments, a word is a value: ``warmup(shape=cosine)``). LR parameters (``lr``, ``init_lr``,
  ``max_lr``, ``peak_lr``, ``start_lr``) default to the optimizer's LR (``Horizon.base_lr``), so
  ``cosine(min_lr=1e-5)`` decays from the optimizer's LR to 1e-5 over the rest of training.
- ``a >> b >> c``: a, then b, then c. Time is re-based at each boundary (b sees its own step 0). Every piece
  but the last needs a length (``steps=``, ``epochs=`` or ``frac=``); the last takes the rest of training
  (a last piece given a longer length is cut at the end of training). ``warmup(...) >> x`` ramps up to
  x's starting value, then runs x from its step 0. A ``warmup(...)`` with nothing after it ramps up to the
  optimizer's LR and holds it.
- ``a * b``: ``a * 0.5`` scales; ``a * plateau(...)`` adds a ReduceLROnPlateau controller and
  ``a * greedy(...)`` a GreedyLR one (at most one controller per spec, in the last piece of a chain; it
  listens from the start of its piece, so after a warmup before it); ``a * b`` with b a schedule multiplies
  by b as an envelope: only the first schedule of a product gives an LR, the LR parameters of the others
  default to 1
  (``cosine() * exponential(gamma=0.999)`` is a cosine with an exponential envelope).
- Durations: ``<name>_steps``, ``<name>_epochs`` or ``<name>_frac`` (one of them), e.g. ``every_epochs``,
  ``period_frac``, ``decay_steps``, ``milestones_epochs=[10, 20]``; a piece's own length is plain
  ``steps``, ``epochs`` or ``frac``. Epochs need the run's steps per epoch; fractions are of the whole
  run. They are resolved to whole steps (rounded to the nearest) once, by :func:`build`.

``str(spec)`` is canonical: arguments in the registry's order as ``name=value`` (clamp's schedule first,
without its name), `` >> `` and `` * `` between pieces, floats written as ``repr`` writes them, so
``parse(str(spec)) == spec`` and every number comes back exactly.

>>> spec = parse("warmup(steps=100)>>cosine(min_lr=1e-5)")
>>> str(spec)
'warmup(steps=100) >> cosine(min_lr=1e-05)'
>>> plan = build(spec, Horizon(total_steps=1000, base_lr=0.1))
>>> [round(plan.lr(t), 6) for t in (0, 50, 100, 550, 999)]
[0.0, 0.05, 0.1, 0.050005, 1e-05]
>>> build("warmup(epochs=1) >> plateau(patience=3)", Horizon(300, steps_per_epoch=30)).new_controller().start_step
30

The package, from the bottom up: :mod:`~lrlab.spec.errors` (:class:`SpecError`), :mod:`~lrlab.spec.language`
(the :class:`Spec` values, their canonical text, the :data:`REGISTRY` of schedules and their :class:`Param`),
:mod:`~lrlab.spec.parser` (:func:`parse`), :mod:`~lrlab.spec.plan` (:class:`Horizon`, :class:`Plan`),
:mod:`~lrlab.spec.args` (what a schedule's builder works with), :mod:`~lrlab.spec.builder` (:func:`build`)
and :mod:`~lrlab.spec.builtins` (the schedules ``lrlab schedules`` lists). A module imports only those
before it (type hints aside); none imports torch (``ScheduledLR.from_plan(optimizer, plan)`` drives an
optimizer with a plan).
"""

from __future__ import annotations

from lrlab.spec import builtins as _builtins  # noqa: F401  (registers the built-in schedules)
from lrlab.spec.args import Args
from lrlab.spec.builder import build, join_momentum
from lrlab.spec.errors import SpecError
from lrlab.spec.language import (
    BASE_LR,
    REGISTRY,
    REQUIRED,
    UNITS,
    Call,
    Chain,
    Entry,
    Param,
    Product,
    Spec,
    format_value,
    register,
)
from lrlab.spec.parser import parse
from lrlab.spec.plan import ControllerSettings, GreedySettings, Horizon, Plan, PlateauSettings

__all__ = [
    "BASE_LR",
    "REGISTRY",
    "REQUIRED",
    "UNITS",
    "Args",
    "Call",
    "Chain",
    "ControllerSettings",
    "Entry",
    "GreedySettings",
    "Horizon",
    "Param",
    "Plan",
    "PlateauSettings",
    "Product",
    "Spec",
    "SpecError",
    "build",
    "format_value",
    "join_momentum",
    "parse",
    "register",
]

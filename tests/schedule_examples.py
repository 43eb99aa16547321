"""One or more instances of every schedule and combinator, shared by the parametrised tests."""

from __future__ import annotations

import math

from lrlab.schedules import (
    Anneal,
    Constant,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    Function,
    InverseSqrt,
    Multiplicative,
    MultiStep,
    OneCycle,
    OneCycleMomentum,
    Polynomial,
    Schedule,
    Step,
    Tanh,
    clamp,
    join,
    product,
    scale,
    shift,
    warmup,
    warmup_cosine,
    wsd,
)


def half_life_100(step: int) -> float:
    """A module-level (so picklable) user function: halves every 100 steps."""
    return 0.5 ** (step / 100)


def shrink_1pct(step: int) -> float:
    """A module-level multiplicative factor."""
    return 0.99


EXAMPLES: dict[str, Schedule] = {
    "constant": Constant(0.1),
    "step": Step(0.1, step_size=30, gamma=0.5),
    "multistep": MultiStep(0.1, (50, 50, 120), 0.1),
    "exponential": Exponential(0.1, 0.995),
    "linear": Anneal(0.1, 0.001, 200, "linear"),
    "anneal-cosine": Anneal(0.0, 0.1, 50, "cosine"),
    "anneal-exponential": Anneal(1e-4, 0.1, 50, "exponential"),
    "anneal-1-sqrt": Anneal(0.1, 0.0, 80, "1-sqrt"),
    "polynomial": Polynomial(0.1, 0.01, 300, 2.0),
    "polynomial-k-fractional": Polynomial(0.1, 0.01, 250.5, 2.0, k=1.7),
    "anneal-rev-1-sqrt": Anneal(0.0, 0.1, 40.5, "rev-1-sqrt"),
    "anneal-power": Anneal(0.1, 0.001, 80, "power", power=2.0),
    "anneal-exp-ratio": Anneal(0.1, 0.0, 80, "exp-ratio", ratio=0.05),
    "cosine-k-exponent": Cosine(0.1, 1e-4, 300, k=2.0, exponent=1.5),
    "cosine-fractional-wave": Cosine(0.1, 0.0, 33.3, cyclic=True),
    "sgdr-fractional-period-k": CosineRestarts(0.1, 1e-4, 17.5, 1.5, k=0.8),
    "shift": shift(Cosine(0.1, 0.0, 300), 40),
    "cosine": Cosine(0.1, 1e-4, 300),
    "cosine-cyclic": Cosine(0.1, 0.0, 70, cyclic=True),
    "sgdr": CosineRestarts(0.1, 1e-4, 20, 2.0),
    "sgdr-fractional": CosineRestarts(0.1, 0.0, 15, 1.5, decay=0.7, max_cycles=4),
    "cyclic-triangular": Cyclic(0.01, 0.1, 25, 15),
    "cyclic-triangular2": Cyclic(0.01, 0.1, 20, mode="triangular2"),
    "cyclic-exp_range": Cyclic(0.01, 0.1, 20, mode="exp_range", gamma=0.999),
    "onecycle": OneCycle(0.1, 300),
    "onecycle-three-phase-linear": OneCycle(0.1, 300, 0.25, "linear", three_phase=True),
    "onecycle-momentum": OneCycleMomentum(300),
    "inverse_sqrt": InverseSqrt(0.1, 40),
    "tanh": Tanh(0.1, 1e-3, 300),
    "function": Function(half_life_100, 0.1),
    "multiplicative": Multiplicative(shrink_1pct, 0.1),
    "join": join([Constant(0.1), Cosine(0.1, 0.0, 100)], [50]),
    "warmup-linear": warmup(Cosine(0.1, 0.0, 250), 50),
    "warmup-cosine-shape": warmup(Exponential(0.1, 0.99), 40, "cosine", 0.1),
    "warmup-exponential-shape": warmup(Constant(0.1), 30, "exponential", 0.01),
    "product": product(Cosine(1.0, 0.0, 300), Step(0.1, 100, 0.5)),
    "scale": scale(OneCycle(1.0, 300), 0.1),
    "clamp": clamp(Exponential(0.1, 0.98), 1e-3, 0.05),
    "warmup_cosine": warmup_cosine(0.1, 300, 30, 1e-5),
    "wsd-1-sqrt": wsd(0.1, 300, 60, warmup_steps=20),
    "wsd-linear": wsd(0.1, 300, 60, decay_shape="linear"),
    "wsd-cosine": wsd(0.1, 300, 60, warmup_steps=10, decay_shape="cosine", min_lr=1e-4),
}

HORIZON = 400  # steps the shared tests look at


def curve(schedule: Schedule, steps: int = HORIZON) -> list[float]:
    """The schedule's values at steps 0..steps-1."""
    return [schedule(t) for t in range(steps)]


def close(a: float, b: float, rel: float = 1e-12) -> bool:
    """Equal to a relative tolerance, with an absolute floor for values near 0."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-15)

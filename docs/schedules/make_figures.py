"""Draw every schedule page's figure (docs/schedules/<page>.png) with lrlab's own code: specs built by
:func:`lrlab.build`, drawn by :func:`lrlab.plotting.draw_curves`.

    python docs/schedules/make_figures.py            # all pages
    python docs/schedules/make_figures.py cosine     # one

Every page shows the same horizon, 30 epochs of 40 optimizer updates at peak LR 0.1, unless it says otherwise.
``tests/test_docs.py`` checks that the pages name exactly the figures listed here.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
EPOCHS, PER_EPOCH, LR = 30, 40, 0.1

# page -> the specs its figure draws (each labelled with its text), over EPOCHS x PER_EPOCH updates at peak LR
FIGURES: dict[str, list[str]] = {
    "constant": ["constant()", "constant(lr=0.05)"],
    "step": ["step(every_epochs=10, gamma=0.1)", "step(every_epochs=5, gamma=0.5)"],
    "multistep": ["multistep()", "multistep(milestones_epochs=[10, 25], gamma=0.3)"],
    "exponential": ["exponential(gamma=0.999)", "exponential(gamma=0.996)"],
    "linear": ["linear()", "linear(end_lr=0.01)"],
    "polynomial": ["polynomial(power=1)", "polynomial(power=2)", "polynomial(power=0.5)"],
    "cosine": ["cosine()", "cosine(min_lr=0.01)"],
    "sgdr": ["sgdr(period_epochs=5, mult=2)", "sgdr(period_epochs=10, decay=0.5)"],
    "cyclic": ["cyclic(up_epochs=3)", "cyclic(up_epochs=3, mode=triangular2)"],
    "onecycle": ["onecycle()", "onecycle(pct_start=0.1, anneal_strategy=linear)"],
    "inverse-sqrt": ["warmup(epochs=2) >> inverse_sqrt()"],
    "wsd": ["warmup(epochs=2) >> wsd(decay_frac=0.2)", "warmup(epochs=2) >> wsd(decay_frac=0.2, shape=linear)"],
    "tanh": ["tanh()", "tanh(lower=-3, upper=3)"],
    "warmup": ["warmup(epochs=3) >> cosine()", "warmup(epochs=3) >> constant()",
               "warmup(epochs=3, shape=cosine) >> step(every_epochs=10, gamma=0.3)"],
    "composing": ["cosine() * 0.5", "clamp(exponential(gamma=0.99), min=0.01)",
                  "cut(cosine(epochs=20), epochs=10) >> constant(lr=0.02)"],
    # ReduceLROnPlateau cuts when a metric stalls: drawn for a made-up validation loss (plateau_lrs)
    "plateau": ["plateau(patience=2, factor=0.5)", "warmup(epochs=2) >> plateau(patience=2, factor=0.5)"],
    # GreedyLR raises the LR while the metric improves, lowers it when it stalls: the same made-up loss
    "greedy": ["constant() * greedy(patience=2, factor=0.7, min_lr=0.01, max_lr=0.5)",
               "warmup(epochs=2) >> constant() * greedy(patience=2, factor=0.7, min_lr=0.01, max_lr=0.5)"],
}


def validation_loss(epoch: int) -> float:
    """A made-up validation loss for the controllers' figures: falls for 8 epochs, then stalls with small bumps."""
    return 1.0 / (1 + min(epoch, 8)) + 0.01 * (epoch % 3)


def plateau_lrs(spec: str) -> list[float]:
    """The LR at every step of ``spec`` when its controller (plateau, greedy) sees :func:`validation_loss` once per
    epoch."""
    from lrlab import build
    from lrlab.spec import Horizon

    plan = build(spec, Horizon(total_steps=EPOCHS * PER_EPOCH, steps_per_epoch=PER_EPOCH, base_lr=LR))
    controller = plan.new_controller()
    controller.bind(1)
    lrs = []
    for step in range(EPOCHS * PER_EPOCH):
        lrs.append(plan.lr(step) * controller.scales[0])
        if (step + 1) % PER_EPOCH == 0:  # the end of an epoch: validate, then the controller may cut
            controller.observe(validation_loss((step + 1) // PER_EPOCH), step + 1, [plan.lr(step + 1)])
    return lrs


def draw(page: str) -> Path:
    """Draw one page's figure to docs/schedules/<page>.png."""
    from lrlab import build
    from lrlab.plotting import Curve, draw_curves
    from lrlab.spec import Horizon

    horizon = Horizon(total_steps=EPOCHS * PER_EPOCH, steps_per_epoch=PER_EPOCH, base_lr=LR)
    if page in ("plateau", "greedy"):
        curves = [Curve(spec, plateau_lrs(spec)) for spec in FIGURES[page]]
    else:
        plans = {spec: build(spec, horizon) for spec in FIGURES[page]}
        curves = [Curve(spec, plan.lr_values(), plan.momentum_values()) for spec, plan in plans.items()]
    return draw_curves(curves, HERE / f"{page}.png", steps_per_epoch=PER_EPOCH,
                       title=f"{page}: {EPOCHS} epochs of {PER_EPOCH} updates, peak LR {LR}")


if __name__ == "__main__":
    for name in sys.argv[1:] or FIGURES:
        print(f"wrote {draw(name)}")

"""The Plateau controller on its own: torch's rules, the sign-safe threshold, validation and state."""

from __future__ import annotations

import math

import pytest

from lrlab.controllers import Greedy, Plateau


def feed(controller: Plateau, metrics: list[float], lr: float = 1.0) -> list[float]:
    """Observe each metric in turn; return the controller's scale after each."""
    scales = []
    for t, m in enumerate(metrics):
        controller.observe(m, t, [lr])
        scales.append(controller.scales[0])
    return scales


def test_patience_then_cut_then_cooldown():
    c = Plateau(patience=2, factor=0.5, cooldown=1)
    scales = feed(c, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # best at obs 0; bad at 1, 2, 3 -> cut at 3; cooldown swallows 4; bad 5, 6 -> not yet
    assert scales == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]


def test_torch_relative_threshold_accepts_a_worse_negative_metric():
    """torch's rule: best * (1 - threshold) is *above* a negative best, so a worse value counts as better."""
    torch_rule = Plateau(patience=0, threshold=0.1)
    torch_rule.observe(-10.0, 0, [1.0])
    assert torch_rule.is_better(-9.5, torch_rule.best)  # -9.5 is worse than -10, yet "better"


def test_sign_safe_threshold_is_relative_to_the_magnitude():
    c = Plateau(patience=0, threshold=0.1, sign_safe=True)
    c.observe(-10.0, 0, [1.0])
    assert not c.is_better(-9.5, c.best)
    assert not c.is_better(-10.5, c.best)  # better, but by less than 10% of |best|
    assert c.is_better(-11.5, c.best)
    up = Plateau(mode="max", patience=0, threshold=0.1, sign_safe=True)
    up.observe(-10.0, 0, [1.0])
    assert up.is_better(-8.5, up.best)
    assert not up.is_better(-9.5, up.best)


def test_sign_safe_cuts_on_a_stalled_negative_metric():
    torch_rule = feed(Plateau(patience=1, threshold=0.01), [-1.0, -0.999, -0.998, -0.997])
    sign_safe = feed(Plateau(patience=1, threshold=0.01, sign_safe=True), [-1.0, -0.999, -0.998, -0.997])
    assert torch_rule[-1] == 1.0  # every slightly worse value was taken as a new best: never cuts
    assert sign_safe[-1] == pytest.approx(0.1)


def test_state_round_trip():
    c = Plateau(patience=1)
    feed(c, [3.0, 2.0, 2.5, 2.5])
    d = Plateau(patience=1)
    d.load_state_dict(c.state_dict())
    assert d.state_dict() == c.state_dict()
    assert math.isfinite(d.best)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"mode": "minimum"}, "mode='minimum'"), ({"factor": 1.0}, "factor=1.0"), ({"patience": -1}, "patience=-1"),
     ({"threshold_mode": "pct"}, "threshold_mode='pct'"), ({"min_lr": -0.1}, "min_lr=-0.1"),
     ({"cooldown": 1.5}, "cooldown=1.5")],
)
def test_invalid_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field.replace("(", r"\(")):
        Plateau(**kwargs)


def test_per_group_min_lr_must_match_groups():
    c = Plateau(min_lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="expected 3 values"):
        c.bind(3)


def test_greedy_raises_the_lr_after_sustained_improvement_and_caps_it_at_max_lr():
    greedy = Greedy(factor=0.5, patience=1, max_lr=0.3, min_lr=0.01)
    greedy.bind(1)
    changes = [greedy.observe(metric, step, [0.1]) for step, metric in enumerate([5.0, 4.0, 3.0, 2.0, 1.0])]
    assert changes == [False, True, False, True, False]  # 2 improvements in a row (> patience) raise it
    assert math.isclose(0.1 * greedy.scales[0], 0.3)  # 0.1 / 0.5 = 0.2, then 0.4 capped at max_lr


def test_greedy_lowers_the_lr_on_a_plateau_to_min_lr_and_skips_cooldown_observations():
    greedy = Greedy(factor=0.5, patience=1, cooldown=1, min_lr=0.04, max_lr=1.0)
    greedy.bind(1)
    for step, metric in enumerate([1.0, 1.0, 1.0]):  # best, then 2 bad (> patience): 0.1 -> 0.05
        greedy.observe(metric, step, [0.1])
    assert math.isclose(0.1 * greedy.scales[0], 0.05)
    assert greedy.observe(1.0, 3, [0.1]) is False  # the cooldown observation counts for nothing
    greedy.observe(1.0, 4, [0.1])
    greedy.observe(1.0, 5, [0.1])
    assert math.isclose(0.1 * greedy.scales[0], 0.04)  # 0.025 floored at min_lr
    with pytest.raises(ValueError, match="factor"):
        Greedy(factor=1.0)

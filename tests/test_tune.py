"""LR tuning's arithmetic: the lattice grid, the pick with diverged seeds as failures, the good region, widening."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrlab.tune import (
    GridPoint,
    halving_rungs,
    lr_grid,
    rank_key,
    refine_lrs,
    survivor_count,
    survivors,
    tune_result,
    widen,
    within_noise,
)

NAN = math.nan


@given(st.floats(1e-6, 10.0), st.floats(1.0, 1000.0), st.integers(1, 6))
def test_the_grid_covers_the_bracket_on_a_shared_lattice(low: float, factor: float, per_decade: int) -> None:
    high = low * factor
    grid = lr_grid(low, high, per_decade)
    assert grid == sorted(set(grid))
    assert grid[0] <= low * 1.001 and grid[-1] >= high / 1.001  # 3 significant digits of rounding
    assert len(grid) <= math.log10(factor) * per_decade + 3
    ratios = [b / a for a, b in itertools.pairwise(grid)]
    assert all(abs(math.log10(r) * per_decade - 1) < 0.01 for r in ratios)
    # a sub-bracket asks for the same LRs: widened or resumed grids reuse stored runs
    inner = lr_grid(grid[1], grid[-2], per_decade) if len(grid) > 2 else []
    assert set(inner) <= set(grid)


@pytest.mark.parametrize(("low", "high", "per_decade"), [(0, 1, 4), (1, 0.5, 4), (0.1, math.inf, 4), (0.1, 1, 0)])
def test_a_bad_bracket_is_refused(low: float, high: float, per_decade: int) -> None:
    with pytest.raises(ValueError, match="is invalid"):
        lr_grid(low, high, per_decade)


def test_a_mostly_diverged_point_never_ranks_first() -> None:
    survivor = GridPoint(1.0, (0.1, NAN, NAN, NAN, NAN))  # 4 of 5 diverged; the survivor looks great
    steady = GridPoint(0.1, (0.5, 0.52, 0.51, 0.49, 0.5))
    result = tune_result([survivor, steady])
    assert result.peak_lr == 0.1 and result.good_region == (0.1, 0.1)
    assert rank_key(survivor) > rank_key(steady)


def test_the_pick_is_the_best_mean_and_the_good_region_its_noise() -> None:
    points = [GridPoint(0.01, (0.9, 0.92, 0.91)), GridPoint(0.0178, (0.62, 0.70, 0.55)),
              GridPoint(0.0316, (0.6, 0.61, 0.59)), GridPoint(0.0562, (0.61, 0.64, 0.60)),
              GridPoint(0.1, (0.8, 0.81, math.inf))]
    result = tune_result(points)
    assert result.peak_lr == 0.0316
    assert result.good_region == (0.0178, 0.0562)
    assert result.line() == "peak LR: 0.0316 (good region 0.0178 – 0.0562)"
    table = result.to_dict()
    assert table["peak_lr"] == 0.0316 and table["good_region"] == [0.0178, 0.0562]
    assert [row["diverged"] for row in table["points"]] == [0, 0, 0, 0, 1]
    assert table["points"][-1]["val_loss"] == [0.8, 0.81, None]  # JSON has no inf


def test_within_noise_needs_no_more_failures_and_a_close_mean() -> None:
    best = GridPoint(0.1, (0.50, 0.51, 0.49))
    assert within_noise(GridPoint(0.2, (0.505, 0.50, 0.52)), best)
    assert not within_noise(GridPoint(0.2, (0.505, 0.50, NAN)), best)
    assert not within_noise(GridPoint(0.2, (0.70, 0.71, 0.69)), best)


def test_widening_goes_past_the_edge_the_pick_sits_on() -> None:
    low_best = {0.01: GridPoint(0.01, (0.5,)), 0.0178: GridPoint(0.0178, (0.6,))}
    assert widen(low_best) == [0.001, 0.00178, 0.00316, 0.00562]
    high_best = {0.01: GridPoint(0.01, (0.6,)), 0.0178: GridPoint(0.0178, (0.5,))}
    assert widen(high_best) == [0.0316, 0.0562, 0.1, 0.178]
    inside = {**high_best, 0.0316: GridPoint(0.0316, (0.7,))}
    assert widen(inside) == []
    assert widen({1e-7: GridPoint(1e-7, (0.5,)), 1e-6: GridPoint(1e-6, (0.6,))}) == []  # at the bound


def test_refining_adds_the_half_spacing_lrs_beside_the_pick() -> None:
    grid = {lr: GridPoint(lr, (loss,)) for lr, loss in [(0.01, 2.0), (0.0178, 1.0), (0.0316, 1.5)]}
    assert refine_lrs(grid, per_decade=4) == [0.0133, 0.0237]
    assert refine_lrs({**grid, 0.0237: GridPoint(0.0237, (1.2,))}, per_decade=4) == [0.0133]
    edge = {lr: GridPoint(lr, (loss,)) for lr, loss in [(0.01, 1.0), (0.1, 2.0)]}
    assert refine_lrs(edge, per_decade=1) == [0.00316, 0.0316]


@given(st.integers(10, 100_000), st.floats(0, 0.9))
def test_rungs_come_after_the_lrs_peak_and_before_the_end(total: int, peak_share: float) -> None:
    peak = int(total * peak_share)
    rungs = halving_rungs(total, peak)
    assert rungs == sorted(set(rungs)) and all(peak < r < total for r in rungs)


def test_a_rung_keeps_the_best_third_and_never_a_mostly_diverged_point() -> None:
    points = [GridPoint(0.1 * i, (float(i), float(i))) for i in range(1, 10)]
    points[8] = GridPoint(0.9, (0.01, math.inf))  # best mean of its survivor, one seed diverged
    assert survivors(points) == pytest.approx([0.1, 0.2, 0.3])
    assert survivor_count(3) == 3 and survivor_count(12) == 4

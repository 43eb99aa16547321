"""The LR range test: exact restoration, divergence stop, per-group ratios, validation mode, suggestions."""

from __future__ import annotations

import copy
import dataclasses
import doctest
import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import lrlab.finder.curves
from lrlab.batched import MIN_MEMBERS
from lrlab.finder import (
    METHODS,
    FinderResult,
    LRCurve,
    combine_suggestions,
    curve_band,
    describe,
    ema,
    find_lr,
    find_lr_for_task,
    minimum_div_10,
    plot_finder,
    steepest,
    valley,
)
from lrlab.tasks import OptimizerDefaults, load_task

# ---- helpers -------------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is fastest, and spares a busy machine's other cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def regression_batches(n_batches: int = 8, batch: int = 16, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_batches * batch, 8, generator=g)
    y = (x @ torch.randn(8, 1, generator=g)).squeeze(-1).long().clamp(0, 3)
    return list(zip(x.split(batch), y.split(batch), strict=True))


def small_net() -> nn.Module:
    """BatchNorm (buffers) and dropout (draws from torch's RNG) so restoration has something to get wrong."""
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 4))


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "buffers": [b.clone() for b in model.buffers()],
        "modes": [m.training for m in model.modules()],
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
        "numpy_rng": np.random.get_state(),
    }


def same(a: Any, b: Any) -> bool:
    """Bitwise equality through dicts, lists, tuples and tensors (NumPy arrays too)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def synthetic(log10_lrs: np.ndarray, loss: np.ndarray) -> LRCurve:
    """A curve whose smoothed loss is exactly ``loss`` (the suggestions read only ``smoothed``)."""
    values = tuple(float(v) for v in loss)
    return LRCurve(tuple(float(v) for v in 10.0 ** log10_lrs), values, values, smooth=0.0)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


# ---- restoration ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer_name", ["sgd", "adamw"])
def test_model_optimizer_and_rng_are_restored_bit_for_bit(optimizer_name: str) -> None:
    torch.manual_seed(0)
    model = small_net()
    groups = [{"params": model[0].parameters()}, {"params": model[4].parameters(), "lr": 0.003}]
    optimizer = (torch.optim.SGD(groups, lr=0.01, momentum=0.9) if optimizer_name == "sgd"
                 else torch.optim.AdamW(groups, lr=0.01))
    batches = regression_batches()
    for x, y in batches[:3]:  # some optimizer state (momentum / Adam moments) and gradients to restore
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model[4].eval()  # a mode to restore; BatchNorm and dropout stay in training mode (buffers, RNG draws)
    before = snapshot(model, optimizer)
    during = {}

    def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        random.random(), np.random.rand()  # a user's data pipeline may draw from these too
        during.update(snapshot(model, optimizer))
        return nn.functional.cross_entropy(output, target)

    curve = find_lr(model, optimizer, batches, loss_fn, min_lr=1e-4, max_lr=10, num_steps=30)

    assert len(curve.lrs) > 5
    assert not any(same(before[k], during[k]) for k in ("params", "buffers", "optimizer", "torch_rng",
                                                         "python_rng", "numpy_rng"))  # the sweep changed them
    after = snapshot(model, optimizer)
    for key in before:
        assert same(before[key], after[key]), key
    assert optimizer.param_groups[1]["lr"] == 0.003


def test_restored_even_when_the_loss_raises() -> None:
    torch.manual_seed(0)
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    before = snapshot(model, optimizer)
    calls = []

    def failing(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(output, target)

    with pytest.raises(RuntimeError, match="boom"):
        find_lr(model, optimizer, regression_batches(), failing, num_steps=20)
    after = snapshot(model, optimizer)
    assert all(same(before[k], after[k]) for k in before)


# ---- the sweep --------------------------------------------------------------------------------------------------

def scalar_problem(w0: float = 1.0) -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """loss = w^2 (one weight, input 1, target 0): SGD at lr gives w <- w (1 - 2 lr), so each loss is known."""
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(w0)
    return model, [(torch.ones(1, 1), torch.zeros(1, 1))]


def test_each_point_is_the_loss_after_the_update_at_its_lr() -> None:
    model, batches = scalar_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    curve = find_lr(model, optimizer, batches, nn.functional.mse_loss, min_lr=1e-3, max_lr=0.1, num_steps=10,
                    smooth=0.0)
    w, expected = 1.0, []
    for k in range(10):
        lr = 1e-3 * 100 ** (k / 9)
        w *= 1 - 2 * lr
        expected.append(w * w)
    assert curve.lrs == pytest.approx([1e-3 * 100 ** (k / 9) for k in range(10)], rel=1e-12)
    assert curve.losses == pytest.approx(expected, rel=1e-5)
    assert curve.smoothed == curve.losses and not curve.stopped_early


def test_linear_mode_spaces_the_lrs_evenly() -> None:
    model, batches = scalar_problem()
    curve = find_lr(model, torch.optim.SGD(model.parameters(), lr=1.0), batches, nn.functional.mse_loss,
                    min_lr=0.01, max_lr=0.1, num_steps=10, mode="linear")
    assert curve.lrs == pytest.approx([0.01 + 0.01 * k for k in range(10)], rel=1e-12)


def test_a_sweep_past_the_stability_limit_stops_on_divergence() -> None:
    # loss = w^2 with SGD is stable only for lr < 1 (|1 - 2 lr| < 1); the sweep goes to 100
    model, batches = scalar_problem()
    curve = find_lr(model, torch.optim.SGD(model.parameters(), lr=1.0), batches, nn.functional.mse_loss,
                    min_lr=1e-3, max_lr=100, num_steps=100)
    assert curve.stopped_early and curve.stop_step is not None and curve.stop_step < 99
    assert curve.usable == curve.stop_step
    assert curve.lrs[-1] > 1  # it stopped only after crossing the limit
    assert curve.smoothed[-1] > 4 * min(curve.smoothed)
    assert len(curve.lrs) == curve.stop_step + 1  # the diverging point is recorded, but not usable


def test_a_non_finite_loss_stops_the_sweep_without_recording_it() -> None:
    model, batches = scalar_problem()
    values = iter([1.0, 0.9, float("nan")])

    def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output * 0).sum() + next(values, 1.0)

    curve = find_lr(model, torch.optim.SGD(model.parameters(), lr=1.0), batches, loss_fn, num_steps=10)
    assert curve.stop_step == 1 and curve.losses == pytest.approx((0.9,))


def test_param_groups_keep_their_lr_ratio() -> None:
    torch.manual_seed(0)
    model = small_net()
    optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.1},
                                 {"params": model[4].parameters(), "lr": 0.01},
                                 {"params": model[1].parameters(), "lr": 0.5}], lr=0.1)
    seen = []

    def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        seen.append([g["lr"] for g in optimizer.param_groups])
        return nn.functional.cross_entropy(output, target)

    curve = find_lr(model, optimizer, regression_batches(), loss_fn, min_lr=1e-5, max_lr=1e-2, num_steps=20)
    swept = seen[1:]  # the first forward pass comes before the first update
    assert len(swept) == len(curve.lrs) == 20
    for (g0, g1, g2), lr in zip(swept, curve.lrs, strict=True):
        assert g0 == pytest.approx(lr, rel=1e-12)
        assert g1 / g0 == pytest.approx(0.1, rel=1e-12) and g2 / g0 == pytest.approx(5.0, rel=1e-12)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.01, 0.5]


def test_validation_mode_records_val_fn_after_each_update() -> None:
    model, batches = scalar_problem()
    grad_enabled = []

    def val_fn(m: nn.Module) -> torch.Tensor:
        grad_enabled.append(torch.is_grad_enabled())
        return 10 * m.weight.detach().square().sum()  # 10 x the training loss, so it cannot be mistaken for it

    curve = find_lr(model, torch.optim.SGD(model.parameters(), lr=1.0), batches, nn.functional.mse_loss,
                    min_lr=1e-3, max_lr=0.1, num_steps=10, smooth=0.0, val_fn=val_fn)
    assert len(grad_enabled) == 10 and not any(grad_enabled)
    w, expected = 1.0, []
    for lr in curve.lrs:
        w *= 1 - 2 * lr
        expected.append(10 * w * w)
    assert curve.losses == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"min_lr": 1.0, "max_lr": 0.1}, "min_lr=1.0"),
    ({"min_lr": 0.0}, "min_lr=0.0"),
    ({"num_steps": 1}, "num_steps=1"),
    ({"mode": "log"}, "mode='log'"),
    ({"smooth": 1.0}, "smooth=1.0"),
    ({"diverge_factor": 1.0}, "diverge_factor=1.0"),
])
def test_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    model, batches = scalar_problem()
    with pytest.raises(ValueError, match="^" + field.replace("(", r"\(")):
        find_lr(model, torch.optim.SGD(model.parameters(), lr=1.0), batches, nn.functional.mse_loss, **kwargs)


def test_a_shuffling_data_loader_works_and_its_rng_draws_are_undone() -> None:
    torch.manual_seed(0)
    model = small_net()
    x, y = (torch.cat(t) for t in zip(*regression_batches(), strict=True))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    rng = torch.get_rng_state()
    curve = find_lr(model, torch.optim.SGD(model.parameters(), lr=0.1), loader, nn.functional.cross_entropy,
                    min_lr=1e-4, max_lr=1e-1, num_steps=12)  # 4 batches a pass: the loader is gone through 3 times
    assert len(curve.lrs) == 12 and torch.equal(rng, torch.get_rng_state())


def test_no_batches_is_an_error() -> None:
    model, _ = scalar_problem()
    with pytest.raises(ValueError, match="batches is empty"):
        find_lr(model, torch.optim.SGD(model.parameters(), lr=1.0), [], nn.functional.mse_loss)


def test_docstring_examples_pass() -> None:
    result = doctest.testmod(lrlab.finder.curves)
    assert result.attempted > 0 and result.failed == 0


def test_reading_curves_needs_no_torch() -> None:
    """The curve data, the suggestions and the figure import without torch (`lrlab report` reads them); the sweeps
    load it on first use."""
    code = ("import sys, lrlab.finder as f; from lrlab.finder import FinderResult, combine_suggestions, plot_finder; "
            "assert 'torch' not in sys.modules, 'torch imported'; f.find_lr_for_task; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ema_is_bias_corrected() -> None:
    assert ema([3.0, 3.0, 3.0], 0.98) == pytest.approx([3.0, 3.0, 3.0])
    assert ema([1.0, 2.0], 0.0) == [1.0, 2.0]


# ---- suggestions on curves with known answers -----------------------------------------------------------------

GRID = np.linspace(-6, 0, 121)  # log10 LR, 20 points per decade


def test_steepest_finds_the_centre_of_a_sigmoid_drop() -> None:
    loss = 2.5 - 1.5 * sigmoid((GRID + 2) / 0.3)  # falls fastest per decade at lr = 1e-2
    assert steepest(synthetic(GRID, loss)) == pytest.approx(1e-2, rel=1e-9)


def test_steepest_is_taken_against_log_lr_not_the_index() -> None:
    # the same curve sampled unevenly: denser above 1e-2 than below; the answer must not move
    x = np.concatenate([np.linspace(-6, -2, 21), np.linspace(-2, 0, 121)[1:]])
    picked = steepest(synthetic(x, 2.5 - 1.5 * sigmoid((x + 2) / 0.3)))
    assert math.log10(picked) == pytest.approx(-2, abs=0.02)  # within one of the fine steps


def test_steepest_ignores_a_descent_after_the_curve_turned_up() -> None:
    # main drop at 1e-3, minimum near 1e-1, then a blow-up and a sharper "recovery" drop around 0.3
    loss = 3 - sigmoid((GRID + 3) / 0.3) + 4 * np.clip(GRID + 1, 0, None) - 1.5 * sigmoid((GRID + 0.5) / 0.05)
    assert steepest(synthetic(GRID, loss)) == pytest.approx(1e-3, rel=1e-9)


def test_valley_picks_two_thirds_of_the_way_down() -> None:
    loss = 2.5 - 1.5 * sigmoid((GRID + 2) / 0.3)
    picked = math.log10(valley(synthetic(GRID, loss)))
    # the drop's height runs over the candidate points; 2/3 down the sigmoid is at -2 + 0.3 ln 2 (+ a grid step)
    assert -2 + 0.3 * math.log(2) - 0.05 <= picked <= -2 + 0.3 * math.log(2) + 0.1


def test_valley_does_not_depend_on_where_the_sweep_started() -> None:
    rng = np.random.default_rng(0)

    def curve(start: float) -> LRCurve:
        x = np.arange(start, 0.001, 0.05)
        noise = 0.005 * rng.standard_normal(len(x))  # a noisy flat start, as a real sweep's
        return synthetic(x, 2.3 - 1.5 * sigmoid((x + 2) / 0.3) + 3 * np.clip(x + 1, 0, None) ** 2 + noise)

    short, long = valley(curve(-4)), valley(curve(-8))
    assert math.log10(long) == pytest.approx(math.log10(short), abs=0.11)
    assert 10 ** -2.2 < short < 10 ** -1.3


def test_minimum_div_10_of_a_parabola() -> None:
    loss = (GRID + 1) ** 2 + 1  # lowest at lr = 0.1
    assert minimum_div_10(synthetic(GRID, loss)) == pytest.approx(0.01, rel=1e-9)


def test_suggestions_use_only_points_before_divergence() -> None:
    loss = 2.5 - 1.5 * sigmoid((GRID + 2) / 0.3)
    c = synthetic(GRID, loss)
    cut = LRCurve(c.lrs, c.losses, c.smoothed, stop_step=60)  # diverged at 1e-3: before the real drop
    assert minimum_div_10(cut) < 1e-3 / 10


def test_too_short_a_curve_cannot_be_read() -> None:
    c = synthetic(GRID[:12], np.linspace(3, 2, 12))
    with pytest.raises(ValueError, match="expected >= 3"):
        steepest(c)


def test_combine_suggestions_takes_the_median_over_seeds_and_methods() -> None:
    curves = [synthetic(GRID, 2.5 - 1.5 * sigmoid((GRID - shift) / 0.3) + 3 * np.clip(GRID - shift - 1, 0, None))
              for shift in (-2.2, -2.0, -1.8)]
    rec = combine_suggestions(curves)
    picks = [v for seed in rec.per_seed for v in seed.values()]
    assert len(picks) == 9
    assert (rec.low, rec.high) == pytest.approx(10 ** np.percentile(np.log10(picks), [25, 75]), rel=1e-9)
    assert min(picks) <= rec.low and rec.high <= max(picks)
    assert rec.lr == pytest.approx(10 ** np.median(np.log10(picks)), rel=1e-9)
    assert rec.low <= rec.lr <= rec.high
    assert rec.per_method["steepest"] == pytest.approx(1e-2, rel=1e-9)  # the middle seed's


def test_one_bad_pick_does_not_stretch_the_interval() -> None:
    # seen on a user's task: one seed's steepest slope at the very start of its sweep (3e-6) gave an interval of
    # 3.2e-6 – 0.017 around a pick of 0.0107
    curves = [synthetic(GRID, 2.5 - 1.5 * sigmoid((GRID - shift) / 0.3) + 3 * np.clip(GRID - shift - 1, 0, None))
              for shift in (-2.2, -2.0, -1.8)]
    good = combine_suggestions(curves)
    bad = combine_suggestions(curves, {**METHODS, "astray": lambda c: 3e-6 if c is curves[0] else good.lr})
    assert min(v for seed in bad.per_seed for v in seed.values()) == 3e-6
    assert bad.low > good.lr / 10 and bad.high < good.lr * 10


def test_combine_suggestions_skips_a_method_a_curve_is_too_short_for() -> None:
    good = synthetic(GRID, 2.5 - 1.5 * sigmoid((GRID + 2) / 0.3))
    short = synthetic(GRID[:12], np.linspace(3, 2, 12))
    rec = combine_suggestions([good, short])
    assert all(v is None for v in rec.per_seed[1].values())
    assert rec.per_method["steepest"] == pytest.approx(steepest(good), rel=1e-12)
    with pytest.raises(ValueError, match="no suggestion"):
        combine_suggestions([short])


@pytest.mark.parametrize("vectorize", [False, True])
def test_nan_in_the_data_is_said_to_be_the_data_not_min_lr(vectorize: bool) -> None:
    task = load_task("examples.my_task:make_task")
    task = dataclasses.replace(task, x_train=task.x_train.clone().fill_(math.nan))
    with pytest.raises(ValueError) as error:
        find_lr_for_task(task, seeds=(0, 1), num_steps=20, vectorize=vectorize)
    message = str(error.value)
    assert "not finite from the first step (step 0) of every sweep (2)" in message and "check the data" in message
    assert "lower min_lr or" not in message
    with pytest.raises(ValueError, match="lower min_lr or raise num_steps"):  # a curve cut short by divergence
        combine_suggestions([LRCurve((1e-3, 2e-3), (2.0, 1.9), (2.0, 1.95), stop_step=2)])


def test_band_spans_the_curves() -> None:
    a = synthetic(GRID, np.full(len(GRID), 1.0))
    b = synthetic(GRID, np.full(len(GRID), 3.0))
    b = LRCurve(b.lrs, b.losses, b.smoothed, stop_step=61)
    band = curve_band([a, b])
    assert band.lrs[0] == pytest.approx(1e-6) and band.lrs[-1] == pytest.approx(1.0)
    assert band.mean[0] == pytest.approx(2.0) and band.low[0] == 1.0 and band.high[0] == 3.0
    assert band.count[0] == 2 and band.count[-1] == 1 and band.mean[-1] == pytest.approx(1.0)


# ---- a task, over seeds -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_result():
    before = torch.get_rng_state()
    result = find_lr_for_task(load_task("digits-mlp"), seeds=(0, 1, 2))
    assert torch.equal(before, torch.get_rng_state())  # the caller's RNG is left alone
    return result


def test_digits_recommendation_is_sane(digits_result) -> None:
    rec = digits_result.recommendation
    assert len(digits_result.curves) == 3 and [c.seed for c in digits_result.curves] == [0, 1, 2]
    assert 1e-3 <= rec.low <= rec.lr <= rec.high <= 10
    assert set(rec.per_method) == {"steepest", "valley", "minimum/10"}
    stored = json.loads(json.dumps(digits_result.to_dict()))  # what a store keeps
    assert FinderResult.from_dict(stored) == digits_result


def test_describe_shows_the_lr_every_seed_and_how_to_use_it(digits_result) -> None:
    text = describe(digits_result, total_steps=440)
    lr = f"{digits_result.recommendation.lr:.3g}"
    assert f"recommended peak LR: {lr}" in text and f"onecycle(max_lr={lr})" in text
    assert f"OneCycleLR(optimizer, max_lr={lr}, total_steps=440)" in text
    assert [line.split()[0] for line in text.splitlines()[4:8]] == ["0", "1", "2", "median"]
    assert "also try half and twice it" in text.splitlines()[-1]


def test_the_figure_is_written(digits_result, tmp_path: Path) -> None:
    path = plot_finder(digits_result, tmp_path / "sub" / "finder.png")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


@pytest.mark.parametrize(("optimizer", "min_lr"), [
    (None, 1e-2),  # the task's SGD with momentum; from 1e-2 two seeds diverge (at different steps), one does not
    (OptimizerDefaults(name="adamw", lr=1e-3), 1e-6),
])
def test_batched_sweeps_equal_the_sequential_ones(optimizer: OptimizerDefaults | None, min_lr: float) -> None:
    task = load_task("digits-mlp")
    kwargs: dict[str, Any] = {"seeds": (0, 1, 2), "min_lr": min_lr, "max_lr": 10.0, "num_steps": 60,
                              "optimizer": optimizer}
    seen: list[int] = []
    batched = find_lr_for_task(task, vectorize=True, on_seed=lambda seed, _: seen.append(seed), **kwargs)
    sequential = find_lr_for_task(task, vectorize=False, **kwargs)
    assert batched.settings["vectorized"] and not sequential.settings["vectorized"] and seen == [0, 1, 2]
    assert any(c.stopped_early for c in sequential.curves)
    for a, b in zip(batched.curves, sequential.curves, strict=True):
        assert (a.lrs, a.losses, a.smoothed, a.stop_step, a.stopped_early, a.seed) == \
            (b.lrs, b.losses, b.smoothed, b.stop_step, b.stopped_early, b.seed)
    assert batched.curves == sequential.curves and batched.recommendation == sequential.recommendation


def test_forced_batching_is_refused_where_it_cannot_run() -> None:
    task = load_task("digits-mlp")
    with pytest.raises(ValueError, match=r"vectorize=True is invalid for task 'digits-mlp': .*vmappable=False"):
        find_lr_for_task(dataclasses.replace(task, vmappable=False), num_steps=10, vectorize=True)
    with pytest.raises(ValueError, match=r"vectorize=True is invalid .*val=True"):
        find_lr_for_task(task, num_steps=10, val=True, vectorize=True)
    few = find_lr_for_task(task, seeds=(0, 1, 2), min_lr=1e-3, num_steps=30)
    assert not few.settings["vectorized"]  # auto: below MIN_MEMBERS seeds, one sweep after another is faster
    many = find_lr_for_task(task, seeds=range(MIN_MEMBERS), min_lr=1e-3, num_steps=30)
    assert many.settings["vectorized"]

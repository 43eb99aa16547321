"""Statistics over seeds: mean, spread, confidence intervals, two-schedule comparisons, time to target.

Every function takes plain sequences of numbers (one per seed) and returns ``nan`` where a quantity is
undefined (e.g. a CI from one seed). Student's t distribution comes from ``scipy.special`` (``stdtr``,
``stdtrit``): ``scipy.stats`` gives the same numbers, bit for bit (a test checks it), but takes about a second
to import, which was a quarter of ``lrlab report``'s time. ``scipy.special`` is imported on first use, so
``lrlab report`` imports it while its figures are being drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean over seeds with its sample standard deviation (ddof=1) and 95% Student-t CI of the mean.

    ``std``, ``ci_low`` and ``ci_high`` are ``nan`` with fewer than two values; everything is ``nan`` with none.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Comparison:
    """Schedule A against schedule B on one metric, over seeds.

    ``diff = mean_a - mean_b`` with its 95% Welch CI; ``p_value`` of Welch's two-sided t-test; ``cohens_d``
    is ``diff`` over the pooled standard deviation (same sign as ``diff``). Undefined (``nan``) when either
    side has fewer than two values.
    """

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    cohens_d: float

    @property
    def testable(self) -> bool:
        """Whether both sides have at least two values, so the test and CI exist."""
        return self.n_a >= 2 and self.n_b >= 2


def _clean(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr[np.isfinite(arr)]


def describe(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, std (ddof=1) and the Student-t CI of the mean: ``mean ± t_{(1+c)/2, n-1} · std / √n``.

    Non-finite values are dropped first. Example: ``describe([1, 2, 3])`` has mean 2, std 1 and CI
    ``2 ± 4.303 / √3 = (-0.484, 4.484)``.
    """
    arr = _clean(values)
    n = len(arr)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(arr.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(arr.std(ddof=1))
    from scipy.special import stdtrit

    half = float(stdtrit(n - 1, (1 + confidence) / 2)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d: ``(mean_a - mean_b) / s_pooled``, ``s_pooled² = ((n_a-1)s_a² + (n_b-1)s_b²) / (n_a+n_b-2)``.

    ``±inf`` when both samples are constant but differ, 0 when they are equal, ``nan`` with < 2 values a side.
    """
    x, y = _clean(a), _clean(b)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    diff = float(x.mean() - y.mean())
    pooled = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / pooled


def effect_size_label(d: float) -> str:
    """Cohen's conventional words for ``|d|``: negligible (< 0.2), small (< 0.5), medium (< 0.8), large."""
    if not math.isfinite(d):
        return "undefined" if math.isnan(d) else "large"
    size = abs(d)
    return "negligible" if size < 0.2 else "small" if size < 0.5 else "medium" if size < 0.8 else "large"


def compare(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Comparison:
    """Welch's t-test of ``a`` against ``b`` with the CI of ``mean_a - mean_b`` and Cohen's d.

    Two constant samples get ``p = 1`` when equal and ``p = 0`` when they differ (no seed noise at all);
    the t-test is undefined there.
    """
    x, y = _clean(a), _clean(b)
    mean_a = float(x.mean()) if len(x) else math.nan
    mean_b = float(y.mean()) if len(y) else math.nan
    diff = mean_a - mean_b
    if len(x) < 2 or len(y) < 2:
        return Comparison(len(x), len(y), mean_a, mean_b, diff, math.nan, math.nan, math.nan, math.nan)
    d = cohens_d(x, y)
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        return Comparison(len(x), len(y), mean_a, mean_b, diff, diff, diff, 1.0 if diff == 0 else 0.0, d)
    low, high, p_value = _welch(x, y, confidence)
    return Comparison(len(x), len(y), mean_a, mean_b, diff, low, high, p_value, d)


def _welch(x: np.ndarray, y: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Welch's two-sided t-test as ``scipy.stats.ttest_ind(x, y, equal_var=False)`` computes it, step for step.

    Returns the CI of ``mean_x - mean_y`` (``diff ± t_{(1+c)/2, df} · se``) and the p-value, with
    ``se² = s_x²/n_x + s_y²/n_y`` and Welch–Satterthwaite ``df = se⁴ / ((s_x²/n_x)²/(n_x-1) + (s_y²/n_y)²/(n_y-1))``.
    """
    from scipy.special import stdtr, stdtrit

    n_x, n_y = len(x), len(y)
    mean_x, mean_y = x.mean(), y.mean()
    var_x = np.mean((x - mean_x) ** 2) * (n_x / (n_x - 1))  # scipy's order of operations, so the bits agree
    var_y = np.mean((y - mean_y) ** 2) * (n_y / (n_y - 1))
    vn_x, vn_y = var_x / n_x, var_y / n_y
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (vn_x + vn_y) ** 2 / (vn_x ** 2 / (n_x - 1) + vn_y ** 2 / (n_y - 1))
    df = 1.0 if np.isnan(df) else df
    se = np.sqrt(vn_x + vn_y)
    diff = mean_x - mean_y
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.divide(diff, se)
    tail = (1 - np.float64(confidence)) / 2
    low, high = stdtrit(df, np.array([tail, 1 - tail]))
    return float(low * se + diff), float(high * se + diff), float(2 * stdtr(df, -np.abs(t)))


def epochs_to_target(epochs: Sequence[int], val_acc: Sequence[float] | None, target: float) -> int | None:
    """The first epoch (1-based, as stored) whose validation accuracy is ``>= target``; None if never reached.

    Example: epochs ``[1, 2, 3]`` with accuracies ``[0.5, 0.8, 0.9]`` reach 0.8 at epoch 2.
    """
    if val_acc is None:
        return None
    for epoch, acc in zip(epochs, val_acc, strict=True):
        if acc is not None and math.isfinite(acc) and acc >= target:
            return int(epoch)
    return None


def censored_epochs(reached: Sequence[int | None], epochs: int) -> np.ndarray:
    """Epochs to target with runs that never reached it counted as ``epochs + 1`` (a lower bound on their time).

    Used to compare two schedules' times to target: a run that never gets there counts as slower than any
    run that does, and two runs that never get there count as equal.
    """
    return np.array([epochs + 1 if r is None else r for r in reached], dtype=float)


@dataclass(frozen=True)
class Contrast:
    """A contrast of group means ``sum_i c_i · m_i`` (or of their logs), with its 95% CI and two-sided p-value.

    Welch–Satterthwaite degrees of freedom ``df``; everything is ``nan`` when a group has fewer than two values.
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float

    @property
    def testable(self) -> bool:
        """Whether every group had at least two values, so the CI and test exist."""
        return math.isfinite(self.p_value)


def contrast(groups: Sequence[tuple[float, Sequence[float]]], log: bool = False,
             confidence: float = CONFIDENCE) -> Contrast:
    """The contrast ``sum_i c_i · m_i`` over ``groups`` of ``(c_i, values_i)``, tested against 0.

    ``se² = sum_i c_i² s_i² / n_i``, ``df = se⁴ / sum_i (c_i² s_i² / n_i)² / (n_i - 1)``, ``t = estimate / se``;
    ``log`` contrasts ``ln m_i`` instead, with the delta method's ``s_i² / (n_i m_i²)`` (a ratio of means: a
    relative effect, comparable between tasks whose losses differ in scale). Example: a difference in
    differences, "warmup helps more at batch 512 than at 16", is ``[(1, cold_512), (-1, warm_512), (-1, cold_16),
    (1, warm_16)]``.
    """
    arrays = [(c, _clean(v)) for c, v in groups]
    if any(len(v) < 2 for _, v in arrays) or (log and any(v.mean() <= 0 for _, v in arrays)):
        return Contrast(math.nan, math.nan, math.nan, math.nan, math.nan)
    from scipy.special import stdtr, stdtrit

    estimate, parts = 0.0, []
    for c, v in arrays:
        mean, var = float(v.mean()), float(v.var(ddof=1)) / len(v)
        estimate += c * (math.log(mean) if log else mean)
        parts.append((c * c * (var / mean ** 2 if log else var), len(v)))
    se2 = sum(p for p, _ in parts)
    if se2 == 0:
        p_value = 1.0 if estimate == 0 else 0.0
        return Contrast(estimate, estimate, estimate, p_value, math.inf)
    df = se2 ** 2 / sum(p * p / (n - 1) for p, n in parts)
    se = math.sqrt(se2)
    half = float(stdtrit(df, (1 + confidence) / 2)) * se
    return Contrast(estimate, estimate - half, estimate + half, float(2 * stdtr(df, -abs(estimate) / se)), df)

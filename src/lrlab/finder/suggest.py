"""Reading a peak LR off LR range test curves, torch-free: pure functions of :class:`~lrlab.finder.curves.LRCurve`.

- :func:`steepest`: where the smoothed loss falls fastest *per decade of LR* (d loss / d log LR);
- :func:`valley`: a point two thirds of the way down the curve's main descent;
- :func:`minimum_div_10`: a tenth of the LR at the lowest smoothed loss.

One sweep is one noisy sample: :func:`combine_suggestions` reads every method on every seed's curve and
combines them into one LR with an interval, so a user sees how much the answer moves; :func:`describe` says so
in plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lrlab.finder.curves import FinderResult, LRCurve, Recommendation

__all__ = ["METHODS", "combine_suggestions", "describe", "minimum_div_10", "steepest", "valley"]


def _region(curve: LRCurve, skip_start: int, skip_end: int,
            to_minimum: bool) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Log-LRs and smoothed losses before divergence, and the candidates' index range ``[lo, hi)``.

    Candidates skip ``skip_start`` points at the start and ``skip_end`` before divergence (or the end); with
    ``to_minimum`` they also stop at the lowest smoothed loss, so a descent after the curve has turned up (a
    model recovering from a blow-up) is never read as the useful one.
    """
    if skip_start < 0 or skip_end < 0:
        raise ValueError(f"skip_start={skip_start!r}, skip_end={skip_end!r} are invalid: expected integers >= 0")
    n = curve.usable
    x, y = np.log(np.asarray(curve.lrs[:n], dtype=float)), np.asarray(curve.smoothed[:n], dtype=float)
    lo, hi = skip_start, n - skip_end
    if hi - lo >= 1 and to_minimum:
        hi = lo + int(np.argmin(y[lo:hi])) + 1
    if hi - lo < 3:
        where = " up to its lowest point" if to_minimum else ""
        raise ValueError(f"the curve has {n} points before divergence, {max(hi - lo, 0)} of them candidates{where} "
                         f"(after skip_start={skip_start}, skip_end={skip_end}): expected >= 3 (lower min_lr or "
                         "raise num_steps)")
    return x, y, lo, hi


def steepest(curve: LRCurve, *, skip_start: int = 10, skip_end: int = 5) -> float:
    """The LR where the smoothed loss falls fastest per unit of log-LR: ``argmin d smoothed / d log(lr)``.

    Taken against log(lr), not the step index or the LR itself, so the answer does not depend on the sweep's
    spacing (a linear sweep is read the same way). The derivative is central (``numpy.gradient`` over the
    log-LRs). Candidates: the points from ``skip_start`` up to the lowest smoothed loss, and not the last
    ``skip_end`` before divergence (the start is noisy; the end is already turning up).

    Raises:
        ValueError: fewer than 3 candidates (the curve is too short, or it never falls).
    """
    x, y, lo, hi = _region(curve, skip_start, skip_end, to_minimum=True)
    slope = np.gradient(y, x)
    return float(curve.lrs[lo + int(np.argmin(slope[lo:hi]))])


def valley(curve: LRCurve, *, skip_start: int = 10, skip_end: int = 5, depth: float = 2 / 3,
           tolerance: float = 0.02) -> float:
    """A point ``depth`` of the way down the curve's main descent (after fastai's "valley" idea).

    A descent is a run of candidate points (as for :func:`steepest`) over which the smoothed loss keeps going
    down (a rise of at most ``tolerance`` x the candidates' loss range above the run's lowest point does not
    break it), ending at its lowest point. The main descent is the one that falls furthest (then the longest),
    so a noisy flat start cannot outvote the real one. The answer is the first LR in it where the loss has
    fallen ``depth`` of the run's height: measured in loss, so where the sweep started does not move it.

    Raises:
        ValueError: fewer than 3 candidates, or ``depth``/``tolerance`` outside [0, 1].
    """
    if not 0 <= depth <= 1 or not 0 <= tolerance <= 1:
        raise ValueError(f"depth={depth!r}, tolerance={tolerance!r} are invalid: expected numbers in [0, 1]")
    _, y_all, lo, hi = _region(curve, skip_start, skip_end, to_minimum=True)
    y = y_all[lo:hi]
    slack = tolerance * float(y.max() - y.min())
    best: tuple[float, int, int, int] | None = None  # (drop, length, start, end)
    start = low = 0  # the current run starts at `start`; its lowest point so far is `low`
    for i in range(1, len(y) + 1):
        if i < len(y) and y[i] <= y[low] + slack:
            low = i if y[i] < y[low] else low
            continue
        run = (float(y[start:low + 1].max() - y[low]), low - start + 1, start, low)
        best = run if best is None or run[:2] > best[:2] else best
        start = low = i
    assert best is not None
    _, _, start, end = best
    top, bottom = float(y[start:end + 1].max()), float(y[end])
    pick = start + int(np.argmax(y[start:end + 1] <= top - depth * (top - bottom)))
    return float(curve.lrs[lo + pick])


def minimum_div_10(curve: LRCurve, *, skip_start: int = 10, skip_end: int = 0) -> float:
    """A tenth of the LR at the lowest smoothed loss before divergence (Smith's and fastai's rule of thumb).

    Raises:
        ValueError: fewer than 3 candidates.
    """
    _, _, _, hi = _region(curve, skip_start, skip_end, to_minimum=True)
    return float(curve.lrs[hi - 1]) / 10


#: method name -> suggestion function, in the order reports list them
METHODS: dict[str, Callable[[LRCurve], float]] = {
    "steepest": steepest,
    "valley": valley,
    "minimum/10": minimum_div_10,
}


def _median_lr(values: Sequence[float]) -> float:
    return float(np.exp(np.median(np.log(values))))


def combine_suggestions(curves: Sequence[LRCurve], methods: dict[str, Callable[[LRCurve], float]] | None = None
                        ) -> Recommendation:
    """Combine suggestion ``methods`` (default :data:`METHODS`) over the ``curves`` (one per seed).

    Each method reads each curve; the LR is the median of all those picks in log space, and the interval is
    their interquartile range in log space (both robust to one method or one seed going astray: a steepest-slope
    pick at the very start of one sweep does not stretch the interval over decades).

    Raises:
        ValueError: no curves, or no method could read any curve.
    """
    methods = METHODS if methods is None else methods
    if not curves:
        raise ValueError("curves=[] is invalid: expected at least one curve")
    per_seed: list[dict[str, float | None]] = []
    for curve in curves:
        picks: dict[str, float | None] = {}
        for name, method in methods.items():
            try:
                picks[name] = method(curve)
            except ValueError:
                picks[name] = None
        per_seed.append(picks)
    everything = [v for picks in per_seed for v in picks.values() if v is not None]
    if not everything and all(c.stop_step == 0 for c in curves):  # a non-finite loss at once: not the LR's doing
        raise ValueError(f"the loss was not finite from the first step (step 0) of every sweep ({len(curves)}), "
                         "at the lowest LR: a lower min_lr will not help; check the data (NaN or inf in the "
                         "inputs or targets) and the model's output")
    if not everything:
        lengths = sorted({c.usable for c in curves})
        raise ValueError(f"no suggestion could be read: the curves have {lengths} points before divergence "
                         "(lower min_lr or raise num_steps)")
    per_method: dict[str, float | None] = {}
    for name in methods:
        values = [picks[name] for picks in per_seed if picks[name] is not None]
        per_method[name] = _median_lr([v for v in values if v is not None]) if values else None
    low, high = 10 ** np.percentile(np.log10(everything), [25, 75])
    return Recommendation(_median_lr(everything), float(low), float(high), per_method, tuple(per_seed))


def describe(result: FinderResult, total_steps: int | None = None) -> str:
    """A plain-text summary for a terminal: the LR, its interval, every method on every seed, and how to use it.

    Args:
        result: what :func:`find_lr_for_task` returned.
        total_steps: the run's length in updates, shown in the usage lines (default: ``total_steps``, a name).
    """
    rec, settings = result.recommendation, result.settings
    methods = list(rec.per_method)
    width = max(len(m) for m in [*methods, "seed"]) + 2
    lines = [
        f"LR range test on {result.task}: {len(result.curves)} sweep(s) of {settings.get('num_steps', '?')} updates, "
        f"LR {settings.get('min_lr', '?')} -> {settings.get('max_lr', '?')} ({settings.get('mode', 'exp')})",
        f"recommended peak LR: {rec.lr:.3g}   (every method on every seed picked in {rec.low:.3g} .. {rec.high:.3g})",
        "",
        "seed".ljust(8) + "".join(m.rjust(width) for m in methods) + "stopped at".rjust(14),
    ]
    for curve, picks in zip(result.curves, rec.per_seed, strict=True):
        stop = f"{curve.lrs[-1]:.3g}" if curve.stopped_early else "-"
        lines.append(str(curve.seed if curve.seed is not None else "?").ljust(8)
                     + "".join((f"{picks[m]:.3g}" if picks[m] is not None else "-").rjust(width) for m in methods)
                     + stop.rjust(14))
    lines.append("median".ljust(8) + "".join((f"{rec.per_method[m]:.3g}" if rec.per_method[m] is not None else "-")
                                             .rjust(width) for m in methods))
    steps = str(total_steps) if total_steps is not None else "total_steps"
    lines += [
        "",
        "use it as OneCycle's peak (or any schedule's peak LR):",
        f"  lrlab spec:  onecycle(max_lr={rec.lr:.3g})",
        f"  torch:       torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr={rec.lr:.3g}, total_steps={steps})",
        f"  lrlab:       lrlab.OneCycleLR(optimizer, max_lr={rec.lr:.3g}, total_steps={steps})",
        "",
        "a starting point, not the optimum: against grid searches it was within 1.7x of the best peak on 6 of 8",
        "task/optimizer pairs (bench/RESULTS.md); where the run matters, also try half and twice it.",
    ]
    return "\n".join(lines)

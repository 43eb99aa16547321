"""Which configuration of the default task keeps the default study out of overfitting (issue 13)?

    python bench/default_study.py [--candidates today wd-5e-4 ...] [--seeds 5] [--epochs 30]

Each candidate is the default study (``lrlab.config.DEFAULT_SCHEDULES`` × N seeds, `lrlab compare`'s trainer
choice) on one configuration of MNIST-1D: the paper's 5000 signals or more, weight decay, the CNN.
Per candidate it prints the task's load time (data generation), the sweep's training time and its ratio to the
first candidate's (the machine may be shared: the ratio carries over, the seconds do not), then per schedule
the mean final and best-epoch validation loss over seeds, the best epoch, the rise of the final over the best,
the final accuracy and whether it overfits (:data:`lrlab.report.overfitting.OVERFIT_RULE`), and last the top
schedule by final and by best-epoch validation loss. A candidate is *healthy* when every decaying schedule
(all but ``constant``) ends within 5% of its best epoch's loss and the two rankings have the same winner.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import torch

from lrlab.config import parse_config
from lrlab.report import load_study, summary_rows
from lrlab.report.overfitting import OVERFIT_MARGIN, diagnose
from lrlab.runner import plan_sweep, run_sweep, set_threads_for_small_models
from lrlab.tasks import Task
from lrlab.tasks.mnist1d_mlp import make_task


# the tasks a candidate names as ``default_study:<function>`` (this file is importable as `default_study`)
def paper_5k() -> Task:
    return make_task(num_samples=5000)


def samples_10k() -> Task:
    return make_task(num_samples=10_000)


def samples_20k() -> Task:
    return make_task(num_samples=20_000)


#: label -> config overrides of the default study (the first is the reference of the time ratios)
CANDIDATES: dict[str, dict[str, Any]] = {
    "today (5k, wd 0)": {"task": "default_study:paper_5k"},
    "5k, wd 5e-4": {"task": "default_study:paper_5k", "optimizer": {"weight_decay": 5e-4}},
    "5k, wd 1e-3": {"task": "default_study:paper_5k", "optimizer": {"weight_decay": 1e-3}},
    "5k, wd 2e-3": {"task": "default_study:paper_5k", "optimizer": {"weight_decay": 2e-3}},
    "10k, wd 0": {"task": "default_study:samples_10k"},
    "20k, wd 0": {"task": "default_study:samples_20k"},
    "10k, wd 2e-3": {"task": "default_study:samples_10k", "optimizer": {"weight_decay": 2e-3}},
    "cnn (5k, wd 0)": {"task": "mnist1d-cnn"},
    "mnist1d-mlp (the default)": {"task": "mnist1d-mlp"},
}


def run_candidate(overrides: dict[str, Any], seeds: int, epochs: int | None) -> dict[str, Any]:
    """The default study with ``overrides`` in a temporary directory: its load and training seconds, and its rows."""
    config = parse_config({**overrides, "seeds": seeds, **({"epochs": epochs} if epochs else {})})
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        with plan_sweep(config, out) as sweep:
            planned = time.perf_counter()
            used = run_sweep(sweep)
            trained = time.perf_counter()
        rows = summary_rows(load_study(out))
    return {"load_s": planned - start, "train_s": trained - planned, "rows": rows, "used": used.split(" (")[0]}


def show(label: str, result: dict[str, Any], reference_s: float) -> bool:
    """Print one candidate's table; return whether it is healthy."""
    rows, diagnosis = result["rows"], diagnose(result["rows"])
    print(f"\n== {label}: load {result['load_s']:.1f} s, training {result['train_s']:.1f} s "
          f"({result['train_s'] / reference_s:.2f}x the first), {result['used']}")
    print(f"  {'schedule':<15}{'final':>8}{'best':>8}{'epoch':>7}{'rise':>8}{'acc':>7}  overfits")
    healthy = True
    for row in rows:
        rise = row["final_val_loss_mean"] / row["best_val_loss_mean"] - 1
        if row["schedule"] != "constant" and rise > OVERFIT_MARGIN:
            healthy = False
        acc = row["final_val_acc_mean"]
        print(f"  {row['schedule']:<15}{row['final_val_loss_mean']:>8.4f}{row['best_val_loss_mean']:>8.4f}"
              f"{row['best_val_loss_epoch_mean']:>7.1f}{rise:>+8.1%}{'' if acc is None else f'{acc:>7.1%}'}"
              f"  {'yes' if row['overfits'] else 'no'}")
    healthy = healthy and diagnosis.agree
    print(f"  by final: {', '.join(diagnosis.by_final)}")
    print(f"  by best:  {', '.join(diagnosis.by_best)}")
    print(f"  healthy (decaying schedules within {OVERFIT_MARGIN:.0%} of their best, same winner): "
          f"{'yes' if healthy else 'no'}")
    return healthy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES),
                        metavar="LABEL", help="candidates to run, by label (default: all)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, help="epochs per run (default: the task's)")
    args = parser.parse_args()
    set_threads_for_small_models()
    print(f"default study (6 schedules x {args.seeds} seeds) per candidate, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s) per process")
    reference_s = None
    for label in args.candidates:
        result = run_candidate(CANDIDATES[label], args.seeds, args.epochs)
        reference_s = reference_s or result["train_s"]
        show(label, result, reference_s)


if __name__ == "__main__":
    main()

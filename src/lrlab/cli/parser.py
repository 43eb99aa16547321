"""The argument parser of every command (help texts, types, defaults)."""

from __future__ import annotations

import argparse

from lrlab import __version__
from lrlab.cli.common import peak_lr_arg, positive_int


def _backend_args(p: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--address``: where the runs train (results do not depend on it)."""
    p.add_argument("--backend", choices=["local", "dask", "ray"],
                   help="local (default): this machine; dask: a Dask cluster (pip install 'lrlab[dask]'), ray: a Ray "
                        "cluster (pip install 'lrlab[ray]'): the one at --address, else a local one")
    p.add_argument("--address", metavar="HOST:PORT",
                   help="the cluster to send the runs to: a Dask scheduler (tcp://HOST:8786) or a Ray head "
                        "(HOST:6379)")


def _device_args(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--precision``: where the runs train and in which floating-point type."""
    p.add_argument("--device", metavar="auto|cpu|cuda|cuda:N|mps",
                   help="the torch device (default auto: CUDA when present, else the CPU); batches move there one "
                        "by one")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"],
                   help="fp32 (default), or the forward under autocast in bf16/fp16 (fp16 on CUDA with a gradient "
                        "scaler); trains sequentially")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="lrlab", formatter_class=raw,
        description="A learning-rate laboratory: exact, composable schedules and schedule comparisons.",
        epilog="examples:\n"
               "  lrlab schedules\n"
               "  lrlab plot 'warmup(steps=100) >> cosine()' 'onecycle()' --steps 1000\n"
               "  lrlab compare --task digits-mlp --epochs 5 --seeds 3 --schedules 'constant()' 'cosine()'\n"
               "  lrlab report results/digits-mlp")
    parser.add_argument("--version", action="version", version=f"lrlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("schedules", help="list the schedules a spec can use, with their parameters",
                            description="List the schedules a spec can use, their parameters and defaults.")
    p.add_argument("names", nargs="*", metavar="NAME", help="show these schedules' parameters in detail")

    p = commands.add_parser(
        "plot", help="plot schedules' LR (and momentum) against step", formatter_class=raw,
        description="Build each spec for --steps steps; print a preview, write a PNG (--out) and a CSV (--csv).\n"
                    "LR parameters default to --base-lr, so the default 1 plots multipliers of the optimizer's LR.",
        epilog="example:\n  lrlab plot 'warmup(frac=0.05) >> cosine()' 'onecycle()' --steps 3000 "
               "--steps-per-epoch 100 --base-lr 0.1 --csv lr.csv")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="a schedule spec, e.g. 'warmup(steps=100) >> cosine()'")
    p.add_argument("--steps", type=positive_int, required=True, metavar="N", help="optimizer steps in the whole run")
    p.add_argument("--steps-per-epoch", type=positive_int, metavar="M", help="needed by *_epochs durations")
    p.add_argument("--base-lr", type=float, default=1.0, metavar="LR",
                   help="the optimizer's LR; LR parameters default to it (default: 1, relative values)")
    p.add_argument("--beta2", type=float, metavar="B", help="Adam's beta2, for warmup(steps=auto)")
    p.add_argument("--out", default="lr.png", metavar="FILE.png", help="the figure to write (default: lr.png)")
    p.add_argument("--csv", metavar="FILE.csv", help="also write every value: step,<spec>,... (exact floats)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--log", dest="log", action="store_const", const=True, default=None,
                       help="log LR axis (default: log when every LR is > 0 and they span 10x or more)")
    scale.add_argument("--linear", dest="log", action="store_const", const=False, help="linear LR axis")

    p = commands.add_parser(
        "compare", help="train a task under several schedules and seeds, then report", formatter_class=raw,
        description="Train every schedule x seed of an experiment (skipping runs already in --out), then write\n"
                    "report.html, summary.csv and figures there. Without --config or flags: the default study\n"
                    "(6 schedules x 5 seeds on mnist1d-mlp). Ctrl-C or SIGTERM keeps the finished runs; run again\n"
                    "to resume.",
        epilog="examples:\n  lrlab compare\n  lrlab compare --config examples/mnist1d-cnn.yaml\n"
               "  lrlab compare --task digits-mlp --seeds 3 --schedules 'constant()' 'warm=warmup(epochs=1) >> "
               "cosine()'")
    p.add_argument("--config", metavar="FILE.yaml", help="experiment file (flags below override its keys)")
    p.add_argument("--task", help="a built-in task (lrlab tasks) or package.module:function")
    p.add_argument("--schedules", nargs="+", metavar="SPEC",
                   help="specs to compare; 'name=spec' names one (default name: the spec's text)")
    p.add_argument("--seeds", type=positive_int, metavar="N", help="seeds 0..N-1 per schedule")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="epochs per run (default: the task's)")
    p.add_argument("--batch-size", type=positive_int, metavar="N", help="examples per step (default: the task's)")
    p.add_argument("--out", metavar="DIR", help="results directory (default: results/<task>)")
    p.add_argument("--trainer", choices=["auto", "sequential", "vectorized"],
                   help="auto (default): vectorized (all runs as one batched model) where the task's model allows "
                        "and pays, else sequential, saying why")
    p.add_argument("--max-members", type=positive_int, metavar="K",
                   help="at most K runs per vectorized group (bounds memory)")
    _backend_args(p)
    _device_args(p)
    p.add_argument("--peak-lr", type=peak_lr_arg, metavar="LR|auto|tune",
                   help="the optimizer's LR, which schedules peak at; auto: the LR range test's pick (fast, good to "
                        "about 2x, one LR for all); tune: each schedule at its own best peak LR from a grid of real "
                        "runs (lrlab tune-lr per schedule, seeds held out from the comparison's)")
    p.add_argument("--fresh", action="store_true", help="delete the results already in --out first")
    p.add_argument("--yes", action="store_true",
                   help="confirm a sweep of more than 10,000,000 steps (all runs together), refused without it")
    p.add_argument("--no-report", action="store_true", help="train only; `lrlab report DIR` writes it later")

    p = commands.add_parser(
        "find-lr", help="the LR range test: which peak LR to use", formatter_class=raw,
        description="Sweep the LR from --min-lr to --max-lr on fresh models of a task (one sweep per seed), then\n"
                    "suggest a peak LR (steepest descent, valley, minimum/10, combined over seeds) with an interval.",
        epilog="example:\n  lrlab find-lr --task mnist1d-cnn --seeds 3")
    p.add_argument("--task", default="mnist1d-mlp", help="a built-in task (lrlab tasks) or package.module:function")
    p.add_argument("--seeds", type=positive_int, default=3, metavar="N", help="sweeps with seeds 0..N-1 (default 3)")
    p.add_argument("--min-lr", type=float, default=1e-6, metavar="LR", help="first LR of the sweep (default 1e-6)")
    p.add_argument("--max-lr", type=float, default=10.0, metavar="LR", help="last LR of the sweep (default 10)")
    p.add_argument("--num-steps", type=positive_int, metavar="N",
                   help="updates per sweep (default: 30%% of the run's updates, at least 100)")
    p.add_argument("--mode", choices=["exp", "linear"], default="exp", help="LR spacing (default exp)")
    p.add_argument("--batch-size", type=positive_int, metavar="N", help="examples per update (default: the task's)")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="the run's epochs, for the default --num-steps")
    p.add_argument("--val", action="store_true", help="record the validation loss instead of the training loss")
    _device_args(p)
    p.add_argument("--out", metavar="DIR", help="where finder.png and finder.json go (default results/<task>-find-lr)")

    p = commands.add_parser(
        "tune-lr", help="tune a schedule's peak LR with a grid of real runs", formatter_class=raw,
        description="Train the schedule at every peak LR of a log-spaced grid (over the LR range test's bracket,\n"
                    "widened while the best LR sits at an edge, refined at half the spacing around it), with\n"
                    "--seeds seeds each, as one batched sweep where the task allows; pick the best mean final\n"
                    "validation loss (a diverged seed is a failure) and the good region within seed noise of it.\n"
                    "Writes tune.json and lr_sensitivity.png; resumes.",
        epilog="example:\n  lrlab tune-lr --task digits-mlp --schedule 'warmup(epochs=1) >> cosine()' --seeds 3")
    p.add_argument("--task", default="mnist1d-mlp", help="a built-in task (lrlab tasks) or package.module:function")
    p.add_argument("--schedule", default="onecycle()", metavar="SPEC", help="the schedule to tune (default onecycle())")
    p.add_argument("--seeds", type=positive_int, default=3, metavar="N", help="seeds 0..N-1 per LR (default 3)")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="epochs per run (default: the task's)")
    p.add_argument("--batch-size", type=positive_int, metavar="N", help="examples per step (default: the task's)")
    p.add_argument("--min-lr", type=float, metavar="LR", help="the grid's lower bound (default: the range test's)")
    p.add_argument("--max-lr", type=float, metavar="LR", help="the grid's upper bound (with --min-lr)")
    p.add_argument("--per-decade", type=positive_int, default=4, metavar="K", help="grid LRs per decade (default 4)")
    p.add_argument("--max-widen", type=int, default=4, metavar="W",
                   help="times the grid may grow a decade past the edge its best LR sits on (default 4)")
    p.add_argument("--no-refine", dest="refine", action="store_false",
                   help="skip the two LRs at half the spacing beside the pick (2 more LRs; for sharp optima)")
    p.add_argument("--halving", action="store_true",
                   help="successive halving, for long runs: judge the grid on runs stopped at rungs after the LR's "
                        "peak, train only the best third on (about half the cost; bench/RESULTS.md says what it "
                        "loses)")
    p.add_argument("--trainer", choices=["auto", "sequential", "vectorized"], help="as for compare")
    _backend_args(p)
    _device_args(p)
    p.add_argument("--out", metavar="DIR", help="results directory (default results/<task>-tune-lr)")

    p = commands.add_parser(
        "claims", help="run the study's claims on the built-in tasks: a claim × task verdict table",
        formatter_class=raw,
        description="Run the study's experiments on each task (schedules at tuned peak LRs, a constant-LR sweep\n"
                    "from 1/100x to 1000x the tuned LR, schedule-free, batch 16 vs 512), as lrlab compare stores them\n"
                    "(one results directory per task under --out, resumed), then print and write the claim x task\n"
                    "verdict table: claims.csv, claims.html, claims.md, and its figures claims_schedules.png and\n"
                    "claims_lr_sweep.png (docs/claims.md).",
        epilog="examples:\n  lrlab claims --budget small\n  lrlab claims --budget full --out results/claims-full")
    p.add_argument("--budget", choices=["tiny", "small", "full"], default="small",
                   help="tiny: seconds, a smoke test (its verdicts mean little); small (default): minutes on a "
                        "2-core CPU, fewer epochs, seeds and grid points; full: every task tuned, 5 seeds")
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="the tasks (default: the budget's)")
    p.add_argument("--out", metavar="DIR", help="results directory (default results/claims-<budget>)")
    p.add_argument("--yes", action="store_true", help="as for compare: confirm a sweep of more than 10,000,000 steps")

    p = commands.add_parser("report", help="(re)write the report of a results directory",
                            description="Write report.html, summary.csv and figures from DIR's store; print the "
                                        "table.")
    p.add_argument("directory", metavar="DIR", help="a directory written by lrlab compare")

    p = commands.add_parser("export", help="write a results directory's runs as TensorBoard event files",
                            description="Write every finished run of DIR (LR, momentum, losses, accuracy) as "
                                        "TensorBoard event files, one run folder each (pip install "
                                        "'lrlab[tensorboard]').")
    p.add_argument("directory", metavar="DIR", help="a directory written by lrlab compare (or a RecordRun callback)")
    p.add_argument("--tensorboard", required=True, metavar="OUT", help="the folder for the event files")

    commands.add_parser("tasks", help="list the built-in tasks", description="List the built-in tasks.")
    return parser



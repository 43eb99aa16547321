# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The learning-rate study, measured
#
# This notebook follows the study note lrlab grew out of, in its order, and measures each of its claims with
# lrlab's public API instead of asserting them:
#
# 1. **The learning rate itself**: too large diverges, too small is slow (the LR range test and a constant-LR
#    sweep).
# 2. **Five schedules**: StepLR, CosineAnnealingLR, ReduceLROnPlateau, OneCycleLR and warmup + a scheduler:
#    each one's formula and curve, then their measured effect over seeds on MNIST-1D.
# 3. **Warmup on a Transformer**: a Post-LN character Transformer at a high AdamW LR, with and without warmup.
# 4. **The verdicts**: every claim with what the runs say about it.
#
# Budgets are small so that it runs top to bottom in a few minutes on a 2-core CPU (`lrlab compare` runs the
# full-size studies). Every result is stored under `LR_STUDY_OUT` (default `results/lr_study`): running the
# notebook again reuses finished runs, and `lrlab report DIR` rebuilds any study's HTML report.

# %%
import os
from pathlib import Path

from IPython.display import Image, Markdown, display

from lrlab import Horizon, build, find_lr_for_task, plot_finder
from lrlab.config import DEFAULT_SCHEDULES, parse_config
from lrlab.plotting import Curve, draw_curves
from lrlab.report import make_report
from lrlab.runner import plan_sweep, run_sweep, set_threads_for_small_models
from lrlab.runs import steps_per_epoch
from lrlab.tasks import load_task

OUT = Path(os.environ.get("LR_STUDY_OUT", "results/lr_study"))
set_threads_for_small_models()  # tiny models train fastest on one thread per process


def compare(name, **config):
    """Train every schedule x seed of ``config`` (an ``lrlab compare`` YAML config as keywords) into OUT/name,
    skipping runs already there, and return its report (summary rows, claims, figures)."""
    with plan_sweep(parse_config(config), OUT / name) as sweep:
        run_sweep(sweep)
    return make_report(OUT / name)


def show_curves(specs, horizon, name, **options):
    """Draw each spec's LR over ``horizon`` with lrlab's plotting and show the figure."""
    curves = [Curve(label, build(spec, horizon).lr_values()) for label, spec in specs.items()]
    display(Image(filename=str(draw_curves(curves, OUT / "curves" / f"{name}.png", **options))))


def table(report, columns=("final_val_loss", "final_val_acc")):
    """The report's summary rows as a Markdown table: each metric's mean ± std over seeds, and divergences."""
    head = "| rank | schedule | " + " | ".join(f"{c} (mean ± std)" for c in columns) + " | diverged |"
    lines = [head, "|" + "---|" * (len(columns) + 3)]
    for row in report.rows:
        cells = [f"{row[c + '_mean']:.3f} ± {row[c + '_std']:.3f}" if row[c + "_mean"] is not None else "–"
                 for c in columns]
        lines.append(f"| {row['rank'] or '–'} | {row['schedule']} | " + " | ".join(cells)
                     + f" | {row['diverged']}/{row['seeds']} |")
    return Markdown("\n".join(lines))


# %% [markdown]
# ## 1. The learning rate itself
#
# The task: `mnist1d-mlp`, the MLP of the MNIST-1D paper trained with SGD and momentum 0.9. First the **LR
# range test** (Smith 2017): one short run whose LR grows exponentially from 1e-6 to 10, recording the
# smoothed training loss. Where the loss falls fastest the LR is useful; where it turns up, training diverges.

# %%
task = load_task("mnist1d-mlp")
finder = find_lr_for_task(task, seeds=(0, 1))
display(Image(filename=str(plot_finder(finder, OUT / "finder.png"))))
print(f"range test's LR: {finder.recommendation.lr:.3g} "
      f"(interval {finder.recommendation.low:.3g} – {finder.recommendation.high:.3g})")

# %% [markdown]
# The range test reads a few hundred updates of training loss. The note's claim is about whole runs, so here is
# the direct measurement: a **constant LR**, trained to the end at LRs a decade apart, 2 seeds each. A run
# *diverges* when its loss is not finite or exceeds 10x its first value; lrlab stops it and counts it as a
# failure.

# %%
lrs = [0.001, 0.01, 0.1, 1.0, 10.0]
sweep = compare("constant-lr", task="mnist1d-mlp", epochs=10, seeds=2,
                schedules={f"lr={lr:g}": "constant()" for lr in lrs},
                peak_lrs={f"lr={lr:g}": lr for lr in lrs})
display(table(sweep))
display(Image(filename=str(sweep.figures["val_loss"])))

# %% [markdown]
# The table ranks the LRs best first, so the failures sit at its end: the highest LR diverges, and a decade
# below it the runs may not diverge but stay near chance (a validation loss near ln 10 = 2.30 for 10 classes);
# the lowest LR moves slowly in 10 epochs. The usable range in between is about a decade wide, which is why
# the peak LR matters as much as the schedule's shape (`lrlab tune-lr` finds one schedule's best peak LR with a
# grid of real runs).

# %% [markdown]
# ## 2. Five schedules
#
# Each schedule is a pure function of the step `t` (optimizer updates done; `T` is the whole run). Below, each
# one's formula and its curve over the task's own horizon (its epochs × updates per epoch) at peak LR 0.1. The
# specs are what `lrlab compare --schedules` and the YAML configs take; the torch classes of the same names
# (`from lrlab import StepLR, ...`) give the same LR sequence.
#
# - **StepLR**, `step(every_epochs=10, gamma=0.1)`: `lr(t) = lr0 * gamma ** (t // step_size)`.
# - **CosineAnnealingLR**, `cosine()`: `lr(t) = min_lr + (lr0 - min_lr) * (1 + cos(pi * t / T)) / 2`.
# - **ReduceLROnPlateau**, `plateau(patience=2, factor=0.5)`: `lr(t) = lr0 * factor ** n`, `n` the cuts so
#   far; one cut each time the validation loss has not improved for more than `patience` epochs.
# - **OneCycleLR**, `onecycle()`: from `max_lr / 25` up to `max_lr` over the first 30% of `T` (a half
#   cosine), then down to `max_lr / 25e4` at the end; the momentum cycles the other way (0.95 to 0.85 and back).
# - **warmup + a scheduler**, `warmup(epochs=2) >> cosine()`: `lr(t) = lr0 * t / w` for `t < w` (`w`: 2
#   epochs of updates), then the cosine on its own clock, from `t - w`.
#
# ReduceLROnPlateau's cuts depend on the validation loss, so its curve is drawn from the runs below.

# %%
per_epoch = steps_per_epoch(task, task.batch_size)
horizon = Horizon(total_steps=task.epochs * per_epoch, steps_per_epoch=per_epoch, base_lr=0.1)
schedules = dict(DEFAULT_SCHEDULES)  # the study's: constant, step, cosine, plateau, onecycle, warmup-cosine
print(schedules)
show_curves({name: spec for name, spec in schedules.items() if name != "plateau"}, horizon, "five", log=False,
            steps_per_epoch=per_epoch)

# %% [markdown]
# Now their effect, measured: each schedule trained on MNIST-1D with 3 seeds (each seed fixes the init and the
# data order), ranked by the final validation loss with its spread over seeds. The claims below the table
# compare schedules with Welch's t-test: *supported* or *contradicted* at p < 0.05, otherwise a *tie within
# seed noise*.

# %%
five = compare("five-schedules", task="mnist1d-mlp", seeds=3, target_acc=0.6, schedules=schedules)
display(table(five))
for name in ("lr", "val_loss", "val_acc"):
    display(Image(filename=str(five.figures[name])))

# %%
for note in five.notes:
    print("note:", note)
if five.recommendation is not None:
    print("which schedule?", five.recommendation.text)

# %% [markdown]
# Read the validation-loss curves before the ranking: when a schedule's validation loss rises after an early
# minimum, the model is memorizing its training set, and a ranking by *final* loss rewards whichever schedule
# cut its LR first (an implicit early stop), not the better schedule. The report's notes say when that happens.

# %% [markdown]
# ## 3. Warmup on a Transformer
#
# The note says warmup prevents early instability, above all in deep Transformers. The `charlm-transformer`
# task is a small Post-LayerNorm character Transformer trained with AdamW; here at a high peak LR (1e-2), one
# epoch of 300 updates, 3 seeds, with and without 60 updates of linear warmup
# (`examples/warmup-transformer.yaml` is the full study).

# %%
warm = {"cosine": "cosine()", "warmup-cosine": "warmup(steps=60) >> cosine()"}
show_curves(warm, Horizon(total_steps=300, base_lr=0.01), "warmup", log=False)
transformer = compare("warmup-transformer", task="charlm-transformer", epochs=1, batch_size=16, seeds=3,
                      optimizer={"name": "adamw", "lr": 0.01, "betas": [0.9, 0.99], "weight_decay": 0.01},
                      schedules=warm)
display(table(transformer, columns=("final_val_loss",)))
display(Image(filename=str(transformer.figures["train_loss"])))

# %% [markdown]
# ## 4. The verdicts
#
# Every claim checked above, with the numbers behind its verdict. A claim that the runs do not support is
# reported as such, never hidden; a *tie* means that at this many seeds the difference is within seed noise
# (more seeds, `lrlab compare --seeds 10`, may separate them).

# %%
top, best = sweep.study.schedules[f"lr={max(lrs):g}"], sweep.rows[0]
low = next(row for row in sweep.rows if row["schedule"] == f"lr={min(lrs):g}")
lines = ["| task | claim | verdict | observed |", "|---|---|---|---|",
         f"| mnist1d-mlp | Too large an LR diverges. | **{'observed' if top.diverged else 'not observed'}** | "
         f"lr={max(lrs):g}: {len(top.diverged)} of {len(top.runs)} runs diverged |",
         f"| mnist1d-mlp | Too small an LR is slow. | "
         f"**{'observed' if low['final_val_loss_mean'] > best['final_val_loss_mean'] else 'not observed'}** | "
         f"after 10 epochs lr={min(lrs):g} ends at {low['final_val_loss_mean']:.3f}, "
         f"{best['schedule']} at {best['final_val_loss_mean']:.3f} |"]
untestable = 0
for report in (five, transformer):
    for claim in report.claims:
        if claim.verdict == "not testable":  # a schedule the claim compares is not in this study
            untestable += 1
            continue
        lines.append(f"| {report.study.task['name']} | {claim.statement} | **{claim.verdict}** | {claim.observed} |")
display(Markdown("\n".join(lines)))
print(f"{untestable} claims left out: a schedule they compare is not in that study")

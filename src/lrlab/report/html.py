"""One self-contained HTML report: inline CSS, figures as base64 ``data:`` PNGs, no script, font or link.

Every string that comes from a user or the store (names, specs, task text, config, environment) goes
through :func:`html.escape`; the page is built from f-strings, so no template engine is needed.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lrlab.report.claims import CONTRADICTED, NOT_TESTABLE, SUPPORTED, TIE, Claim
from lrlab.report.contents import Report
from lrlab.report.data import Study
from lrlab.report.overfitting import OVERFIT_RULE
from lrlab.report.recommend import Recommendation
from lrlab.report.summary import fmt, fmt_ci, fmt_mean, fmt_target

_VERDICT_CLASS = {SUPPORTED: "supported", CONTRADICTED: "contradicted", TIE: "tie", NOT_TESTABLE: "untestable"}

_CAPTIONS = {
    "lr": "(a) Learning rate per step for every schedule (one seed each, log scale); momentum below when the "
          "optimizer has one.",
    "train_loss": "(b) Training loss per step, smoothed (EMA): mean over seeds with the min..max band.",
    "val_loss": "(c) Validation loss per epoch: mean over seeds with the min..max band.",
    "val_acc": "(d) Validation accuracy per epoch: mean over seeds with the min..max band.",
    "final": "(e) Final validation metrics per schedule, best first: every seed's value and the mean with its "
             "95% confidence interval.",
    "lr_finder": "(f) The LR range test that chose the peak LR: loss against LR over seeds, each suggestion and "
                 "the recommended interval.",
    "lr_sensitivity": "(g) LR sensitivity: each schedule's final validation loss (and accuracy) against its peak "
                      "LR, over its tuning grid (mean and seed range); a flat curve forgives a wrong LR.",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1280px; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.lead { color: #444; margin-top: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.84rem; margin: 0.6rem 0; }
th, td { border: 1px solid #d6d6d6; padding: 0.28rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #f2f4f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-size: 0.85em; background: #f4f4f4; padding: 0 0.2em; border-radius: 3px; }
td.verdict { font-weight: 600; white-space: nowrap; }
.supported { color: #0a6e2b; background: #e7f6ec; }
.contradicted { color: #a1120e; background: #fbe9e8; }
.tie { color: #6b5200; background: #fff6d6; }
.untestable { color: #555; background: #f0f0f0; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.88rem; color: #444; }
pre { background: #f7f7f9; border: 1px solid #e3e3e3; padding: 0.7rem; overflow-x: auto; font-size: 0.85rem; }
ul.notes li { margin-bottom: 0.25rem; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(text: str) -> str:
    return f'<td class="num">{_e(text)}</td>'


def _table(head: Sequence[str], body: Sequence[str]) -> str:
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _mapping_table(mapping: Mapping[str, Any], head: tuple[str, str] = ("key", "value")) -> str:
    rows = []
    for key, value in mapping.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        rows.append(f"<tr><td>{_e(key)}</td><td><code>{_e(text)}</code></td></tr>")
    return _table(head, rows)


def summary_html(rows: Sequence[dict[str, Any]]) -> str:
    """The summary table (best first) as HTML."""
    has_acc = any(r.get("final_val_acc_mean") is not None for r in rows)
    has_target = any(r.get("epochs_to_target_reached") is not None for r in rows)
    head = ["#", "schedule", "spec", "seeds", "diverged", "final val loss (mean ± std)", "95% CI"]
    head += ["final val acc (mean ± std)", "95% CI", "best val acc"] if has_acc else []
    head += ["epochs to target (reached)"] if has_target else []
    head += ["wall s (mean)"]
    body = []
    for row in rows:
        cells = [_num("–" if row["rank"] is None else str(row["rank"])), f"<td>{_e(row['schedule'])}</td>",
                 f"<td><code>{_e(row['spec'])}</code></td>", _num(str(row["seeds"])), _num(str(row["diverged"])),
                 _num(fmt_mean(row, "final_val_loss")), _num(fmt_ci(row, "final_val_loss"))]
        if has_acc:
            cells += [_num(fmt_mean(row, "final_val_acc")), _num(fmt_ci(row, "final_val_acc")),
                      _num(fmt(row.get("best_val_acc_mean")))]
        if has_target:
            cells.append(_num(fmt_target(row)))
        cells.append(_num(fmt(row.get("wall_s_mean"), 3)))
        body.append(f"<tr>{''.join(cells)}</tr>")
    return _table(head, body)


def overfitting_html(rows: Sequence[dict[str, Any]]) -> str:
    """Per schedule (best first): final and best-epoch validation loss, the rise between them, the final training
    loss and the validation − training gap, and whether it overfits, as HTML."""
    head = ["schedule", "final val loss", "best-epoch val loss", "best epoch (mean)", "final above best",
            "final train loss", "val − train gap", "overfits"]
    body = []
    for row in rows:
        final, best = row.get("final_val_loss_mean"), row.get("best_val_loss_mean")
        rise = "–" if final is None or not best else f"{final / best - 1:+.1%}"
        verdict = {True: "yes", False: "no"}.get(row.get("overfits"), "–")
        cells = [f"<td>{_e(row['schedule'])}</td>", _num(fmt(final)), _num(fmt(best)),
                 _num(fmt(row.get("best_val_loss_epoch_mean"), 3)), _num(rise),
                 _num(fmt(row.get("final_train_loss_mean"))), _num(fmt(row.get("train_val_gap_mean"))), _num(verdict)]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return _table(head, body)


def claims_html(claims: Sequence[Claim]) -> str:
    """The claims table (number, claim, metric, what was observed, verdict) as HTML."""
    body = [f'<tr><td class="num">{c.number}</td><td>{_e(c.statement)}</td><td>{_e(c.metric)}</td>'
            f'<td>{_e(c.observed)}</td><td class="verdict {_VERDICT_CLASS[c.verdict]}">{_e(c.verdict)}</td></tr>'
            for c in claims]
    return _table(["#", "claim", "metric", "observed", "verdict"], body)


def figure_html(name: str, path: Path) -> str:
    """A ``<figure>`` with the PNG at ``path`` embedded as a base64 data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    caption = _CAPTIONS.get(name, name)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def recommendation_html(rec: Recommendation | None) -> list[str]:
    """The "Which schedule?" section: the winner, its ties, and the code to use it."""
    if rec is None:
        return []
    parts = ["<h2>Which schedule?</h2>", f"<p>{_e(rec.text)}</p>"]
    if rec.code:
        parts += ["<p>With lrlab, exactly as it ran here:</p>", f"<pre>{_e(rec.code)}</pre>"]
    if rec.torch_code:
        parts += ["<p>With a <code>torch.optim.lr_scheduler</code> class:</p>", f"<pre>{_e(rec.torch_code)}</pre>"]
    return parts


def _environment_html(study: Study) -> str:
    env = dict(study.env)
    # values that differ between runs (e.g. a sweep resumed after a commit): list every one seen
    for key in sorted({k for s in study.schedules.values() for r in s.runs for k in r.env}):
        seen = {json.dumps(r.env.get(key), default=str) for s in study.schedules.values() for r in s.runs}
        if len(seen) > 1:
            env[key] = "differs between runs: " + ", ".join(sorted(seen))
    return _mapping_table(env) if env else "<p>No environment was recorded.</p>"


def render_html(report: Report) -> str:
    """The whole report page as a string, rendered from ``report`` alone (nothing is recomputed)."""
    study, task, seeds = report.study, report.study.task, report.study.seeds
    lead = (f"{len(study.schedules)} schedules × {len(seeds)} seeds ({', '.join(map(str, seeds))}), "
            f"{study.epochs} epochs.")
    parts = [
        f"<h1>{_e(study.title)}</h1>",
        f'<p class="lead">Task <code>{_e(study.task_name)}</code>: {_e(task.get("description") or "")}</p>',
        f'<p class="lead">{_e(lead)}</p>',
        "<h2>Notes</h2>",
        '<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>",
        "<h2>Summary</h2>",
        "<p>Best first by mean final validation loss over the seeds that trained to the end.</p>",
        summary_html(report.rows),
        "<h2>Overfitting</h2>",
        f"<p>Means over the seeds that trained to the end; the training loss is the last epoch's mean mini-batch "
        f"loss. {_e(OVERFIT_RULE)}</p>",
        overfitting_html(report.rows),
        "<h2>Claims</h2>",
        "<p>Each expected effect, judged from these runs (Welch's t-test, alpha 0.05).</p>",
        claims_html(report.claims),
        *recommendation_html(report.recommendation),
        "<h2>Figures</h2>",
        *(figure_html(name, path) for name, path in report.figures.items()),
    ]
    if task.get("info"):
        parts += ["<h2>Task details</h2>", _mapping_table(task["info"])]
    if study.peak_lr is not None:
        peak = study.peak_lr if isinstance(study.peak_lr, Mapping) else {"peak_lr": study.peak_lr}
        parts += ["<h2>Peak learning rate</h2>", _mapping_table({k: v for k, v in peak.items() if k != "finder"})]
    if study.tuned:
        parts += ["<h2>Tuned peak learning rates</h2>", _mapping_table(
            {name: f"{grid['peak_lr']:.3g} (good region {grid['good_region'][0]:.3g} – {grid['good_region'][1]:.3g}, "
                   f"{len(grid['points'])} grid LRs)" for name, grid in study.tuned.items()})]
    config = yaml.safe_dump(study.config, sort_keys=False, allow_unicode=True) if study.config else "(none stored)"
    parts += ["<h2>Config</h2>", f"<pre>{_e(config)}</pre>", "<h2>Environment</h2>", _environment_html(study)]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(study.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


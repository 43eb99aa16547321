"""The verdict table's files and its terminal form: ``claims.csv`` (one row per claim × task), ``claims.html``
(claims down, tasks across, then every cell's observations), ``claims.md`` (the table for a README or docs
page) and a rich table."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lrlab.report.claims import CONTRADICTED, SUPPORTED, TIE
from lrlab.report.files import replacing
from lrlab.study.verdicts import NOT_MEASURED, NOT_OBSERVED, REFERENCE, ROWS, Cell

if TYPE_CHECKING:
    from rich.table import Table

CSV_NAME, HTML_NAME, MARKDOWN_NAME = "claims.csv", "claims.html", "claims.md"
CSV_COLUMNS = ("row", "claim", "task", "verdict", "metric", "effect", "direction", "ci_low", "ci_high", "p_value",
               "cohens_d", "n", "observed")
_CLASS = {SUPPORTED: "supported", CONTRADICTED: "contradicted", TIE: "tie", NOT_OBSERVED: "unobserved",
          NOT_MEASURED: "unobserved", REFERENCE: "unobserved"}
_STYLE = {SUPPORTED: "green", CONTRADICTED: "red", TIE: "yellow"}


def _num(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:.4g}"


def effect_text(cell: Cell) -> str:
    """``-0.12 [-0.2, -0.05], p=0.003`` (what is defined of it), or empty."""
    if not math.isfinite(cell.effect):
        return ""
    text = f"{cell.effect:+.3g}"
    if math.isfinite(cell.ci_low):
        text += f" [{cell.ci_low:+.3g}, {cell.ci_high:+.3g}]"
    if math.isfinite(cell.p_value):
        text += f", p={cell.p_value:.2g}"
    return text


def write_csv(cells: Sequence[Cell], path: str | Path) -> Path:
    """``claims.csv``: :data:`CSV_COLUMNS`, one row per cell, numbers in full (empty where undefined)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in cells:
        writer.writerow([c.row, c.claim, c.task, c.verdict, c.metric, _num(c.effect), c.direction, _num(c.ci_low),
                         _num(c.ci_high), _num(c.p_value), _num(c.cohens_d), c.n, c.observed])
    with replacing(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return Path(path)


def _tasks(cells: Sequence[Cell]) -> list[str]:
    return list(dict.fromkeys(c.task for c in cells))


def render_html(cells: Sequence[Cell], title: str, lead: Sequence[str], figures: Mapping[str, Path] | None = None
                ) -> str:
    """The page: ``lead`` paragraphs, the claim × task table (verdict, effect [95% CI], p), the PNG ``figures``
    embedded under their headings, the observations."""
    e = html.escape
    tasks = _tasks(cells)
    by = {(c.row, c.task): c for c in cells}
    head = "".join(f"<th>{e(t)}</th>" for t in tasks)
    body = []
    for row, claim in ROWS.items():
        tds = []
        for task in tasks:
            c = by[(row, task)]
            effect = effect_text(c)
            tds.append(f'<td class="{_CLASS.get(c.verdict, "unobserved")}" title="{e(c.observed)}"><b>{e(c.verdict)}'
                       f'</b>{"<br>" + e(effect) if effect else ""}</td>')
        body.append(f"<tr><td>{e(row)}</td><td>{e(claim)}</td>{''.join(tds)}</tr>")
    notes = []
    for c in cells:
        metric = f" <i>{e(c.metric)}</i> (the claim predicts {e(c.direction)})" if c.metric and c.direction else ""
        notes.append(f"<li><b>{e(c.row)} · {e(c.task)}: {e(c.verdict)}</b>.{metric} {e(c.observed)}</li>")
    css = ("body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1280px;padding:0 1rem;line-height:1.4}"
           "table{border-collapse:collapse;font-size:.85rem}th,td{border:1px solid #d6d6d6;padding:.3rem .45rem;"
           "vertical-align:top}th{background:#f2f4f7}.supported{background:#e7f6ec;color:#0a6e2b}"
           ".contradicted{background:#fbe9e8;color:#a1120e}.tie{background:#fff6d6;color:#6b5200}"
           ".unobserved{background:#f0f0f0;color:#555}li{margin-bottom:.3rem;font-size:.88rem}")
    paragraphs = "".join(f"<p>{e(p)}</p>" for p in lead)
    images = "".join(f'<h2>{e(heading)}</h2>\n<img style="max-width:100%" alt="{e(heading)}" src="data:image/png;'
                     f'base64,{base64.b64encode(Path(path).read_bytes()).decode("ascii")}">\n'
                     for heading, path in (figures or {}).items())
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{e(title)}</title>\n'
            f"<style>{css}</style>\n</head>\n<body>\n<h1>{e(title)}</h1>\n{paragraphs}\n"
            f"<table><thead><tr><th>#</th><th>claim</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>\n"
            f"{images}<h2>What each cell observed</h2>\n<ul>{''.join(notes)}</ul>\n</body>\n</html>\n")


def write_html(cells: Sequence[Cell], path: str | Path, title: str, lead: Sequence[str],
               figures: Mapping[str, Path] | None = None) -> Path:
    """``claims.html``: :func:`render_html`, written atomically."""
    with replacing(path) as tmp:
        tmp.write_text(render_html(cells, title, lead, figures), encoding="utf-8")
    return Path(path)


def render_markdown(cells: Sequence[Cell]) -> str:
    """The claim × task table in Markdown: per cell the verdict (bold when supported or contradicted) and the
    effect [95% CI], p."""
    tasks = _tasks(cells)
    by = {(c.row, c.task): c for c in cells}

    def text(c: Cell) -> str:
        verdict = f"**{c.verdict}**" if c.verdict in (SUPPORTED, CONTRADICTED) else c.verdict
        return f"{verdict} {effect_text(c)}".strip().replace("|", "\\|")

    lines = ["| # | claim | " + " | ".join(tasks) + " |", "|---|---|" + "---|" * len(tasks)]
    lines += [f"| {row} | {claim} | " + " | ".join(text(by[(row, t)]) for t in tasks) + " |"
              for row, claim in ROWS.items()]
    return "\n".join(lines) + "\n"


def write_markdown(cells: Sequence[Cell], path: str | Path) -> Path:
    """``claims.md``: :func:`render_markdown`, written atomically."""
    with replacing(path) as tmp:
        tmp.write_text(render_markdown(cells), encoding="utf-8")
    return Path(path)


def verdict_table(cells: Sequence[Cell]) -> Table:
    """The claim × task table for a terminal: verdict and effect [95% CI] per cell."""
    from rich.table import Table
    from rich.text import Text

    tasks = _tasks(cells)
    by = {(c.row, c.task): c for c in cells}
    table = Table(show_lines=True)
    table.add_column("#")
    table.add_column("claim", max_width=44)
    for task in tasks:
        table.add_column(task, max_width=30)
    for row, claim in ROWS.items():
        cells_ = [Text.assemble((by[(row, t)].verdict, _STYLE.get(by[(row, t)].verdict, "dim")),
                                "\n" + effect_text(by[(row, t)]) if effect_text(by[(row, t)]) else "") for t in tasks]
        table.add_row(row, claim, *cells_)
    return table

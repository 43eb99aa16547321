"""The whole report in one call: figures, ``summary.csv`` and ``report.html`` from a results directory."""

from __future__ import annotations

from pathlib import Path

from lrlab.report.claims import evaluate_claims
from lrlab.report.contents import Report
from lrlab.report.data import load_study
from lrlab.report.drawing import FigureDrawing
from lrlab.report.files import replacing
from lrlab.report.html import render_html
from lrlab.report.recommend import recommend
from lrlab.report.summary import report_notes, summary_rows, write_summary_csv

SUMMARY_NAME = "summary.csv"
REPORT_NAME = "report.html"


def make_report(directory: str | Path) -> Report:
    """Read the store in ``directory``, build the :class:`Report` once and write it there.

    Writes ``figures/*.png``, ``summary.csv`` and ``report.html`` (each file replaced in one step, so a failed
    write leaves the earlier one). Runs still running are ignored (with a note). Raises
    :class:`~lrlab.errors.ConfigError` when the directory holds no store or no finished run.
    """
    directory = Path(directory)
    study = load_study(directory)
    with FigureDrawing(study, directory) as drawing:  # the figures are drawn while the numbers are computed
        rows = summary_rows(study)
        claims, notes, recommendation = evaluate_claims(study), report_notes(study, rows), recommend(study, rows)
        figures = drawing.finish(rows)
    report = Report(directory, study, rows, claims, notes, recommendation, figures, directory / REPORT_NAME,
                    directory / SUMMARY_NAME)
    write_summary_csv(report.csv, report.rows)
    page = render_html(report)
    with replacing(report.html) as tmp:  # a failed write (a full disk) leaves the earlier report as it was
        tmp.write_text(page, encoding="utf-8")
    return report

"""The whole report in one call: figures, ``summary.csv`` and ``report.html`` from a results directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrlab.report.claims import Claim, evaluate_claims
from lrlab.report.data import load_study
from lrlab.report.figures import make_figures
from lrlab.report.html import write_report
from lrlab.report.recommend import Recommendation, recommend
from lrlab.report.summary import report_notes, summary_rows, write_summary_csv

SUMMARY_NAME = "summary.csv"


@dataclass(frozen=True)
class ReportResult:
    """What :func:`make_report` wrote and found.

    ``html`` and ``csv`` are the written files, ``figures`` maps a figure's name to its PNG; ``rows`` are the
    summary rows (best first), ``claims`` the judged claims, ``notes`` the caveats shown in the report and
    ``recommendation`` the schedule to use (None when no run finished).
    """

    directory: Path
    html: Path
    csv: Path
    figures: dict[str, Path]
    rows: list[dict[str, Any]]
    claims: list[Claim]
    notes: list[str]
    recommendation: Recommendation | None


def make_report(directory: str | Path) -> ReportResult:
    """Read the store in ``directory`` and write ``figures/*.png``, ``summary.csv`` and ``report.html`` there.

    Runs still running are ignored (with a note). Raises :class:`~lrlab.errors.ConfigError` when the
    directory holds no store or no finished run.
    """
    directory = Path(directory)
    study = load_study(directory)
    rows = summary_rows(study)
    claims = evaluate_claims(study)
    figures = make_figures(study, directory, rows)
    csv_path = write_summary_csv(directory / SUMMARY_NAME, rows)
    html_path = write_report(directory, study=study, rows=rows, claims=claims, figures=figures)
    return ReportResult(directory, html_path, csv_path, figures, rows, claims, report_notes(study, rows),
                        recommend(study, rows))

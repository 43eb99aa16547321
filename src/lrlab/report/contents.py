"""What a report says: one value, built once from the store, that the HTML page and the terminal only render."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrlab.report.claims import Claim
from lrlab.report.data import Study
from lrlab.report.recommend import Recommendation


@dataclass(frozen=True)
class Report:
    """A study's report: everything :func:`~lrlab.report.make_report` found, and where it wrote it.

    Attributes:
        directory: the results directory.
        study: the runs read from its store.
        rows: the summary rows (:func:`~lrlab.report.summary_rows`), best first.
        claims: the judged claims.
        notes: the caveats shown with the numbers.
        recommendation: the schedule to use (None when no run finished).
        figures: a figure's name -> its PNG, in display order.
        html, csv: ``report.html`` and ``summary.csv``.
    """

    directory: Path
    study: Study
    rows: list[dict[str, Any]]
    claims: list[Claim]
    notes: list[str]
    recommendation: Recommendation | None
    figures: dict[str, Path]
    html: Path
    csv: Path

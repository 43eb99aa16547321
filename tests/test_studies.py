"""The studies lrlab ships, run in full (slow: `python -m pytest -m slow`, a few minutes).

They check the evidence the README and the issues quote: on the default study a decaying schedule beats the
constant baseline beyond seed noise, and on the Post-LN Transformer at a high LR warmup ends clearly better.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from lrlab.cli import main
from lrlab.report.claims import SUPPORTED

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).parent.parent / "examples"


def compare(args: list[str]) -> None:
    threads = torch.get_num_threads()
    try:
        assert main(["compare", *args]) == 0
    finally:
        torch.set_num_threads(threads)


def test_default_study_decaying_schedules_beat_the_constant_baseline(tmp_path: Path) -> None:
    compare(["--out", str(tmp_path)])
    with (tmp_path / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["schedule"] for r in rows][-1] == "constant"  # every schedule beats the baseline on val loss
    assert all(int(r["seeds"]) == 5 and int(r["diverged"]) == 0 for r in rows)
    page = (tmp_path / "report.html").read_text()
    assert page.count(SUPPORTED) >= 4 and "Which schedule?" in page


def test_warmup_study_without_warmup_the_post_ln_transformer_ends_worse(tmp_path: Path) -> None:
    compare(["--config", str(EXAMPLES / "warmup-transformer.yaml"), "--seeds", "2", "--out", str(tmp_path),
             "--schedules", "cosine=cosine()", "warmup-cosine=warmup(steps=60) >> cosine()"])
    with (tmp_path / "summary.csv").open() as f:
        loss = {r["schedule"]: float(r["final_val_loss_mean"]) for r in csv.DictReader(f)}
    assert loss["warmup-cosine"] < loss["cosine"] - 0.3  # measured: ~0.9 nats/char apart

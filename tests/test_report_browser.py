"""The report opens in headless Chromium with every figure decoded (skipped where Chromium is not installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lrlab.config import parse_config
from lrlab.report import make_report
from lrlab.runner import plan_sweep, run_sweep
from lrlab.tune import GridPoint, tune_result

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# a closed network: no background connections, no first-run or sync chatter
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files", "--virtual-time-budget=10000"]

# loads the report in a frame and writes what the browser saw into the page, read back with --dump-dom
HARNESS = """<!doctype html><html><body><iframe id="f" src="{src}"></iframe><script>
document.getElementById("f").addEventListener("load", () => {{
  const doc = document.getElementById("f").contentDocument;
  const out = document.createElement("pre");
  out.id = "result";
  out.textContent = JSON.stringify({{
    title: doc.title, tables: doc.querySelectorAll("table").length,
    external: [...doc.querySelectorAll("[src],link[href]")].map(e => e.src || e.href)
      .filter(u => !u.startsWith("data:")),
    images: [...doc.images].map(i => ({{ok: i.complete && i.naturalWidth > 0, width: i.naturalWidth}}))}});
  document.body.appendChild(out);
}});
</script></body></html>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_report_opens_offline_in_headless_chromium_with_every_figure(tmp_path: Path) -> None:
    config = parse_config({"task": "digits-mlp", "epochs": 2, "seeds": 2, "title": "<b>study</b>",
                           "schedules": {"constant": "constant()", "<i>cos</i>": "cosine()"}})
    out = tmp_path / "results"
    with plan_sweep(config, out) as sweep:
        run_sweep(sweep)
        grid = tune_result([GridPoint(0.03, (0.7, 0.72), (0.8, 0.8)), GridPoint(0.1, (0.5, 0.52), (0.9, 0.9))])
        sweep.store.set_meta("tuned", {"constant": grid.to_dict()})  # as compare --peak-lr tune stores it
    report = make_report(out)
    assert "lr_sensitivity" in report.figures
    harness = tmp_path / "harness.html"
    harness.write_text(HARNESS.format(src=report.html.as_uri()))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          harness.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, flags=re.DOTALL)
    assert found, dom[-2000:]
    seen = json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
                      .replace("&quot;", '"'))
    assert seen["title"] and seen["tables"] >= 2
    assert seen["external"] == []  # self-contained: nothing fetched from disk or network
    assert len(seen["images"]) == len(report.figures) >= 4
    assert all(image["ok"] and image["width"] > 100 for image in seen["images"])
    assert "<i>cos</i>" not in report.html.read_text()  # user strings are escaped

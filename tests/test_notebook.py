"""examples/lr_study.ipynb: paired with its reviewable source examples/lr_study.py, and it runs top to bottom.

Both need the ``notebook`` extra (``pip install -e '.[notebook]'``) and skip without it. The run trains every
study of the notebook at its small budget (about 1.5 min of CPU: ``python -m pytest -m slow
tests/test_notebook.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"
SOURCE, NOTEBOOK = EXAMPLES / "lr_study.py", EXAMPLES / "lr_study.ipynb"


def cells(notebook: dict) -> list[tuple[str, str]]:
    """Each cell's type and source text, in order."""
    return [(cell["cell_type"], "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
            for cell in notebook["cells"]]


def test_notebook_and_its_source_have_the_same_cells() -> None:
    jupytext = pytest.importorskip("jupytext")
    stored = json.loads(NOTEBOOK.read_text())
    assert cells(stored) == cells(jupytext.read(SOURCE))  # else: jupytext --sync examples/lr_study.py
    assert all(not cell.get("outputs") for cell in stored["cells"])  # committed without outputs


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("LR_STUDY_OUT", str(tmp_path / "results"))  # the kernel inherits the environment
    notebook = jupytext.read(SOURCE)
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 8  # the figures, inline
    verdicts = next(o["data"]["text/markdown"] for o in reversed(outputs) if "text/markdown" in o.get("data", {}))
    assert verdicts.count("| mnist1d-mlp |") >= 5 and "| charlm-transformer |" in verdicts

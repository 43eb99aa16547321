"""The docs cannot go stale: every Python example in docs/ runs, and every schedule page shows its figure, drawn
by docs/schedules/make_figures.py (which lists exactly the pages' figures)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
SCHEDULES = DOCS / "schedules"
PAGES = sorted(path for path in SCHEDULES.glob("*.md") if path.name != "README.md")
MARKDOWN = [*sorted(DOCS.glob("*.md")), *sorted(SCHEDULES.glob("*.md")), ROOT / "README.ko.md"]
SECTIONS = ("## Formula", "## Parameters", "## Example", "## When to use it", "## The same schedule elsewhere")
BLOCKS = [(path, code) for path in MARKDOWN if path.exists()
          for code in re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)]


def figure_script():
    spec = importlib.util.spec_from_file_location("make_figures", SCHEDULES / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines the figures; draws nothing on import
    return module


@pytest.mark.parametrize("code", [code for _, code in BLOCKS],
                         ids=[f"{path.relative_to(ROOT)}-{i}" for i, (path, _) in enumerate(BLOCKS)])
def test_docs_python_example_runs(code: str) -> None:
    exec(compile(code, "docs-example", "exec"), {"__name__": "docs_example"})


def test_every_schedule_page_shows_its_figure_and_the_script_draws_exactly_those() -> None:
    shown = {}
    for page in PAGES:
        images = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", page.read_text(encoding="utf-8"))
        assert images == [f"{page.stem}.png"], page.name  # one figure, named after the page
        assert (SCHEDULES / images[0]).is_file(), f"{images[0]}: run python docs/schedules/make_figures.py"
        shown[page.stem] = images[0]
    assert sorted(figure_script().FIGURES) == sorted(shown)


def test_every_schedule_page_has_the_sections_and_the_index_links_it() -> None:
    index = (SCHEDULES / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for section in SECTIONS:
            assert section in text, f"{page.name}: no {section!r}"
        assert f"]({page.name})" in index, f"docs/schedules/README.md does not link {page.name}"


def test_every_spec_name_has_a_page() -> None:
    from lrlab.spec import REGISTRY

    covered = " ".join(page.read_text(encoding="utf-8").split("\n", 1)[0] for page in PAGES)  # the titles
    missing = [name for name in REGISTRY if not re.search(rf"\b{name}\b", covered)]
    assert not missing, f"schedules without a page: {missing}"


def test_relative_links_in_the_docs_point_at_files() -> None:
    for path in MARKDOWN:
        if not path.exists():
            continue
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            assert (path.parent / target).exists(), f"{path.relative_to(ROOT)} links {target}, which does not exist"


def test_korean_quick_start_starts_with_the_readmes_two_commands() -> None:
    def commands(path: Path) -> list[str]:
        head = path.read_text(encoding="utf-8").splitlines()[:6]
        return [line for line in head if line.startswith("python3 -m venv")]

    assert len(commands(ROOT / "README.md")) == 2
    assert commands(ROOT / "README.ko.md") == commands(ROOT / "README.md")

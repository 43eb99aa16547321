"""Every Python example in the README runs (so the docs cannot go stale), and its first lines are the two commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text().splitlines()[:6]
    commands = [line for line in head if line.startswith("python3 -m venv")]
    assert len(commands) == 2
    assert commands[0].endswith("lrlab compare") and "torch==2.13.0" in commands[0]
    assert commands[1].endswith("python -m pytest") and "'.[dev]'" in commands[1]
    extras = re.search(r"pip install -e '(\.\[[^]]*\])'", commands[1]).group(1)
    ci = (README.parent / ".ci" / "run").read_text()
    assert f"pip install -q -e '{extras}'" in ci  # CI installs what the README's test command installs


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_example_runs(code: str) -> None:
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})

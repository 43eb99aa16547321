"""The examples of docs/integrations.md, for the tests that run them (so the page cannot go stale)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).parent.parent / "docs" / "integrations.md"


def doc_example(name: str) -> str:
    """The Python block after ``<!-- example: name -->`` in docs/integrations.md."""
    return re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL).group(1)

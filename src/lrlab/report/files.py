"""Writing the report's files so that a failed write (a full disk, an interrupt) never destroys a good one.

Each file is written to a temporary file beside it and renamed over it in one step (``os.replace``, atomic on
POSIX and Windows), so a reader sees the earlier file or the new one, never a truncated mix.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; when the block ends without an error it replaces ``path``.

    On an error the temporary file is removed and ``path`` keeps what it held. The temporary name keeps the
    suffix (matplotlib picks the format from it) and starts with a dot. Example::

        with replacing(directory / "summary.csv") as tmp:
            tmp.write_text(text)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

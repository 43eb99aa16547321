"""Test settings: hypothesis is derandomized by default, so a run (and CI) is repeatable.

``LRLAB_HYPOTHESIS=explore python -m pytest`` draws fresh random examples (five times as many where a test sets
no count of its own) to hunt for new failing cases; hypothesis prints any it finds, to add as a regression test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from hypothesis import settings

from lrlab.tasks import Task, load_task

settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None,
                          max_examples=5 * settings.get_profile("default").max_examples)
settings.load_profile(os.environ.get("LRLAB_HYPOTHESIS", "repeatable"))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread, as the CLI and every worker use for small models: sequential, vectorized and worker
    results then compare bitwise (on two threads torch's own ``mm`` splits its sums differently)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits() -> Task:
    """The ``digits-mlp`` task, loaded once."""
    return load_task("digits-mlp")

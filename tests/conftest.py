"""Test settings: hypothesis is derandomized by default, so a run (and CI) is repeatable.

``LRLAB_HYPOTHESIS=explore python -m pytest`` draws fresh random examples (five times as many where a test sets
no count of its own) to hunt for new failing cases; hypothesis prints any it finds, to add as a regression test.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None,
                          max_examples=5 * settings.get_profile("default").max_examples)
settings.load_profile(os.environ.get("LRLAB_HYPOTHESIS", "repeatable"))

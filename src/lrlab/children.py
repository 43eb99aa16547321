"""Forked helper processes that never outlive their parent and leave Ctrl-C to it (torch-free).

Used by the training workers (:mod:`lrlab.workers`) and the report's figure workers (:mod:`lrlab.report.drawing`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def become_child_of(parent: int) -> None:
    """Call first in a forked helper of process ``parent``: the kernel kills this process when the parent dies,
    even by ``kill -9`` (``PR_SET_PDEATHSIG``, Linux; elsewhere the helper checks ``os.getppid()`` itself); it exits
    now if the parent is already gone. A Ctrl-C reaches the whole process group, so it is ignored here (the parent
    decides what it stops), and SIGTERM gets its default action back (not the parent's handler, inherited by fork).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

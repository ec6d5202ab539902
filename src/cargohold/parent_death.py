"""A child process of the server that ends when the process that started it does.

When the supervisor is SIGKILLed (the OOM killer, `kill -9`), nothing runs in it to stop
its children: the HTTP workers would go on holding the port, so that a restarted server
fails with "Address already in use", and the background process would go on holding the
database. The kernel can send a child a signal when its parent dies (PR_SET_PDEATHSIG).
Standard library only: the supervisor's children import it first thing.
"""

from __future__ import annotations

import contextlib
import os
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, signum: int) -> None:
    """Have the kernel send `signum` to this process when its parent (pid `parent`) dies;
    exit now if that has happened already."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not glibc
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(0)

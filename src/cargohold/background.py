"""Worker threads of the background process (scanner, webhooks, replication), run the same
way: each opens what it needs, takes one piece of work at a time, sleeps when there is
none, and starts over after an error (the database restarting, say) instead of dying.

    stop = start_workers("scan", 2, lambda: (worker.run_once, stores.close), poll_seconds=2)
    ...
    stop.set()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cargohold.storage.failures import log_failure

log = logging.getLogger(__name__)

# open() -> (step, close): step() does one piece of work and says whether there was any
Opener = Callable[[], tuple[Callable[[], bool], Callable[[], None]]]

REOPEN_DELAY = 5.0  # after the worker could not open its stores
RESTART_DELAY = 1.0  # after a step raised
# Background work yields the CPU to requests: on a small machine a scan of every pushed
# image would otherwise slow the pushes themselves. The background process takes it before
# starting any thread, so every worker thread inherits it.
NICENESS = 10


def start_workers(
    name: str, count: int, opener: Opener, poll_seconds: float
) -> threading.Event | None:
    """Start ``count`` threads named cargohold-NAME-N; set the returned event to stop
    them (None when count is 0)."""
    if count <= 0:
        return None
    stop = threading.Event()
    for n in range(count):
        threading.Thread(
            target=supervise,
            args=(name, opener, poll_seconds, stop),
            name=f"cargohold-{name}-{n}",
            daemon=True,
        ).start()
    return stop


def supervise(name: str, opener: Opener, poll_seconds: float, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            step, close = opener()
        except Exception as exc:
            _log_failure(exc, "%s worker cannot start; retrying", name)
            stop.wait(REOPEN_DELAY)
            continue
        try:
            while not stop.is_set():
                if not step():
                    stop.wait(poll_seconds)
        except Exception as exc:
            _log_failure(exc, "%s worker stopped; restarting", name)
            stop.wait(RESTART_DELAY)
        finally:
            close()


def _log_failure(exc: Exception, message: str, name: str) -> None:
    log_failure(log, exc, message, name)

"""Run a lookup on the event loop only if it needs no I/O.

The hot reads (a manifest by tag or digest, with its pull policies) are answered from
in-process caches most of the time. Handing each one to a worker thread costs more than
the lookup itself (the GIL passes to the woken thread and back), so the HTTP layer first
tries the lookup in `cache_only()` mode on the event loop: every place that would block
(a database connection, a file read) calls `require_io()`, which raises NeedsIO there,
and the caller runs the whole lookup again in a thread. Lookups must therefore have no
side effects before their last I/O-free step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_cache_only: ContextVar[bool] = ContextVar("cargohold_cache_only", default=False)


class NeedsIO(Exception):
    """Raised in cache-only mode where the lookup would block; retry it in a thread."""


def require_io() -> None:
    """Call before blocking I/O; raises NeedsIO in cache-only mode."""
    if _cache_only.get():
        raise NeedsIO


@contextmanager
def cache_only() -> Iterator[None]:
    token = _cache_only.set(True)
    try:
        yield
    finally:
        _cache_only.reset(token)

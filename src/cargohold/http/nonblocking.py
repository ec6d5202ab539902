"""Run a lookup on the event loop when caches answer it, in a thread when it needs I/O.

A thread hand-off costs more than a cached lookup (see cargohold.cache_only), so hot
paths try the lookup in cache-only mode first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from cargohold.cache_only import NeedsIO, cache_only

T = TypeVar("T")


async def cached_or_in_thread(function: Callable[[], T]) -> T:
    try:
        with cache_only():
            return function()
    except NeedsIO:
        return await run_in_threadpool(function)

"""The embedded setup's lookup cache: answers in each process's memory, invalidated
through change counters that every process on the host maps from one small file.

The server's worker processes, its background threads and CLI commands (a rollback, a
GC run) all write through CachedMetadataStore, which bumps the repository's counter after
the write commits. A lookup compares the counter with the one its entry was stored under,
so a change made by any process is seen by every other at once: one 8-byte read from
shared memory, no system call. Counters are per hash slot, not per repository: two
repositories sharing a slot only invalidate each other more often.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import time
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from cargohold.storage.meta.base import ManifestRecord

SLOTS = 1 << 14
_COUNTER = struct.Struct("<Q")
#: Larger manifests are not kept in memory (they are rare, and would crowd out the rest).
MAX_CACHED_MANIFEST = 256 * 1024


class SharedGenerations:
    """Per-slot change counters in a file mapped shared by every process using it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        size = SLOTS * _COUNTER.size
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)  # new pages read as zeros in every process
        self._map = mmap.mmap(self._fd, size, mmap.MAP_SHARED)

    @staticmethod
    def _offset(repository: str) -> int:
        return (zlib.crc32(repository.encode()) % SLOTS) * _COUNTER.size

    def get(self, repository: str) -> int:
        return int(_COUNTER.unpack_from(self._map, self._offset(repository))[0])

    def bump(self, repository: str) -> None:
        offset = self._offset(repository)
        # Increments from several processes must not be lost: one at a time.
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            value = _COUNTER.unpack_from(self._map, offset)[0]
            _COUNTER.pack_into(self._map, offset, value + 1)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class LocalLookupCache:
    """A bounded LRU of answers per process; see the module docstring."""

    def __init__(self, generations: SharedGenerations, max_entries: int, ttl: float) -> None:
        self._generations = generations
        self._max_entries = max_entries
        self._ttl = ttl
        self._entries: OrderedDict[tuple[str, str], tuple[int, float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, repository: str, entry: str) -> tuple[str | None, Any]:
        generation = self._generations.get(repository)
        key = (repository, entry)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                if found[0] == generation and time.monotonic() < found[1]:
                    self._entries.move_to_end(key)
                    return str(generation), found[2]
                del self._entries[key]
        return str(generation), None

    def remember(self, repository: str, generation: str | None, entry: str, value: Any) -> None:
        if generation is None:
            return
        if isinstance(value, ManifestRecord) and len(value.content) > MAX_CACHED_MANIFEST:
            return
        with self._lock:
            self._entries[(repository, entry)] = (
                int(generation),
                time.monotonic() + self._ttl,
                value,
            )
            self._entries.move_to_end((repository, entry))
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def changed(self, repository: str) -> None:
        self._generations.bump(repository)

    def ping(self) -> None:
        self._generations.get("")

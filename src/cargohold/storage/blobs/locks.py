"""Who may write to an upload session right now.

A chunked upload's PATCH requests may reach different replicas; only one request may
append at a time, and a writer that crashed must not wedge the session for ever, so every
lock expires after `ttl` seconds. The S3 store falls back to locks made of conditional
object writes; with Redis configured it uses the locks below, which are atomic on every
S3-compatible service (not all of them implement conditional writes).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Protocol

import redis
from redis.exceptions import LockError
from redis.lock import Lock


class UploadLocks(Protocol):
    def acquire(self, upload_id: str) -> str | None:
        """A token proving ownership, or None while another writer holds the session."""

    def holds(self, upload_id: str, token: str) -> bool:
        """Whether the token still owns the session (it may have expired and been taken)."""

    def release(self, upload_id: str, token: str) -> None:
        """Give the session up; a lock taken over by someone else is left alone."""


class RedisUploadLocks:
    def __init__(self, client: redis.Redis, prefix: str = "cargohold", ttl: float = 3600.0):
        self._client = client
        self._prefix = f"{prefix}:upload-lock:"
        self._ttl = ttl

    def _lock(self, upload_id: str) -> Lock:
        return Lock(
            self._client,
            self._prefix + upload_id,
            timeout=self._ttl,
            blocking=False,
            thread_local=False,  # acquired and released from different worker threads
        )

    def acquire(self, upload_id: str) -> str | None:
        token = uuid.uuid4().hex
        return token if self._lock(upload_id).acquire(token=token) else None

    def holds(self, upload_id: str, token: str) -> bool:
        return self._client.get(self._prefix + upload_id) == token.encode()

    def release(self, upload_id: str, token: str) -> None:
        # LockError: it expired, and perhaps was taken over; no longer ours to release.
        with contextlib.suppress(LockError):
            self._lock(upload_id).do_release(token.encode())

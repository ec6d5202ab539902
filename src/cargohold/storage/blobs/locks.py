"""Who may write to an upload session right now.

A chunked upload's PATCH requests may reach different replicas; only one request may
append at a time, and a writer that crashed must not wedge the session for ever, so every
lock is a lease: it expires after `ttl` seconds unless its holder renews it, which a live
writer does in the background (LeaseKeeper) for as long as it holds the session, however
long its request takes. A crashed writer renews nothing, and a client can resume the
session `ttl` seconds later. The S3 store falls back to locks made of conditional
object writes; with Redis configured it uses the locks below, which are atomic on every
S3-compatible service (not all of them implement conditional writes).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # redis itself only where Redis locks are used (~75 ms to import)
    import redis
    from redis.lock import Lock


class UploadLocks(Protocol):
    def acquire(self, upload_id: str) -> str | None:
        """A token proving ownership, or None while another writer holds the session."""

    def holds(self, upload_id: str, token: str) -> bool:
        """Whether the token still owns the session (it may have expired and been taken)."""

    def renew(self, upload_id: str, token: str) -> bool:
        """Extend the lease by `ttl` from now; False if it was lost (expired and taken)."""

    def release(self, upload_id: str, token: str) -> None:
        """Give the session up; a lock taken over by someone else is left alone."""

    @property
    def ttl(self) -> float: ...


#: Seconds an upload lock lives without renewal: how long a crashed writer's session
#: stays locked. Holders renew it every third of that.
LOCK_TTL = 15.0

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews one lock in a background thread until stopped, or until a renewal fails."""

    def __init__(self, renew: Callable[[], bool], every: float) -> None:
        self._renew = renew
        self._every = every
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name="upload-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                renewed = self._renew()
            except Exception as exc:  # the store is unreachable: the next try may work
                log.warning("upload lock not renewed: %s", exc)
                continue
            if not renewed:
                self.lost = True
                return

    def stop(self) -> None:
        self._stop.set()


class RedisUploadLocks:
    def __init__(self, client: redis.Redis, prefix: str = "cargohold", ttl: float = LOCK_TTL):
        self._client = client
        self._prefix = f"{prefix}:upload-lock:"
        self._ttl = ttl

    def _lock(self, upload_id: str) -> Lock:
        from redis.lock import Lock

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

    @property
    def ttl(self) -> float:
        return self._ttl

    def holds(self, upload_id: str, token: str) -> bool:
        return self._client.get(self._prefix + upload_id) == token.encode()

    def renew(self, upload_id: str, token: str) -> bool:
        from redis.exceptions import LockError

        lock = self._lock(upload_id)
        lock.local.token = token.encode()
        try:
            return bool(lock.reacquire())
        except LockError:  # expired, perhaps taken over
            return False

    def release(self, upload_id: str, token: str) -> None:
        from redis.exceptions import LockError

        # LockError: it expired, and perhaps was taken over; no longer ours to release.
        with contextlib.suppress(LockError):
            self._lock(upload_id).do_release(token.encode())

"""Pull events, recorded only for namespaces where a webhook subscribes to them.

Pulls are the hot path: the check "does any enabled webhook of this namespace want pull
events?" is cached per process for SUBSCRIBERS_TTL seconds, and the events are written
by a background thread in batches, never by the request that pulled.

    recorder = PullEvents(engine)
    recorder.pulled("team/app", "1.0", digest, media_type, actor)   # returns at once
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any

from sqlalchemy import Engine, select

from cargohold.events import PULL, event_values, namespace_of
from cargohold.storage.meta import models as m
from cargohold.storage.meta.sqlbase import SqlBase

log = logging.getLogger(__name__)

SUBSCRIBERS_TTL = 5.0
BATCH = 500
_QUEUE_LIMIT = 10_000  # beyond this, pull events are dropped (and logged), pulls go on


class PullEvents(SqlBase):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._wanted: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(_QUEUE_LIMIT)
        self._thread: threading.Thread | None = None
        self._dropped = 0

    def wanted(self, namespace: str) -> bool:
        at = time.monotonic()
        with self._lock:
            cached = self._wanted.get(namespace)
        if cached is not None and at - cached[0] < SUBSCRIBERS_TTL:
            return cached[1]
        w = m.webhooks.c
        with self._read() as conn:
            rows = conn.execute(
                select(w.event_types).where(w.namespace == namespace, w.enabled.is_(True))
            ).scalars()
            answer = any(PULL in json.loads(types or "[]") for types in rows)
        with self._lock:
            self._wanted[namespace] = (at, answer)
        return answer

    def pulled(
        self,
        repository: str,
        reference: str,
        digest: str,
        media_type: str,
        actor: str | None,
    ) -> None:
        """Note a pull (a manifest GET); recorded later if the namespace wants it."""
        if not self.wanted(namespace_of(repository)):
            return
        tag = None if ":" in reference else reference  # a digest has a colon, a tag never
        values = event_values(
            PULL, repository, digest=digest, tag=tag, media_type=media_type, actor=actor
        )
        try:
            self._queue.put_nowait(values)
        except queue.Full:
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.warning("pull events dropped: the writer falls behind (%d)", self._dropped)
            return
        self._ensure_writer()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every noted pull is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._write_forever, name="cargohold-pull-events", daemon=True
                )
                self._thread.start()

    def _write_forever(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                with self._write() as conn:
                    conn.execute(m.events.insert(), batch)
            except Exception:
                log.exception("%d pull events not recorded", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

"""The audit log: who did what, to what, when, from where, and whether it worked.

Requests record events into an in-process buffer that a background thread writes in
batches, so a pull costs no extra database transaction; management commands write
directly. At most one flush interval of events is lost if the process is killed.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from cargohold.storage.meta import models as m
from cargohold.storage.meta.sqlbase import SqlBase, now

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
MAX_QUERY = 1000


@dataclass(frozen=True, slots=True)
class AuditEvent:
    actor: str
    action: str  # push, pull, delete, login, login_failed, permission, ...
    target: str
    outcome: str = "ok"
    address: str | None = None
    detail: dict[str, Any] | None = None
    at: datetime = field(default_factory=now)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "address": self.address,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "detail": self.detail,
        }


class AuditStore(SqlBase):
    def add(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        rows = [
            {
                "at": e.at,
                "actor": e.actor,
                "address": e.address,
                "action": e.action,
                "target": e.target,
                "outcome": e.outcome,
                "detail": json.dumps(e.detail) if e.detail else None,
            }
            for e in events
        ]
        with self._write() as conn:
            conn.execute(m.audit_events.insert(), rows)

    def query(
        self,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first. `target` matches a repository and everything below it."""
        t = m.audit_events
        query = select(t).order_by(t.c.id.desc()).limit(min(limit, MAX_QUERY))
        if actor is not None:
            query = query.where(t.c.actor == actor)
        if action is not None:
            query = query.where(t.c.action == action)
        if target is not None:
            query = query.where((t.c.target == target) | t.c.target.startswith(f"{target}/"))
        if since is not None:
            query = query.where(t.c.at >= since)
        if until is not None:
            query = query.where(t.c.at < until)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEvent(
                actor=r.actor,
                action=r.action,
                target=r.target,
                outcome=r.outcome,
                address=r.address,
                detail=json.loads(r.detail) if r.detail else None,
                at=r.at,
            )
            for r in rows
        ]


class AuditLog:
    """Buffers events from request handlers and writes them in batches."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[AuditEvent | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def record(self, event: AuditEvent) -> None:
        self._queue.put(event)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        running = True
        while running:
            batch: list[AuditEvent] = []
            try:
                item = self._queue.get(timeout=FLUSH_SECONDS)
                while True:
                    if item is None:
                        running = False
                        break
                    batch.append(item)
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self._store.add(batch)
            except Exception:  # a full disk must not take the registry down with it
                log.exception("could not write %d audit events", len(batch))

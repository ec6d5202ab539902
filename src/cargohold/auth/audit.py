"""The audit log: who did what, to what, when, from where, and whether it worked.

Requests record events into an in-process buffer that a background thread writes in
batches, so a pull costs no extra database transaction; management commands write
directly. At most one flush interval of events is lost if the process is killed.
Identical pulls within one batch (same actor, address, repository and manifest) become
one event with a count: a busy registry pulls the same image thousands of times a second.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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


def coalesce_pulls(events: list[AuditEvent]) -> list[AuditEvent]:
    """Merge identical pull events, keeping the first time and counting the rest."""
    merged: dict[tuple[object, ...], tuple[AuditEvent, int]] = {}
    result: list[AuditEvent | tuple[object, ...]] = []
    for event in events:
        if event.action != "pull":
            result.append(event)
            continue
        detail = tuple(sorted((event.detail or {}).items()))
        key = (event.actor, event.address, event.target, event.outcome, detail)
        if key in merged:
            first, count = merged[key]
            merged[key] = (first, count + 1)
        else:
            merged[key] = (event, 1)
            result.append(key)
    out: list[AuditEvent] = []
    for item in result:
        if isinstance(item, AuditEvent):
            out.append(item)
            continue
        first, count = merged[item]
        if count > 1:
            first = replace(first, detail={**(first.detail or {}), "count": count})
        out.append(first)
    return out


class AuditLog:
    """Buffers events from request handlers and writes them in batches."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[AuditEvent] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def record(self, event: AuditEvent) -> None:
        self._queue.put(event)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        # Sleep, then take everything queued: the writer never wakes per event, so a busy
        # registry pays two small write transactions a second for its audit trail.
        while not self._stop.wait(FLUSH_SECONDS):
            self._flush()
        self._flush()

    def _flush(self) -> None:
        batch: list[AuditEvent] = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        try:
            self._store.add(coalesce_pulls(batch))
        except Exception:  # a full disk must not take the registry down with it
            log.exception("could not write %d audit events", len(batch))

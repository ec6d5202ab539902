"""The durable event log: what happened in the registry, in order, for any consumer.

Every change worth telling someone about is a row of ``events``: pushes, tags created,
moved or deleted, manifests deleted (written by the metadata store in the change's own
transaction, so an acknowledged push always has its event and a rolled-back one never
does), completed scans (the scanner), refused pushes over quota. Consumers read the log
in id order from their own cursor (``event_cursors``): webhooks now, replication later.

    log = EventLog(engine)
    log.record(SCAN_COMPLETED, "team/app", digest="sha256:...", data={...})
    for event in log.after(log.cursor("webhooks"), 100): ...

Inside another store's write transaction use ``record_in(conn, ...)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update

from cargohold.storage.meta import models as m
from cargohold.storage.meta.sqlbase import SqlBase, now

__all__ = [
    "DELETE",
    "EVENT_TYPES",
    "PING",
    "PULL",
    "PUSH",
    "QUOTA_EXCEEDED",
    "REPLICATION_FINISHED",
    "SCAN_COMPLETED",
    "TAG_CREATED",
    "TAG_MOVED",
    "Event",
    "EventLog",
    "namespace_of",
    "record_event",
    "record_in",
]

PUSH = "push"  # a manifest newly stored in a repository
TAG_CREATED = "tag_created"  # a tag now names a manifest, where it named none
TAG_MOVED = "tag_moved"  # a tag now names another manifest
DELETE = "delete"  # a manifest (with its tags) or a tag deleted
PULL = "pull"  # a manifest fetched by tag or digest (recorded only when subscribed)
SCAN_COMPLETED = "scan_completed"  # a vulnerability scan result stored
QUOTA_EXCEEDED = "quota_exceeded"  # a push refused: the namespace's quota is used up
REPLICATION_FINISHED = "replication_finished"  # a replication run ended
PING = "ping"  # a test delivery; never dispatched to other webhooks

# What a webhook may subscribe to, in documentation order.
EVENT_TYPES = (
    PUSH,
    TAG_CREATED,
    TAG_MOVED,
    DELETE,
    PULL,
    SCAN_COMPLETED,
    QUOTA_EXCEEDED,
    REPLICATION_FINISHED,
)


def namespace_of(repository: str) -> str:
    """The namespace a repository belongs to: its first path component."""
    return repository.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    namespace: str | None
    repository: str | None
    digest: str | None
    tag: str | None
    media_type: str | None
    actor: str | None
    occurred_at: datetime
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "namespace": self.namespace,
            "repository": self.repository,
            "digest": self.digest,
            "tag": self.tag,
            "media_type": self.media_type,
            "actor": self.actor,
            "data": self.data,
        }


def event_values(
    type: str,
    repository: str | None = None,
    *,
    namespace: str | None = None,
    digest: str | None = None,
    tag: str | None = None,
    media_type: str | None = None,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """One ``events`` row; the namespace defaults to the repository's."""
    if namespace is None and repository:
        namespace = namespace_of(repository)
    return {
        "type": type,
        "namespace": namespace,
        "repository": repository,
        "digest": digest,
        "tag": tag,
        "media_type": media_type,
        "actor": (actor or None) and actor[:255],
        "occurred_at": occurred_at or now(),
        "data": json.dumps(data, sort_keys=True) if data else None,
    }


# Built once: appended in every push's transaction (see SqlBase._prepared).
_INSERT_EVENT = m.events.insert()


def record_in(conn: Connection, type: str, repository: str | None = None, **fields: Any) -> int:
    """Append an event inside the caller's transaction; its id."""
    result = conn.execute(_INSERT_EVENT, event_values(type, repository, **fields))
    return int(result.inserted_primary_key[0])


def record_event(engine: Engine, type: str, repository: str | None = None, **fields: Any) -> int:
    """Append an event in a transaction of its own; its id."""
    return EventLog(engine).record(type, repository, **fields)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def event_from_row(row: Any) -> Event:
    return Event(
        id=int(row.id),
        type=row.type,
        namespace=row.namespace,
        repository=row.repository,
        digest=row.digest,
        tag=row.tag,
        media_type=row.media_type,
        actor=row.actor,
        occurred_at=_aware(row.occurred_at),
        data=json.loads(row.data) if row.data else {},
    )


class EventLog(SqlBase):
    def record(self, type: str, repository: str | None = None, **fields: Any) -> int:
        with self._write() as conn:
            return record_in(conn, type, repository, **fields)

    def get(self, event_id: int) -> Event | None:
        with self._read() as conn:
            row = conn.execute(select(m.events).where(m.events.c.id == event_id)).first()
        return None if row is None else event_from_row(row)

    def after(self, last_id: int, limit: int = 100, namespace: str | None = None) -> list[Event]:
        """Events with ids above ``last_id``, oldest first."""
        query = select(m.events).where(m.events.c.id > last_id)
        if namespace is not None:
            query = query.where(m.events.c.namespace == namespace)
        with self._read() as conn:
            rows = conn.execute(query.order_by(m.events.c.id).limit(limit)).all()
        return [event_from_row(row) for row in rows]

    def latest_id(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.max(m.events.c.id))).scalar() or 0)

    # -- cursors: how far each consumer has read
    def cursor(self, consumer: str) -> int:
        with self._read() as conn:
            return cursor_in(conn, consumer)

    def advance(self, consumer: str, last_event_id: int, expected: int | None = None) -> bool:
        with self._write() as conn:
            return self.advance_in(conn, consumer, last_event_id, expected)

    def advance_in(
        self, conn: Connection, consumer: str, last_event_id: int, expected: int | None = None
    ) -> bool:
        """Move ``consumer``'s cursor inside the caller's transaction. With ``expected``,
        only if the cursor is still there (False: another replica moved it first)."""
        c = m.event_cursors.c
        conn.execute(
            self._insert(m.event_cursors)
            .values(consumer=consumer, last_event_id=0, updated_at=now())
            .on_conflict_do_nothing(index_elements=["consumer"])
        )
        statement = update(m.event_cursors).where(c.consumer == consumer)
        if expected is not None:
            statement = statement.where(c.last_event_id == expected)
        values = {"last_event_id": last_event_id, "updated_at": now()}
        return bool(conn.execute(statement.values(**values)).rowcount)

    def purge(self, older_than: timedelta) -> int:
        """Delete events older than ``older_than`` that every consumer has read; returns
        how many went."""
        with self._write() as conn:
            cursors = conn.execute(select(func.min(m.event_cursors.c.last_event_id))).scalar()
            if cursors is None:
                return 0  # no consumer has started: keep everything for them
            e = m.events.c
            return int(
                conn.execute(
                    delete(m.events).where(e.id <= int(cursors), e.occurred_at < now() - older_than)
                ).rowcount
            )


def cursor_in(conn: Connection, consumer: str) -> int:
    value = conn.execute(
        select(m.event_cursors.c.last_event_id).where(m.event_cursors.c.consumer == consumer)
    ).scalar()
    return int(value or 0)

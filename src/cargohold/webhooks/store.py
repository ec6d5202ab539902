"""Webhooks and their delivery log, in the metadata database.

A delivery is one event for one webhook. It is queued by the dispatcher, claimed by a
delivery worker with a lease (state ``sending``; a worker that dies mid-request leaves a
row whose lease runs out and the next claim takes it again), then ``delivered`` (2xx) or
back to ``queued`` with a later ``next_attempt_at``, and ``failed`` after the last attempt.
Claims are one conditional UPDATE, so any number of workers and replicas share the queue.
Every attempt is kept in ``history`` (time, status code, error, duration).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update

from cargohold.secretbox import SecretBox
from cargohold.storage.meta import models as m
from cargohold.storage.meta.sqlbase import SqlBase, now

QUEUED = "queued"
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
STATES = (QUEUED, SENDING, DELIVERED, FAILED)
HISTORY_KEEP = 20  # attempts kept per delivery


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    namespace: str
    url: str
    event_types: list[str]
    enabled: bool
    description: str | None
    created_at: datetime
    created_by: str | None
    updated_at: datetime

    def wants(self, event_type: str) -> bool:
        return self.enabled and event_type in self.event_types

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "url": self.url,
            "events": self.event_types,
            "enabled": self.enabled,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: int
    event_id: int
    event_type: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    response_excerpt: str | None
    created_at: datetime
    delivered_at: datetime | None
    duration_ms: int | None
    history: list[dict[str, Any]] = field(default_factory=list)
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "response_excerpt": self.response_excerpt,
            "created_at": self.created_at.isoformat(),
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "duration_ms": self.duration_ms,
            "history": self.history,
        }


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=int(row.id),
        namespace=row.namespace,
        url=row.url,
        event_types=json.loads(row.event_types),
        enabled=bool(row.enabled),
        description=row.description,
        created_at=_aware(row.created_at),  # type: ignore[arg-type]
        created_by=row.created_by,
        updated_at=_aware(row.updated_at),  # type: ignore[arg-type]
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=int(row.id),
        webhook_id=int(row.webhook_id),
        event_id=int(row.event_id),
        event_type=row.event_type,
        state=row.state,
        attempts=int(row.attempts),
        next_attempt_at=_aware(row.next_attempt_at),  # type: ignore[arg-type]
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        response_excerpt=row.response_excerpt,
        created_at=_aware(row.created_at),  # type: ignore[arg-type]
        delivered_at=_aware(row.delivered_at),
        duration_ms=row.duration_ms,
        history=json.loads(row.history) if row.history else [],
        worker=row.worker,
    )


def delivery_values(webhook_id: int, event_id: int, event_type: str) -> dict[str, Any]:
    at = now()
    return {
        "webhook_id": webhook_id,
        "event_id": event_id,
        "event_type": event_type,
        "state": QUEUED,
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
    }


class WebhookStore(SqlBase):
    def __init__(self, engine: Engine, box: SecretBox | None = None) -> None:
        super().__init__(engine)
        self._box = box

    # -- webhooks
    def create(
        self,
        namespace: str,
        url: str,
        secret: str,
        event_types: list[str],
        *,
        enabled: bool = True,
        description: str | None = None,
        created_by: str | None = None,
    ) -> Webhook:
        at = now()
        with self._write() as conn:
            result = conn.execute(
                insert(m.webhooks).values(
                    namespace=namespace,
                    url=url,
                    secret=self._seal(secret),
                    event_types=json.dumps(list(event_types)),
                    enabled=enabled,
                    description=description,
                    created_at=at,
                    created_by=created_by,
                    updated_at=at,
                )
            )
            webhook_id = int(result.inserted_primary_key[0])
        found = self.get(namespace, webhook_id)
        assert found is not None
        return found

    def _seal(self, secret: str) -> str:
        if self._box is None:
            raise RuntimeError("a WebhookStore without a SecretBox cannot store secrets")
        return self._box.seal(secret)

    def list(self, namespace: str | None = None) -> list[Webhook]:
        query = select(m.webhooks).order_by(m.webhooks.c.id)
        if namespace is not None:
            query = query.where(m.webhooks.c.namespace == namespace)
        with self._read() as conn:
            return [_webhook(row) for row in conn.execute(query)]

    def enabled(self) -> list[Webhook]:
        with self._read() as conn:
            rows = conn.execute(select(m.webhooks).where(m.webhooks.c.enabled.is_(True)))
            return [_webhook(row) for row in rows]

    def get(self, namespace: str, webhook_id: int) -> Webhook | None:
        with self._read() as conn:
            row = conn.execute(
                select(m.webhooks).where(
                    m.webhooks.c.id == webhook_id, m.webhooks.c.namespace == namespace
                )
            ).first()
        return None if row is None else _webhook(row)

    def by_id(self, webhook_id: int) -> Webhook | None:
        with self._read() as conn:
            row = conn.execute(select(m.webhooks).where(m.webhooks.c.id == webhook_id)).first()
        return None if row is None else _webhook(row)

    def secret(self, webhook_id: int) -> str:
        if self._box is None:
            raise RuntimeError("a WebhookStore without a SecretBox cannot read secrets")
        with self._read() as conn:
            sealed = conn.execute(
                select(m.webhooks.c.secret).where(m.webhooks.c.id == webhook_id)
            ).scalar_one()
        return self._box.open(sealed)

    def update(self, namespace: str, webhook_id: int, **changes: Any) -> Webhook | None:
        """Change url, secret, event_types, enabled or description; None: no such webhook."""
        values: dict[str, Any] = {"updated_at": now()}
        for name, value in changes.items():
            if name == "secret":
                values["secret"] = self._seal(value)
            elif name == "event_types":
                values["event_types"] = json.dumps(list(value))
            elif name in ("url", "enabled", "description"):
                values[name] = value
            else:
                raise TypeError(f"unknown webhook field {name}")
        with self._write() as conn:
            done = conn.execute(
                update(m.webhooks)
                .where(m.webhooks.c.id == webhook_id, m.webhooks.c.namespace == namespace)
                .values(**values)
            ).rowcount
        return self.get(namespace, webhook_id) if done else None

    def delete(self, namespace: str, webhook_id: int) -> bool:
        """Remove the webhook and its delivery log."""
        d = m.webhook_deliveries
        with self._write() as conn:
            owned = conn.execute(
                select(m.webhooks.c.id).where(
                    m.webhooks.c.id == webhook_id, m.webhooks.c.namespace == namespace
                )
            ).first()
            if owned is None:
                return False
            conn.execute(delete(d).where(d.c.webhook_id == webhook_id))
            conn.execute(delete(m.webhooks).where(m.webhooks.c.id == webhook_id))
            return True

    # -- deliveries
    def enqueue_in(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(insert(m.webhook_deliveries), rows)

    def enqueue(self, webhook_id: int, event_id: int, event_type: str) -> int:
        with self._write() as conn:
            result = conn.execute(
                insert(m.webhook_deliveries).values(
                    **delivery_values(webhook_id, event_id, event_type)
                )
            )
            return int(result.inserted_primary_key[0])

    def delivery(self, delivery_id: int) -> Delivery | None:
        d = m.webhook_deliveries
        with self._read() as conn:
            row = conn.execute(select(d).where(d.c.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def deliveries(
        self, webhook_id: int, limit: int = 50, state: str | None = None
    ) -> list[Delivery]:
        """The webhook's deliveries, newest first."""
        d = m.webhook_deliveries
        query = select(d).where(d.c.webhook_id == webhook_id)
        if state is not None:
            query = query.where(d.c.state == state)
        with self._read() as conn:
            rows = conn.execute(query.order_by(d.c.id.desc()).limit(limit))
            return [_delivery(row) for row in rows]

    def counts(self) -> dict[str, int]:
        d = m.webhook_deliveries
        with self._read() as conn:
            rows = conn.execute(select(d.c.state, func.count()).group_by(d.c.state))
            found = {row[0]: int(row[1]) for row in rows}
        return {state: found.get(state, 0) for state in STATES}

    def claim(
        self, worker: str, lease_seconds: float, delivery_id: int | None = None
    ) -> Delivery | None:
        """The oldest due delivery (or the one named), now leased to ``worker``."""
        d = m.webhook_deliveries

        def due(at: datetime) -> Any:
            if delivery_id is not None:
                return and_(d.c.id == delivery_id, d.c.state == QUEUED)
            return or_(
                and_(d.c.state == QUEUED, d.c.next_attempt_at <= at),
                and_(d.c.state == SENDING, d.c.lease_until < at),
            )

        claimed = self._claim_due(
            d,
            due,
            [d.c.next_attempt_at, d.c.id],
            lambda at: {
                "state": SENDING,
                "worker": worker[:100],
                "attempts": d.c.attempts + 1,
                "lease_until": at + timedelta(seconds=lease_seconds),
            },
        )
        return None if claimed is None else self.delivery(claimed)

    def record_attempt(
        self,
        delivery: Delivery,
        *,
        status_code: int | None,
        error: str | None,
        excerpt: str | None,
        duration_ms: int,
        retry_in: float | None,
    ) -> Delivery | None:
        """Store one attempt's outcome: delivered when there is no error, else queued
        again after ``retry_in`` seconds, or failed when that is None. None when the lease
        was lost to another worker meanwhile (that worker's outcome stands)."""
        d = m.webhook_deliveries
        at = now()
        entry = {
            "at": at.isoformat(),
            "attempt": delivery.attempts,
            "status_code": status_code,
            "error": error,
            "duration_ms": duration_ms,
        }
        history = [*delivery.history, entry][-HISTORY_KEEP:]
        values: dict[str, Any] = {
            "last_status_code": status_code,
            "last_error": error,
            "response_excerpt": excerpt,
            "duration_ms": duration_ms,
            "history": json.dumps(history),
            "lease_until": None,
        }
        if error is None:
            values.update(state=DELIVERED, delivered_at=at)
        elif retry_in is None:
            values.update(state=FAILED)
        else:
            values.update(state=QUEUED, next_attempt_at=at + timedelta(seconds=retry_in))
        with self._write() as conn:
            done = conn.execute(
                update(d)
                .where(
                    d.c.id == delivery.id,
                    d.c.state == SENDING,
                    d.c.worker == (delivery.worker or "")[:100],
                )
                .values(**values)
            ).rowcount
        return self.delivery(delivery.id) if done else None

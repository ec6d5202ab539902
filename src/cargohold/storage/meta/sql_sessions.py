"""Web UI sessions kept in the metadata database, so that every replica sees a sign-out.

A session is known by a random id that only its cookie carries; the table holds the
SHA-256 of that id. A session is live while its row exists and it was seen within the
idle timeout; ending a session deletes its row, so a copied cookie stops working at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update

from cargohold.storage.meta import models as m
from cargohold.storage.meta.sqlbase import SqlBase, now

t = m.ui_sessions


def id_hash(session_id: str) -> str:
    """What the table stores of a session id (never the id itself)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything written here is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id_hash: str
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    address: str | None
    user_agent: str | None


def _record(row: object) -> SessionRecord:
    return SessionRecord(
        id_hash=row.id_hash,  # type: ignore[attr-defined]
        user_id=row.user_id,  # type: ignore[attr-defined]
        created_at=_aware(row.created_at),  # type: ignore[attr-defined]
        last_seen_at=_aware(row.last_seen_at),  # type: ignore[attr-defined]
        address=row.address,  # type: ignore[attr-defined]
        user_agent=row.user_agent,  # type: ignore[attr-defined]
    )


class SessionStore(SqlBase):
    def start(
        self,
        session_id: str,
        user_id: int,
        address: str | None,
        user_agent: str | None,
        idle: timedelta,
    ) -> None:
        """Record a new session; sessions idle past `idle` (anyone's) are removed on the way,
        so the table holds live sessions only, without a cleanup job."""
        at = now()
        with self._write() as conn:
            conn.execute(delete(t).where(t.c.last_seen_at < at - idle))
            conn.execute(
                t.insert().values(
                    id_hash=id_hash(session_id),
                    user_id=user_id,
                    created_at=at,
                    last_seen_at=at,
                    address=(address or None) and address[:64],
                    user_agent=(user_agent or None) and user_agent[:255],
                )
            )

    def live(self, session_id: str, idle: timedelta) -> SessionRecord | None:
        """The session if it exists and was seen within `idle`."""
        with self._read() as conn:
            row = conn.execute(
                select(t).where(
                    t.c.id_hash == id_hash(session_id), t.c.last_seen_at >= now() - idle
                )
            ).first()
        return None if row is None else _record(row)

    def touch(self, session_id: str) -> None:
        """The session was used now (callers do it at most once a minute)."""
        with self._write() as conn:
            conn.execute(
                update(t).where(t.c.id_hash == id_hash(session_id)).values(last_seen_at=now())
            )

    def of_user(self, user_id: int, idle: timedelta) -> list[SessionRecord]:
        """The user's live sessions, the most recently used first."""
        with self._read() as conn:
            rows = conn.execute(
                select(t)
                .where(t.c.user_id == user_id, t.c.last_seen_at >= now() - idle)
                .order_by(t.c.last_seen_at.desc(), t.c.id_hash)
            ).all()
        return [_record(row) for row in rows]

    def end(self, session_id: str) -> bool:
        return self.end_hash(id_hash(session_id))

    def end_hash(self, hashed: str, user_id: int | None = None) -> bool:
        """End the session with this hash (only if it is `user_id`'s, when given)."""
        condition = t.c.id_hash == hashed
        if user_id is not None:
            condition = condition & (t.c.user_id == user_id)
        with self._write() as conn:
            return bool(conn.execute(delete(t).where(condition)).rowcount)

    def end_all(self, user_id: int, keep: str | None = None) -> int:
        """End every session of the user (but the one with id `keep`); how many ended."""
        condition = t.c.user_id == user_id
        if keep is not None:
            condition = condition & (t.c.id_hash != id_hash(keep))
        with self._write() as conn:
            return int(conn.execute(delete(t).where(condition)).rowcount)

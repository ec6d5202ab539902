"""Tags as versions: every change recorded, protected tags refused, history queries.

The write helpers run inside the caller's transaction, so a tag change and its history
entry commit together or not at all, and the immutability check sees the same state the
change applies to. On PostgreSQL the repository row is locked first, so two replicas
moving tags of one repository at once record each other's digests correctly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from cargohold.errors import Conflict, TagImmutable
from cargohold.storage.meta import models as m
from cargohold.storage.meta.base import (
    ChangeOrigin,
    ImmutableRule,
    TagEvent,
    TagRecord,
)
from cargohold.storage.meta.sqlbase import SqlBase
from cargohold.storage.meta.sqlbase import now as _now

_EVENT_COLUMNS = (
    m.tag_events.c.id,
    m.tag_events.c.tag,
    m.tag_events.c.action,
    m.tag_events.c.old_digest,
    m.tag_events.c.new_digest,
    m.tag_events.c.via,
    m.tag_events.c.actor,
    m.tag_events.c.at,
)


class SqlVersioning(SqlBase):
    # When set, tag changes (and, in sql.py, pushes and deletions) are appended to the
    # event log (cargohold.events) in the change's own transaction.
    record_events = False

    # -- used inside transactions
    def _repository_id(self, conn: Connection, name: str) -> int | None:
        query = self._prepared(
            "repository id",
            lambda: select(m.repositories.c.id).where(m.repositories.c.name == bindparam("name")),
        )
        value = conn.execute(query, {"name": name}).scalar()
        return None if value is None else int(value)

    def _lock_repository(self, conn: Connection, repo_id: int) -> None:
        """Serialize tag changes per repository (SQLite's BEGIN IMMEDIATE already does)."""
        if not self._sqlite:
            conn.execute(
                select(m.repositories.c.id).where(m.repositories.c.id == repo_id).with_for_update()
            )

    def _current_tags(self, conn: Connection, repo_id: int, tags: list[str]) -> dict[str, str]:
        """tag -> digest it names now, for those of `tags` that exist."""
        if not tags:
            return {}
        query = self._prepared(
            "current tags",
            lambda: (
                select(m.tags.c.name, m.manifests.c.digest)
                .join(m.manifests, m.manifests.c.id == m.tags.c.manifest_id)
                .where(
                    m.tags.c.repository_id == bindparam("repository_id"),
                    m.tags.c.name.in_(bindparam("tags", expanding=True)),
                )
            ),
        )
        rows = conn.execute(query, {"repository_id": repo_id, "tags": tags})
        return {row.name: row.digest for row in rows}

    def _rules_in(self, conn: Connection, namespace: str) -> list[ImmutableRule]:
        query = self._prepared(
            "immutable rules",
            lambda: (
                select(m.immutable_tag_rules)
                .where(m.immutable_tag_rules.c.namespace == bindparam("namespace"))
                .order_by(m.immutable_tag_rules.c.id)
            ),
        )
        return [_rule(row) for row in conn.execute(query, {"namespace": namespace})]

    def _refuse_protected(
        self, conn: Connection, repository: str, tags: list[str], doing: str
    ) -> None:
        """TagImmutable naming the rule, if a rule protects one of `tags`."""
        if not tags:
            return
        for rule in self._rules_in(conn, repository.split("/", 1)[0]):
            for tag in tags:
                if rule.applies_to(repository, tag):
                    raise TagImmutable(
                        f"tag {tag} of {repository} is immutable ({rule.describe()}): "
                        f"it cannot be {doing}; push a new tag instead, or ask a namespace "
                        "admin to remove the rule",
                        detail={"tag": tag, "rule": rule.id, "pattern": rule.pattern},
                    )

    def _upsert_tag(self) -> Any:
        statement = self._insert(m.tags)
        return statement.on_conflict_do_update(
            index_elements=["repository_id", "name"],
            set_={
                "manifest_id": statement.excluded.manifest_id,
                "updated_at": statement.excluded.updated_at,
            },
        )

    def _set_tags(
        self,
        conn: Connection,
        repo_id: int,
        repository: str,
        manifest_id: int,
        digest: str,
        tags: list[str],
        origin: ChangeOrigin,
    ) -> list[dict[str, Any]]:
        """Point `tags` at the manifest and record each change; the recorded rows."""
        self._lock_repository(conn, repo_id)
        current = self._current_tags(conn, repo_id, tags)
        moving = [tag for tag in tags if tag in current and current[tag] != digest]
        self._refuse_protected(conn, repository, moving, "moved")
        now = _now()
        events = []
        for tag in tags:
            old = current.get(tag)
            if old == digest:
                continue
            conn.execute(
                self._prepared("upsert tag", self._upsert_tag),
                {
                    "repository_id": repo_id,
                    "name": tag,
                    "manifest_id": manifest_id,
                    "updated_at": now,
                },
            )
            events.append(
                _event_row(repo_id, tag, "moved" if old else "created", old, digest, origin, now)
            )
        if events:
            conn.execute(self._prepared("insert tag events", m.tag_events.insert), events)
            if self.record_events:
                _log_tag_changes(conn, repository, events)
        return events

    def _record_deletions(
        self,
        conn: Connection,
        repo_id: int,
        removed: Mapping[str, str],
        origin: ChangeOrigin,
    ) -> None:
        now = _now()
        rows = [
            _event_row(repo_id, tag, "deleted", digest, None, origin, now)
            for tag, digest in removed.items()
        ]
        if rows:
            conn.execute(m.tag_events.insert(), rows)

    # -- history
    def tag_history(
        self,
        repository: str,
        tag: str | None = None,
        *,
        before_id: int | None = None,
        at_or_before: datetime | None = None,
        limit: int = 100,
    ) -> list[TagEvent]:
        query = (
            select(*_EVENT_COLUMNS)
            .join(m.repositories, m.repositories.c.id == m.tag_events.c.repository_id)
            .where(m.repositories.c.name == repository)
            .order_by(m.tag_events.c.id.desc())
            .limit(limit)
        )
        if tag is not None:
            query = query.where(m.tag_events.c.tag == tag)
        if before_id is not None:
            query = query.where(m.tag_events.c.id < before_id)
        if at_or_before is not None:
            query = query.where(m.tag_events.c.at <= at_or_before)
        with self._read() as conn:
            return [_event(repository, row) for row in conn.execute(query)]

    def tag_event(self, repository: str, event_id: int) -> TagEvent | None:
        query = (
            select(*_EVENT_COLUMNS)
            .join(m.repositories, m.repositories.c.id == m.tag_events.c.repository_id)
            .where(m.repositories.c.name == repository, m.tag_events.c.id == event_id)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _event(repository, row)

    def digests_in_history(self, repository: str, since: datetime) -> set[str]:
        query = (
            select(m.tag_events.c.old_digest, m.tag_events.c.new_digest)
            .join(m.repositories, m.repositories.c.id == m.tag_events.c.repository_id)
            .where(m.repositories.c.name == repository, m.tag_events.c.at >= since)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return {digest for row in rows for digest in row if digest is not None}

    # -- tags with what they name
    def _tag_records_query(self, repository: str) -> Any:
        return (
            select(
                m.tags.c.name,
                m.manifests.c.digest,
                m.manifests.c.media_type,
                m.manifests.c.size,
                m.tags.c.updated_at,
            )
            .join(m.manifests, m.manifests.c.id == m.tags.c.manifest_id)
            .join(m.repositories, m.repositories.c.id == m.tags.c.repository_id)
            .where(m.repositories.c.name == repository)
        )

    def tag_record(self, repository: str, tag: str) -> TagRecord | None:
        query = self._tag_records_query(repository).where(m.tags.c.name == tag)
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _tag_record(row)

    def list_tag_records(
        self, repository: str, after: str | None, limit: int | None
    ) -> list[TagRecord]:
        name = self._ascii(m.tags.c.name)
        query = self._tag_records_query(repository).order_by(name)
        if after is not None:
            query = query.where(name > after)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [_tag_record(row) for row in conn.execute(query)]

    # -- immutable-tag rules
    def add_immutable_rule(
        self, namespace: str, repository: str, pattern: str, created_by: str | None
    ) -> ImmutableRule:
        try:
            with self._write() as conn:
                conn.execute(
                    m.immutable_tag_rules.insert().values(
                        namespace=namespace,
                        repository=repository,
                        pattern=pattern,
                        created_by=created_by,
                        created_at=_now(),
                    )
                )
                row = conn.execute(
                    select(m.immutable_tag_rules).where(
                        m.immutable_tag_rules.c.namespace == namespace,
                        m.immutable_tag_rules.c.repository == repository,
                        m.immutable_tag_rules.c.pattern == pattern,
                    )
                ).one()
        except IntegrityError:
            raise Conflict(f"the rule {pattern!r} exists already") from None
        return _rule(row)

    def immutable_rules(self, namespace: str) -> list[ImmutableRule]:
        with self._read() as conn:
            return self._rules_in(conn, namespace)

    def remove_immutable_rule(self, namespace: str, rule_id: int) -> bool:
        table = m.immutable_tag_rules
        with self._write() as conn:
            result = conn.execute(
                delete(table).where(table.c.namespace == namespace, table.c.id == rule_id)
            )
            return bool(result.rowcount)


def _event_row(
    repo_id: int,
    tag: str,
    action: str,
    old: str | None,
    new: str | None,
    origin: ChangeOrigin,
    at: datetime,
) -> dict[str, Any]:
    return {
        "repository_id": repo_id,
        "tag": tag,
        "action": action,
        "old_digest": old,
        "new_digest": new,
        "via": origin.via,
        "actor": origin.actor,
        "at": at,
    }


def _event(repository: str, row: Any) -> TagEvent:
    return TagEvent(
        id=int(row.id),
        repository=repository,
        tag=row.tag,
        action=row.action,
        old_digest=row.old_digest,
        new_digest=row.new_digest,
        via=row.via,
        actor=row.actor,
        at=aware(row.at),
    )


def _tag_record(row: Any) -> TagRecord:
    return TagRecord(
        name=row.name,
        digest=row.digest,
        media_type=row.media_type,
        size=int(row.size),
        updated_at=aware(row.updated_at),
    )


def _rule(row: Any) -> ImmutableRule:
    return ImmutableRule(
        id=int(row.id),
        namespace=row.namespace,
        repository=row.repository,
        pattern=row.pattern,
        created_by=row.created_by,
        created_at=aware(row.created_at),
    )


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _log_tag_changes(conn: Connection, repository: str, rows: list[dict[str, Any]]) -> None:
    from cargohold import events as ev  # here: cargohold.events imports this package

    for row in rows:
        ev.record_in(
            conn,
            ev.TAG_MOVED if row["action"] == "moved" else ev.TAG_CREATED,
            repository,
            digest=row["new_digest"],
            tag=row["tag"],
            actor=row["actor"],
            data={"old_digest": row["old_digest"], "via": row["via"]},
        )

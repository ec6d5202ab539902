"""Retention policies in the metadata store, and the queries that planning them needs.

The planning itself is pure (core/retention.py); the store keeps the policies, lists the
tags of a namespace with their push times (tags.updated_at), reads the latest pull times
from the audit log's pull events, and removes a tag only if it is still what the plan
saw: a tag pushed again between planning and removal stays.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import cast, delete, func, select
from sqlalchemy.exc import IntegrityError

from cargohold.errors import Conflict
from cargohold.storage.meta import models as m
from cargohold.storage.meta.base import ChangeOrigin, RetentionPolicy, TagRecord
from cargohold.storage.meta.sql_gc import SqlGarbage
from cargohold.storage.meta.sql_versioning import _tag_record, aware
from cargohold.storage.meta.sqlbase import now as _now


class SqlRetention(SqlGarbage):
    # -- policies
    def add_retention_policy(
        self,
        namespace: str,
        repository: str,
        tag_pattern: str,
        keep_last: int | None,
        keep_days: int | None,
        created_by: str | None,
    ) -> RetentionPolicy:
        table = m.retention_policies
        try:
            with self._write() as conn:
                conn.execute(
                    table.insert().values(
                        namespace=namespace,
                        repository=repository,
                        tag_pattern=tag_pattern,
                        keep_last=keep_last,
                        keep_days=keep_days,
                        created_by=created_by,
                        created_at=_now(),
                    )
                )
                row = conn.execute(
                    select(table).where(
                        table.c.namespace == namespace,
                        table.c.repository == repository,
                        table.c.tag_pattern == tag_pattern,
                    )
                ).one()
        except IntegrityError:
            where = repository or f"namespace {namespace}"
            raise Conflict(
                f"a retention policy for {tag_pattern!r} in {where} exists already; "
                "remove it first to change it"
            ) from None
        return _policy(row)

    def retention_policies(self, namespace: str | None = None) -> list[RetentionPolicy]:
        table = m.retention_policies
        query = select(table).order_by(table.c.id)
        if namespace is not None:
            query = query.where(table.c.namespace == namespace)
        with self._read() as conn:
            return [_policy(row) for row in conn.execute(query)]

    def remove_retention_policy(self, namespace: str, policy_id: int) -> bool:
        table = m.retention_policies
        with self._write() as conn:
            result = conn.execute(
                delete(table).where(table.c.namespace == namespace, table.c.id == policy_id)
            )
            return bool(result.rowcount)

    # -- what planning needs
    def _in_namespace(self, column: Any, namespace: str) -> Any:
        """The namespace's repositories: `ns` itself and everything under `ns/`."""
        return (column == namespace) | column.startswith(f"{namespace}/", autoescape=True)

    def retention_tags(self, namespace: str) -> dict[str, list[TagRecord]]:
        query = (
            select(
                m.repositories.c.name.label("repository"),
                m.tags.c.name,
                m.manifests.c.digest,
                m.manifests.c.media_type,
                m.manifests.c.size,
                m.tags.c.updated_at,
            )
            .join(m.manifests, m.manifests.c.id == m.tags.c.manifest_id)
            .join(m.repositories, m.repositories.c.id == m.tags.c.repository_id)
            .where(self._in_namespace(m.repositories.c.name, namespace))
            .order_by(self._ascii(m.repositories.c.name), self._ascii(m.tags.c.name))
        )
        found: dict[str, list[TagRecord]] = {}
        with self._read() as conn:
            for row in conn.execute(query):
                found.setdefault(row.repository, []).append(_tag_record(row))
        return found

    def last_pulls(self, namespace: str, since: datetime) -> dict[str, dict[str, datetime]]:
        t = m.audit_events
        if self._sqlite:
            reference = func.json_extract(t.c.detail, "$.reference")
            digest = func.json_extract(t.c.detail, "$.digest")
        else:
            from sqlalchemy.dialects.postgresql import JSONB  # not loaded on SQLite

            reference = cast(t.c.detail, JSONB)["reference"].astext
            digest = cast(t.c.detail, JSONB)["digest"].astext
        # Grouped in the database: a busy registry has many pull events per image.
        query = (
            select(
                t.c.target,
                reference.label("reference"),
                digest.label("digest"),
                func.max(t.c.at).label("at"),
            )
            .where(
                t.c.action == "pull",
                t.c.outcome == "ok",
                t.c.at >= since,
                self._in_namespace(t.c.target, namespace),
            )
            .group_by(t.c.target, reference, digest)
        )
        pulls: dict[str, dict[str, datetime]] = {}
        with self._read() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            at = aware(row.at)
            for key in (row.reference, row.digest):
                if not key:
                    continue
                latest = pulls.setdefault(row.target, {})
                if key not in latest or latest[key] < at:
                    latest[key] = at
        return pulls

    # -- removal
    def delete_tag_if_unchanged(
        self, repository: str, tag: str, digest: str, pushed_at: datetime, origin: ChangeOrigin
    ) -> bool:
        with self._write() as conn:
            repo_id = self._repository_id(conn, repository)
            if repo_id is None:
                return False
            self._lock_repository(conn, repo_id)
            row = conn.execute(
                select(m.manifests.c.digest, m.tags.c.updated_at)
                .join(m.manifests, m.manifests.c.id == m.tags.c.manifest_id)
                .where(m.tags.c.repository_id == repo_id, m.tags.c.name == tag)
            ).first()
            if row is None or row.digest != digest or aware(row.updated_at) != pushed_at:
                return False  # gone, or pushed again since it was planned
            self._refuse_protected(conn, repository, [tag], "deleted")
            conn.execute(
                delete(m.tags).where(m.tags.c.repository_id == repo_id, m.tags.c.name == tag)
            )
            self._record_deletions(conn, repo_id, {tag: digest}, origin)
            return True


def _policy(row: Any) -> RetentionPolicy:
    return RetentionPolicy(
        id=int(row.id),
        namespace=row.namespace,
        repository=row.repository,
        tag_pattern=row.tag_pattern,
        keep_last=None if row.keep_last is None else int(row.keep_last),
        keep_days=None if row.keep_days is None else int(row.keep_days),
        created_by=row.created_by,
        created_at=aware(row.created_at),
    )

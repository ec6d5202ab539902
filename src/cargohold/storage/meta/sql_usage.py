"""Namespace quotas and storage usage in the metadata store.

A repository belongs to the namespace named by the first component of its name. Usage:

- stored bytes: the sizes of the distinct blobs linked there (repository_blobs); a layer
  linked in two repositories of a namespace counts once for the namespace;
- logical bytes: over the manifests there, each manifest's size plus the sizes of the
  blobs it names (what pulling everything would transfer, without deduplication);
- shared bytes: the stored bytes also linked elsewhere (another repository; for a
  namespace, a repository of another namespace).

A quota limits a namespace's stored bytes. It is enforced where they grow, inside the
write transaction that links the blob (see `_refuse_over_quota`): two pushes that each fit
alone but not together are serialized, on SQLite by BEGIN IMMEDIATE, on PostgreSQL by a
transaction-scoped advisory lock per namespace, and the second sees the first's link.
Lock order there is digest locks, then the namespace lock (nothing takes them the other
way round), so a blob commit never deadlocks with garbage collection's file deletion.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    union_all,
)

from cargohold.errors import QuotaExceeded
from cargohold.storage.meta import models as m
from cargohold.storage.meta.base import QuotaRecord, UsageRecord
from cargohold.storage.meta.sql_versioning import aware
from cargohold.storage.meta.sqlbase import SqlBase
from cargohold.storage.meta.sqlbase import now as _now


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0]


def _namespace_lock_key(namespace: str) -> int:
    """A signed 64-bit advisory lock key; the prefix keeps it apart from digest keys."""
    raw = hashlib.sha256(f"cargohold namespace quota {namespace}".encode()).digest()
    return int.from_bytes(raw[:8], "big", signed=True)


def _quota(row: Any) -> QuotaRecord:
    return QuotaRecord(row.namespace, int(row.limit_bytes), row.updated_by, aware(row.updated_at))


class SqlUsage(SqlBase):
    # -- which repositories a namespace holds
    def _namespace_expression(self, name: Any) -> Any:
        """The namespace of a repository name column, in SQL (constants inline, so that
        GROUP BY repeats the selected expression exactly)."""
        slash_text, one = literal_column("'/'"), literal_column("1")
        if self._sqlite:
            slash = func.instr(name, slash_text)
            return case(
                (slash > literal_column("0"), func.substr(name, one, slash - one)), else_=name
            )
        return func.split_part(name, slash_text, one)

    @staticmethod
    def _in_namespace(name: Any, namespace: str) -> Any:
        # startswith escapes LIKE's wildcards: '_' is common in repository names.
        return (name == namespace) | name.startswith(f"{namespace}/", autoescape=True)

    # -- quotas
    def set_quota(self, namespace: str, limit_bytes: int, updated_by: str | None) -> QuotaRecord:
        table = m.namespace_quotas
        values = {"limit_bytes": limit_bytes, "updated_by": updated_by, "updated_at": _now()}
        with self._write() as conn:
            conn.execute(
                self._insert(table)
                .values(namespace=namespace, **values)
                .on_conflict_do_update(index_elements=["namespace"], set_=values)
            )
            row = conn.execute(select(table).where(table.c.namespace == namespace)).one()
        return _quota(row)

    def get_quota(self, namespace: str) -> QuotaRecord | None:
        table = m.namespace_quotas
        with self._read() as conn:
            row = conn.execute(select(table).where(table.c.namespace == namespace)).first()
        return None if row is None else _quota(row)

    def remove_quota(self, namespace: str) -> bool:
        table = m.namespace_quotas
        with self._write() as conn:
            result = conn.execute(delete(table).where(table.c.namespace == namespace))
            return bool(result.rowcount)

    def list_quotas(self) -> list[QuotaRecord]:
        table = m.namespace_quotas
        with self._read() as conn:
            rows = conn.execute(select(table).order_by(table.c.namespace)).all()
        return [_quota(row) for row in rows]

    # -- enforcement
    def _quota_limit(self, conn: Connection, namespace: str) -> int | None:
        table = m.namespace_quotas
        query = self._prepared(
            "quota limit",
            lambda: select(table.c.limit_bytes).where(table.c.namespace == bindparam("ns")),
        )
        value = conn.execute(query, {"ns": namespace}).scalar()
        return None if value is None else int(value)

    def _linked_in_namespace(self, conn: Connection, namespace: str, digest: str) -> bool:
        query = select(
            exists().where(
                m.repository_blobs.c.digest == digest,
                m.repositories.c.id == m.repository_blobs.c.repository_id,
                self._in_namespace(m.repositories.c.name, namespace),
            )
        )
        return bool(conn.execute(query).scalar())

    def _namespace_stored(self, conn: Connection, namespace: str) -> tuple[int, int]:
        """(stored bytes, size of the largest blob) of the namespace."""
        linked = (
            select(m.repository_blobs.c.digest)
            .join(m.repositories, m.repositories.c.id == m.repository_blobs.c.repository_id)
            .where(self._in_namespace(m.repositories.c.name, namespace))
        )
        row = conn.execute(
            select(
                func.coalesce(func.sum(m.blobs.c.size), 0),
                func.coalesce(func.max(m.blobs.c.size), 0),
            ).where(m.blobs.c.digest.in_(linked))
        ).one()
        return int(row[0]), int(row[1])

    def _refuse_over_quota(
        self,
        conn: Connection,
        repository: str,
        digest: str | None,
        size: int,
        *,
        lock: bool,
    ) -> None:
        """QuotaExceeded if linking a blob of `size` in `repository` would take its
        namespace over its quota; nothing to check when the namespace has no quota.

        With `lock` (PostgreSQL) the namespace's advisory lock is taken first and held
        until the transaction ends, so this answer stays true until the link commits.
        Without it, and outside a write transaction, the answer is advisory.
        """
        if size <= 0:
            return  # an empty blob adds nothing
        namespace = namespace_of(repository)
        limit = self._quota_limit(conn, namespace)
        if limit is None:
            return
        if lock and not self._sqlite:
            conn.execute(select(func.pg_advisory_xact_lock(_namespace_lock_key(namespace))))
            limit = self._quota_limit(conn, namespace)  # as of now that the lock is held
            if limit is None:
                return
        if digest is not None and self._linked_in_namespace(conn, namespace, digest):
            return  # the namespace holds it already: linking it again costs nothing
        usage, largest = self._namespace_stored(conn, namespace)
        if usage + size <= limit:
            return
        if digest is None and size <= largest:
            return  # without a digest it might be a blob the namespace holds
        raise QuotaExceeded(namespace, usage, limit, size)

    def check_quota(self, repository: str, size: int, digest: str | None = None) -> None:
        with self._read() as conn:
            self._refuse_over_quota(conn, repository, digest, size, lock=False)

    # -- usage
    def repository_usage(
        self, namespace: str | None = None, repository: str | None = None
    ) -> list[UsageRecord]:
        name = m.repositories.c.name

        def scoped(query: Any) -> Any:
            if repository is not None:
                return query.where(name == repository)
            if namespace is not None:
                return query.where(self._in_namespace(name, namespace))
            return query

        link = m.repository_blobs
        other = m.repository_blobs.alias("other_link")
        elsewhere = exists().where(
            other.c.digest == link.c.digest, other.c.repository_id != link.c.repository_id
        )
        stored = scoped(
            select(
                name,
                func.count().label("blobs"),
                func.sum(m.blobs.c.size).label("stored"),
                func.sum(case((elsewhere, m.blobs.c.size), else_=0)).label("shared"),
            )
            .select_from(link)
            .join(m.blobs, m.blobs.c.digest == link.c.digest)
            .join(m.repositories, m.repositories.c.id == link.c.repository_id)
            .group_by(name)
        )
        with self._snapshot() as conn:  # SqlGarbage's consistent read
            names = list(conn.execute(scoped(select(name))).scalars())
            stored_rows = {row.name: row for row in conn.execute(stored)}
            logical = self._logical(conn, name, scoped)
        records = []
        for repo in sorted(names):
            row = stored_rows.get(repo)
            manifests, logical_bytes = logical.get(repo, (0, 0))
            records.append(
                UsageRecord(
                    name=repo,
                    logical_bytes=logical_bytes,
                    stored_bytes=int(row.stored) if row else 0,
                    shared_bytes=int(row.shared) if row else 0,
                    blobs=int(row.blobs) if row else 0,
                    manifests=manifests,
                    repositories=1,
                )
            )
        return records

    @staticmethod
    def _logical(conn: Connection, key: Any, scoped: Any) -> dict[str, tuple[int, int]]:
        """key -> (manifests, logical bytes) for the repositories `scoped` keeps, grouped
        by `key` (a repository name or a namespace expression)."""
        label = key.label("key")
        own = scoped(
            select(
                label,
                func.count().label("manifests"),
                func.sum(m.manifests.c.size).label("bytes"),
            )
            .select_from(m.manifests)
            .join(m.repositories, m.repositories.c.id == m.manifests.c.repository_id)
            .group_by(label)
        )
        named = scoped(
            select(
                label,
                literal(0).label("manifests"),
                func.sum(m.blobs.c.size).label("bytes"),
            )
            .select_from(m.manifest_blobs)
            .join(m.manifests, m.manifests.c.id == m.manifest_blobs.c.manifest_id)
            .join(m.blobs, m.blobs.c.digest == m.manifest_blobs.c.digest)
            .join(m.repositories, m.repositories.c.id == m.manifests.c.repository_id)
            .group_by(label)
        )
        totals: dict[str, tuple[int, int]] = {}
        for row in conn.execute(union_all(own, named)):
            manifests, size = totals.get(row.key, (0, 0))
            totals[row.key] = (manifests + int(row.manifests), size + int(row.bytes or 0))
        return totals

    def namespace_usage(self, namespace: str | None = None) -> list[UsageRecord]:
        name = m.repositories.c.name
        ns = self._namespace_expression(name)

        def scoped(query: Any) -> Any:
            if namespace is None:
                return query
            return query.where(self._in_namespace(name, namespace))

        # Each blob once per namespace, however many of its repositories link it.
        pairs = (
            scoped(
                select(ns.label("namespace"), m.repository_blobs.c.digest)
                .select_from(m.repository_blobs)
                .join(m.repositories, m.repositories.c.id == m.repository_blobs.c.repository_id)
            )
            .distinct()
            .subquery("pairs")
        )
        other_link = m.repository_blobs.alias("other_link")
        other_repo = m.repositories.alias("other_repo")
        outside = exists().where(
            other_link.c.digest == pairs.c.digest,
            other_repo.c.id == other_link.c.repository_id,
            self._namespace_expression(other_repo.c.name) != pairs.c.namespace,
        )
        stored = (
            select(
                pairs.c.namespace,
                func.count().label("blobs"),
                func.sum(m.blobs.c.size).label("stored"),
                func.sum(case((outside, m.blobs.c.size), else_=0)).label("shared"),
            )
            .select_from(pairs)
            .join(m.blobs, m.blobs.c.digest == pairs.c.digest)
            .group_by(pairs.c.namespace)
        )
        label = ns.label("namespace")
        repositories = scoped(select(label, func.count().label("count")).group_by(label))
        with self._snapshot() as conn:  # SqlGarbage's consistent read
            counts = {row.namespace: int(row.count) for row in conn.execute(repositories)}
            stored_rows = {row.namespace: row for row in conn.execute(stored)}
            logical = self._logical(conn, ns, scoped)
        records = []
        for space in sorted(counts):
            row = stored_rows.get(space)
            manifests, logical_bytes = logical.get(space, (0, 0))
            records.append(
                UsageRecord(
                    name=space,
                    logical_bytes=logical_bytes,
                    stored_bytes=int(row.stored) if row else 0,
                    shared_bytes=int(row.shared) if row else 0,
                    blobs=int(row.blobs) if row else 0,
                    manifests=manifests,
                    repositories=counts[space],
                )
            )
        return records

    def registry_usage(self) -> UsageRecord:
        link = m.repository_blobs
        linked = exists().where(link.c.digest == m.blobs.c.digest)
        several = select(link.c.digest).group_by(link.c.digest).having(func.count() > 1)
        stored = select(
            func.count(),
            func.coalesce(func.sum(m.blobs.c.size), 0),
            func.coalesce(
                func.sum(case((m.blobs.c.digest.in_(several), m.blobs.c.size), else_=0)), 0
            ),
        ).where(linked)
        manifests = select(func.count(), func.coalesce(func.sum(m.manifests.c.size), 0))
        named = (
            select(func.coalesce(func.sum(m.blobs.c.size), 0))
            .select_from(m.manifest_blobs)
            .join(m.blobs, m.blobs.c.digest == m.manifest_blobs.c.digest)
        )
        repositories = select(func.count()).select_from(m.repositories)
        with self._snapshot() as conn:  # SqlGarbage's consistent read
            blobs, stored_bytes, shared_bytes = conn.execute(stored).one()
            manifest_count, manifest_bytes = conn.execute(manifests).one()
            named_bytes = conn.execute(named).scalar_one()
            repository_count = conn.execute(repositories).scalar_one()
        return UsageRecord(
            name="",
            logical_bytes=int(manifest_bytes) + int(named_bytes),
            stored_bytes=int(stored_bytes),
            shared_bytes=int(shared_bytes),
            blobs=int(blobs),
            manifests=int(manifest_count),
            repositories=int(repository_count),
        )

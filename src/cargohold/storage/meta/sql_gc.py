"""Garbage collection in the metadata store: snapshot, conditional sweeps, blob files.

Why nothing live is ever removed, while pushes go on:

- Every delete re-checks, in its own transaction, that nothing references the row now.
  A manifest PUT locks its repository's row (as the sweeps of that repository do) and
  re-links the blobs it names in the transaction that references them.
- A blob row cannot go while a manifest or a link references it (foreign keys), and a
  reference cannot be made to a blob row that is gone (foreign keys again).
- A blob's bytes are deleted only after its row is gone, and under a per-digest lock that
  an upload's commit of the same digest also takes (commit_blob), re-checking inside the
  lock that no row came back. So an upload never "keeps the stored copy" of bytes that a
  collection is about to delete.
- A blob commit refused by the namespace's quota after storing (sql_usage.py) removes
  the bytes itself, under the same digest lock, only if no blob row exists.

SQLite serializes writers already (BEGIN IMMEDIATE); PostgreSQL uses row locks on
repositories and transaction-scoped advisory locks keyed by digest.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, func, select
from sqlalchemy.exc import IntegrityError

from cargohold.errors import QuotaExceeded
from cargohold.storage.meta import models as m
from cargohold.storage.meta.base import UploadRecord
from cargohold.storage.meta.gcgraph import GcGraph, LinkNode, ManifestNode
from cargohold.storage.meta.sql_usage import SqlUsage
from cargohold.storage.meta.sql_versioning import SqlVersioning, aware
from cargohold.storage.meta.sqlbase import now as _now

BATCH = 500
log = logging.getLogger(__name__)


def _lock_key(digest: str) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock."""
    return int.from_bytes(hashlib.sha256(digest.encode()).digest()[:8], "big", signed=True)


class SqlGarbage(SqlUsage, SqlVersioning):
    # -- blob commits, excluded against file collection of the same digest
    @contextmanager
    def _digest_locked(self, digests: Sequence[str], durable: bool = True) -> Iterator[Connection]:
        """A write transaction holding the digests' locks (SQLite: the database's)."""
        with self._write(durable) as conn:
            if not self._sqlite:
                for key in sorted({_lock_key(d) for d in digests}):
                    conn.execute(select(func.pg_advisory_xact_lock(key)))
            yield conn

    def commit_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        store: Callable[[], None],
        discard: Callable[[], None] | None = None,
        finished_upload: str | None = None,
    ) -> None:
        with self._digest_locked([digest]) as conn:
            # Over quota: refused before the bytes are stored. Final on SQLite, where this
            # transaction holds the database; on PostgreSQL confirmed below, under the
            # namespace's lock, which is not held while storing (an S3 assembly can take
            # seconds, and would stall every other push to the namespace).
            self._refuse_over_quota(conn, repository, digest, size, lock=False)
            store()
            if not self._sqlite:
                try:
                    self._refuse_over_quota(conn, repository, digest, size, lock=True)
                except QuotaExceeded:
                    # A concurrent push took the last bytes meanwhile.
                    self._discard_unrecorded(conn, digest, discard)
                    raise
            self._link(conn, repository, digest, size)
            if finished_upload is not None:
                self._delete_upload(conn, finished_upload)

    @staticmethod
    def _discard_unrecorded(
        conn: Connection, digest: str, discard: Callable[[], None] | None
    ) -> None:
        """Undo a store() whose blob will not be linked: under the digest lock, and only
        when no blob row exists (else the bytes were stored before, and are in use)."""
        if conn.execute(select(m.blobs.c.digest).where(m.blobs.c.digest == digest)).first():
            return
        if discard is None:
            log.warning("blob %s stored but refused; its bytes stay until removed", digest)
            return
        try:
            discard()
        except Exception:
            log.exception("could not remove the refused blob %s", digest)

    def link_existing_blob(self, repository: str, digest: str) -> bool:
        """Link a blob that has a row already (a mount); False when the row is gone."""
        try:
            with self._write() as conn:
                size = conn.execute(
                    select(m.blobs.c.size).where(m.blobs.c.digest == digest)
                ).scalar()
                if size is None:
                    return False
                # Before the repository row may be created: see sql_usage.py on lock order.
                self._refuse_over_quota(conn, repository, digest, int(size), lock=True)
                repo_id = self._ensure_repository(conn, repository)
                conn.execute(
                    self._insert(m.repository_blobs)
                    .values(repository_id=repo_id, digest=digest, created_at=_now())
                    .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
                )
        except IntegrityError:
            return False  # collected between the check and the insert
        return True

    def _repository_id_or_none(self, name: str) -> int | None:
        with self._read() as conn:
            return self._repository_id(conn, name)

    # -- the snapshot marking reads
    def gc_graph(self, history_since: datetime) -> GcGraph:
        with self._snapshot() as conn:
            repositories = {
                int(row.id): row.name
                for row in conn.execute(select(m.repositories.c.id, m.repositories.c.name))
            }
            tagged = set(conn.execute(select(m.tags.c.manifest_id).distinct()).scalars())
            manifests = [
                ManifestNode(
                    id=int(row.id),
                    repository_id=int(row.repository_id),
                    digest=row.digest,
                    subject=row.subject_digest,
                    size=int(row.size),
                    created_at=aware(row.created_at),
                    tagged=int(row.id) in tagged,
                )
                for row in conn.execute(
                    select(
                        m.manifests.c.id,
                        m.manifests.c.repository_id,
                        m.manifests.c.digest,
                        m.manifests.c.subject_digest,
                        m.manifests.c.size,
                        m.manifests.c.created_at,
                    )
                )
            ]
            children: dict[int, set[str]] = {}
            for row in conn.execute(select(m.manifest_children)):
                children.setdefault(int(row.manifest_id), set()).add(row.child_digest)
            blob_refs: dict[int, set[str]] = {}
            for row in conn.execute(select(m.manifest_blobs)):
                blob_refs.setdefault(int(row.manifest_id), set()).add(row.digest)
            links = [
                LinkNode(int(row.repository_id), row.digest, aware(row.created_at))
                for row in conn.execute(select(m.repository_blobs))
            ]
            blobs = {
                row.digest: (int(row.size), aware(row.created_at))
                for row in conn.execute(select(m.blobs))
            }
            in_history: dict[int, set[str]] = {}
            events = select(
                m.tag_events.c.repository_id, m.tag_events.c.old_digest, m.tag_events.c.new_digest
            ).where(m.tag_events.c.at >= history_since)
            for row in conn.execute(events):
                kept = in_history.setdefault(int(row.repository_id), set())
                kept.update(d for d in (row.old_digest, row.new_digest) if d is not None)
        return GcGraph(repositories, manifests, children, blob_refs, links, blobs, in_history)

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """One consistent view for several queries."""
        with self._engine.connect() as conn:
            if self._sqlite:
                conn.exec_driver_sql("BEGIN")
                try:
                    yield conn
                finally:
                    conn.exec_driver_sql("ROLLBACK")
            else:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn

    # -- sweeps; each returns what it really removed
    def gc_delete_manifests(
        self,
        repository: str,
        manifest_ids: Sequence[int],
        older_than: datetime,
        history_since: datetime,
    ) -> list[int]:
        """Delete those of the manifests that nothing references now (one round: an
        index's children become deletable in the next round, after the index is gone)."""
        repository_id = self._repository_id_or_none(repository)
        if repository_id is None:
            return []
        table = m.manifests
        parent = m.manifests.alias("parent")
        subject = m.manifests.alias("subject")
        removed: list[int] = []
        for start in range(0, len(manifest_ids), BATCH):
            batch = list(manifest_ids[start : start + BATCH])
            with self._write() as conn:
                self._lock_repository(conn, repository_id)
                tagged = exists().where(m.tags.c.manifest_id == table.c.id)
                listed = exists().where(
                    m.manifest_children.c.manifest_id == parent.c.id,
                    parent.c.repository_id == repository_id,
                    m.manifest_children.c.child_digest == table.c.digest,
                )
                subject_alive = exists().where(
                    subject.c.repository_id == repository_id,
                    subject.c.digest == table.c.subject_digest,
                )
                remembered = exists().where(
                    m.tag_events.c.repository_id == repository_id,
                    m.tag_events.c.at >= history_since,
                    (m.tag_events.c.old_digest == table.c.digest)
                    | (m.tag_events.c.new_digest == table.c.digest),
                )
                statement = (
                    delete(table)
                    .where(
                        table.c.repository_id == repository_id,
                        table.c.id.in_(batch),
                        table.c.created_at < older_than,
                        ~tagged,
                        ~listed,
                        ~subject_alive,
                        ~remembered,
                    )
                    .returning(table.c.id)
                )
                removed += [int(i) for i in conn.execute(statement).scalars()]
        return removed

    def gc_unlink(self, repository: str, digests: Sequence[str], older_than: datetime) -> list[str]:
        """Remove links to blobs no manifest of the repository names now."""
        repository_id = self._repository_id_or_none(repository)
        if repository_id is None:
            return []
        table = m.repository_blobs
        named = exists().where(
            m.manifest_blobs.c.digest == table.c.digest,
            m.manifests.c.id == m.manifest_blobs.c.manifest_id,
            m.manifests.c.repository_id == repository_id,
        )
        removed: list[str] = []
        for start in range(0, len(digests), BATCH):
            batch = list(digests[start : start + BATCH])
            with self._write() as conn:
                self._lock_repository(conn, repository_id)
                statement = (
                    delete(table)
                    .where(
                        table.c.repository_id == repository_id,
                        table.c.digest.in_(batch),
                        table.c.created_at < older_than,
                        ~named,
                    )
                    .returning(table.c.digest)
                )
                removed += list(conn.execute(statement).scalars())
        return removed

    def gc_delete_blobs(self, digests: Sequence[str], older_than: datetime) -> list[str]:
        """Remove blob rows nothing links or names now."""
        table = m.blobs
        linked = exists().where(m.repository_blobs.c.digest == table.c.digest)
        named = exists().where(m.manifest_blobs.c.digest == table.c.digest)
        removed: list[str] = []
        for start in range(0, len(digests), BATCH):
            batch = list(digests[start : start + BATCH])
            statement = (
                delete(table)
                .where(table.c.digest.in_(batch), table.c.created_at < older_than, ~linked, ~named)
                .returning(table.c.digest)
            )
            try:
                with self._write() as conn:
                    removed += list(conn.execute(statement).scalars())
            except IntegrityError:
                # A reference raced the delete (PostgreSQL): go one by one, skip the loser.
                for digest in batch:
                    single = statement.where(table.c.digest == digest)
                    try:
                        with self._write() as conn:
                            removed += list(conn.execute(single).scalars())
                    except IntegrityError:
                        continue
        return removed

    def gc_delete_files(
        self, digests: Sequence[str], delete_files: Callable[[list[str]], None]
    ) -> list[str]:
        """Delete the bytes of blobs whose rows are gone, excluded against commit_blob."""
        deleted: list[str] = []
        for start in range(0, len(digests), 64):
            batch = list(digests[start : start + 64])
            # Only reads: nothing to flush to disk when the lock is released.
            with self._digest_locked(batch, durable=False) as conn:
                revived = set(
                    conn.execute(
                        select(m.blobs.c.digest).where(m.blobs.c.digest.in_(batch))
                    ).scalars()
                )
                gone = [digest for digest in batch if digest not in revived]
                if gone:
                    delete_files(gone)
                deleted += gone
        return deleted

    # -- one collection at a time, across processes and replicas
    @contextmanager
    def gc_exclusive(self) -> Iterator[bool]:
        """Yields whether this caller is the only collector now (never waits)."""
        if self._sqlite:
            database = self._engine.url.database or ""
            with open(f"{database}.gc-lock", "a+b") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                yield True  # closing the file releases the lock
            return
        with self._engine.connect() as conn:
            key = _lock_key("cargohold garbage collection")
            if not conn.execute(select(func.pg_try_advisory_lock(key))).scalar():
                conn.rollback()
                yield False
                return
            try:
                yield True
            finally:
                conn.execute(select(func.pg_advisory_unlock(key)))
                conn.commit()

    # -- the log of runs
    def record_gc_run(self, trigger: str, dry_run: bool, report: dict[str, Any]) -> int:
        with self._write() as conn:
            result = conn.execute(
                m.gc_runs.insert()
                .values(
                    started_at=datetime.fromisoformat(report["started_at"]),
                    trigger=trigger,
                    dry_run=dry_run,
                    report=json.dumps(report),
                )
                .returning(m.gc_runs.c.id)
            )
            return int(result.scalar_one())

    def gc_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        query = select(m.gc_runs).order_by(m.gc_runs.c.id.desc()).limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            {"id": int(row.id), "trigger": row.trigger, **json.loads(row.report)} for row in rows
        ]

    # -- abandoned uploads
    def uploads_older_than(self, moment: datetime) -> list[UploadRecord]:
        with self._read() as conn:
            rows = conn.execute(select(m.uploads).where(m.uploads.c.created_at < moment)).all()
        return [UploadRecord(r.id, r.repository, r.algorithm, aware(r.created_at)) for r in rows]

    def upload_ids_known(self, upload_ids: Sequence[str]) -> set[str]:
        wanted = list(upload_ids)
        if not wanted:
            return set()
        with self._read() as conn:
            return set(
                conn.execute(select(m.uploads.c.id).where(m.uploads.c.id.in_(wanted))).scalars()
            )

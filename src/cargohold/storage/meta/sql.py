"""MetadataStore on SQLAlchemy Core: SQLite for the embedded default, PostgreSQL later."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, text
from sqlalchemy.exc import IntegrityError

from cargohold.errors import ManifestBlobUnknown, ManifestUnknown, QuotaExceeded
from cargohold.mediatypes import is_scannable
from cargohold.storage.meta import models as m
from cargohold.storage.meta.base import (
    BY_DELETE,
    BY_PUSH,
    ChangeOrigin,
    ManifestRecord,
    ReferrerRecord,
    TagEvent,
    UploadRecord,
)
from cargohold.storage.meta.scan_jobs import PUSH, job_values
from cargohold.storage.meta.sql_retention import SqlRetention
from cargohold.storage.meta.sqlbase import create_sql_engine
from cargohold.storage.meta.sqlbase import now as _now

__all__ = ["SqlMetadataStore", "create_sql_engine"]


def _manifest_id_query() -> Any:
    return select(m.manifests.c.id).where(
        m.manifests.c.repository_id == bindparam("repository_id"),
        m.manifests.c.digest == bindparam("digest"),
    )


class SqlMetadataStore(SqlRetention):
    # When set, every newly stored container image or index gets a scan job, queued in
    # the transaction that stores it (so no acknowledged push misses its scan).
    scan_on_push = False

    @classmethod
    def from_url(cls, url: str) -> SqlMetadataStore:
        return cls(create_sql_engine(url))

    # -- quota refusals in the event log (record_events). The refusing transaction rolls
    # back, and on SQLite it holds the database, so the event is written after it ends, in
    # a transaction of its own: the store is the one place every refusal passes through.
    def commit_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        store: Callable[[], None],
        discard: Callable[[], None] | None = None,
        finished_upload: str | None = None,
    ) -> None:
        try:
            super().commit_blob(repository, digest, size, store, discard, finished_upload)
        except QuotaExceeded as exc:
            self._log_quota_exceeded(repository, digest, exc)
            raise

    def check_quota(self, repository: str, size: int, digest: str | None = None) -> None:
        try:
            super().check_quota(repository, size, digest)
        except QuotaExceeded as exc:
            self._log_quota_exceeded(repository, digest, exc)
            raise

    def link_existing_blob(self, repository: str, digest: str) -> bool:
        try:
            return super().link_existing_blob(repository, digest)
        except QuotaExceeded as exc:
            self._log_quota_exceeded(repository, digest, exc)
            raise

    def _log_quota_exceeded(self, repository: str, digest: str | None, exc: QuotaExceeded) -> None:
        if not self.record_events:
            return
        from cargohold import events as ev

        data = {"usage": exc.usage, "limit": exc.limit, "needed": exc.needed}
        with self._write() as conn:
            ev.record_in(conn, ev.QUOTA_EXCEEDED, repository, digest=digest, data=data)

    def _ensure_repository(self, conn: Connection, name: str) -> int:
        repo_id = self._repository_id(conn, name)
        if repo_id is not None:
            return repo_id
        conn.execute(
            self._insert(m.repositories)
            .values(name=name, created_at=_now())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        repo_id = self._repository_id(conn, name)
        assert repo_id is not None  # inserted above, or by a concurrent push
        return repo_id

    @staticmethod
    def _first_column(conn: Connection, query: Any) -> list[Any]:
        """All values of a one-column query, fetched straight from the DB-API cursor.

        Long listings (thousands of tags) spend most of their time building SQLAlchemy
        rows; compiling the statement and reading plain tuples is about twice as fast.
        """
        compiled = query.compile(dialect=conn.dialect)
        params = compiled.params
        args = (
            tuple(params[name] for name in compiled.positiontup or ())
            if compiled.positional
            else params
        )
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.string, args)
            return [row[0] for row in cursor.fetchall()]
        finally:
            cursor.close()

    # -- repositories
    def repository_exists(self, name: str) -> bool:
        with self._read() as conn:
            return self._repository_id(conn, name) is not None

    def list_repositories(self, after: str | None, limit: int | None) -> list[str]:
        name = self._ascii(m.repositories.c.name)
        query = select(m.repositories.c.name).order_by(name)
        if after is not None:
            query = query.where(name > after)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return self._first_column(conn, query)

    # -- blobs
    def link_blob(self, repository: str, digest: str, size: int) -> None:
        with self._write() as conn:
            self._link(conn, repository, digest, size)

    def _link(self, conn: Connection, repository: str, digest: str, size: int) -> None:
        now = _now()
        repo_id = self._ensure_repository(conn, repository)
        blob = self._prepared(
            "insert blob",
            lambda: self._insert(m.blobs).on_conflict_do_nothing(index_elements=["digest"]),
        )
        conn.execute(blob, {"digest": digest, "size": size, "created_at": now})
        conn.execute(
            self._prepared("insert repository blob", self._insert_repository_blob),
            {"repository_id": repo_id, "digest": digest, "created_at": now},
        )

    def _insert_manifest(self) -> Any:
        return self._insert(m.manifests).on_conflict_do_nothing(
            index_elements=["repository_id", "digest"]
        )

    def _insert_ignoring(self, table: Any) -> Callable[[], Any]:
        return lambda: self._insert(table).on_conflict_do_nothing()

    def _insert_repository_blob(self) -> Any:
        return self._insert(m.repository_blobs).on_conflict_do_nothing(
            index_elements=["repository_id", "digest"]
        )

    def _visible_blobs_query(self, repository: Any) -> Any:
        return (
            select(m.blobs.c.digest, m.blobs.c.size)
            .join(m.repository_blobs, m.repository_blobs.c.digest == m.blobs.c.digest)
            .join(m.repositories, m.repositories.c.id == m.repository_blobs.c.repository_id)
            .where(m.repositories.c.name == repository)
        )

    def blob_size(self, repository: str, digest: str) -> int | None:
        query = self._prepared(
            "blob size",
            lambda: self._visible_blobs_query(bindparam("repository")).where(
                m.blobs.c.digest == bindparam("digest")
            ),
        )
        with self._read() as conn:
            row = conn.execute(query, {"repository": repository, "digest": digest}).first()
        return None if row is None else int(row.size)

    def blob_sizes(self, repository: str, digests: Iterable[str]) -> dict[str, int]:
        wanted = list(set(digests))
        if not wanted:
            return {}
        query = self._prepared(
            "blob sizes",
            lambda: self._visible_blobs_query(bindparam("repository")).where(
                m.blobs.c.digest.in_(bindparam("digests", expanding=True))
            ),
        )
        with self._read() as conn:
            rows = conn.execute(query, {"repository": repository, "digests": wanted})
            return {row.digest: int(row.size) for row in rows}

    def unlink_blob(self, repository: str, digest: str) -> bool:
        table = m.repository_blobs
        return self._delete_in_repository(repository, table, table.c.digest == digest)

    def _delete_in_repository(self, repository: str, table: Any, condition: Any) -> bool:
        """Delete the rows of `table` in one repository that match; False if none did."""
        with self._write() as conn:
            repo_id = self._repository_id(conn, repository)
            if repo_id is None:
                return False
            result = conn.execute(delete(table).where(table.c.repository_id == repo_id, condition))
            return bool(result.rowcount)

    # -- manifests and tags
    def put_manifest(
        self,
        repository: str,
        manifest: ManifestRecord,
        blob_digests: Sequence[str],
        child_digests: Sequence[str],
        tags: Sequence[str],
        origin: ChangeOrigin = BY_PUSH,
    ) -> None:
        try:
            with self._write() as conn:
                self._put_manifest(
                    conn, repository, manifest, blob_digests, child_digests, tags, origin
                )
        except IntegrityError:
            # A referenced blob vanished between the core's check and this transaction.
            raise ManifestBlobUnknown(
                "a blob the manifest references is no longer stored"
            ) from None

    def _put_manifest(
        self,
        conn: Connection,
        repository: str,
        manifest: ManifestRecord,
        blob_digests: Sequence[str],
        child_digests: Sequence[str],
        tags: Sequence[str],
        origin: ChangeOrigin,
    ) -> None:
        now = _now()
        repo_id = self._ensure_repository(conn, repository)
        # Serializes with garbage collection's sweep of this repository (see sql_gc.py).
        self._lock_repository(conn, repo_id)
        ids = {"repository_id": repo_id, "digest": manifest.digest}
        id_query = self._prepared("manifest id", _manifest_id_query)
        manifest_id = conn.execute(id_query, ids).scalar()
        if manifest_id is None:
            values = {
                **ids,
                "media_type": manifest.media_type,
                "size": manifest.size,
                "content": manifest.content,
                "artifact_type": manifest.artifact_type,
                "subject_digest": manifest.subject,
                "annotations": json.dumps(manifest.annotations) if manifest.annotations else None,
                "created_at": now,
            }
            conn.execute(self._prepared("insert manifest", self._insert_manifest), values)
            manifest_id = conn.execute(id_query, ids).scalar_one()
            blob_rows = [{"manifest_id": manifest_id, "digest": d} for d in set(blob_digests)]
            if blob_rows:
                conn.execute(
                    self._prepared(
                        "insert manifest blobs", self._insert_ignoring(m.manifest_blobs)
                    ),
                    blob_rows,
                )
                # The core saw these blobs in the repository; a collection that unlinked one
                # since then is undone here, in the transaction that makes it referenced.
                links = [
                    {"repository_id": repo_id, "digest": d, "created_at": now}
                    for d in set(blob_digests)
                ]
                conn.execute(
                    self._prepared("insert repository blob", self._insert_repository_blob), links
                )
            child_rows = [
                {"manifest_id": manifest_id, "child_digest": d} for d in set(child_digests)
            ]
            if child_rows:
                conn.execute(
                    self._prepared(
                        "insert manifest children", self._insert_ignoring(m.manifest_children)
                    ),
                    child_rows,
                )
            if self.scan_on_push and is_scannable(
                manifest.media_type, manifest.artifact_type, manifest.subject
            ):
                conn.execute(
                    self._prepared("insert scan job", m.scan_jobs.insert),
                    job_values(repository, manifest.digest, PUSH),
                )
            if self.record_events:
                _log_push(conn, repository, manifest, list(tags), origin)
        if tags:
            self._set_tags(
                conn, repo_id, repository, manifest_id, manifest.digest, list(tags), origin
            )

    _MANIFEST_COLUMNS = (
        m.manifests.c.digest,
        m.manifests.c.media_type,
        m.manifests.c.content,
        m.manifests.c.artifact_type,
        m.manifests.c.subject_digest,
        m.manifests.c.annotations,
    )

    @staticmethod
    def _manifest_record(row: Any) -> ManifestRecord:
        return ManifestRecord(
            digest=row.digest,
            media_type=row.media_type,
            content=bytes(row.content),
            artifact_type=row.artifact_type,
            subject=row.subject_digest,
            annotations=json.loads(row.annotations) if row.annotations else None,
        )

    def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None:
        query = (
            select(*self._MANIFEST_COLUMNS)
            .join(m.repositories, m.repositories.c.id == m.manifests.c.repository_id)
            .where(m.repositories.c.name == repository, m.manifests.c.digest == digest)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else self._manifest_record(row)

    def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None:
        query = (
            select(*self._MANIFEST_COLUMNS)
            .join(m.tags, m.tags.c.manifest_id == m.manifests.c.id)
            .join(m.repositories, m.repositories.c.id == m.tags.c.repository_id)
            .where(m.repositories.c.name == repository, m.tags.c.name == tag)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else self._manifest_record(row)

    def existing_manifests(self, repository: str, digests: Iterable[str]) -> set[str]:
        wanted = list(set(digests))
        if not wanted:
            return set()
        query = (
            select(m.manifests.c.digest)
            .join(m.repositories, m.repositories.c.id == m.manifests.c.repository_id)
            .where(m.repositories.c.name == repository, m.manifests.c.digest.in_(wanted))
        )
        with self._read() as conn:
            return set(conn.execute(query).scalars())

    def delete_manifest(
        self, repository: str, digest: str, origin: ChangeOrigin = BY_DELETE
    ) -> bool:
        with self._write() as conn:
            repo_id = self._repository_id(conn, repository)
            if repo_id is None:
                return False
            self._lock_repository(conn, repo_id)
            tags = conn.execute(
                select(m.tags.c.name)
                .join(m.manifests, m.manifests.c.id == m.tags.c.manifest_id)
                .where(m.manifests.c.repository_id == repo_id, m.manifests.c.digest == digest)
            ).scalars()
            removed = {tag: digest for tag in tags}
            self._refuse_protected(conn, repository, list(removed), "deleted")
            result = conn.execute(
                delete(m.manifests).where(
                    m.manifests.c.repository_id == repo_id, m.manifests.c.digest == digest
                )
            )
            if not result.rowcount:
                return False
            self._record_deletions(conn, repo_id, removed, origin)
            if self.record_events:
                _log_delete(conn, repository, digest, None, sorted(removed), origin)
            return True

    def delete_tag(self, repository: str, tag: str, origin: ChangeOrigin = BY_DELETE) -> bool:
        with self._write() as conn:
            repo_id = self._repository_id(conn, repository)
            if repo_id is None:
                return False
            self._lock_repository(conn, repo_id)
            current = self._current_tags(conn, repo_id, [tag])
            if tag not in current:
                return False
            self._refuse_protected(conn, repository, [tag], "deleted")
            conn.execute(
                delete(m.tags).where(m.tags.c.repository_id == repo_id, m.tags.c.name == tag)
            )
            self._record_deletions(conn, repo_id, current, origin)
            if self.record_events:
                _log_delete(conn, repository, current[tag], tag, [tag], origin)
            return True

    def tag_manifest(
        self, repository: str, tag: str, digest: str, origin: ChangeOrigin
    ) -> TagEvent | None:
        with self._write() as conn:
            repo_id = self._repository_id(conn, repository)
            manifest_id = None
            if repo_id is not None:
                manifest_id = conn.execute(
                    select(m.manifests.c.id).where(
                        m.manifests.c.repository_id == repo_id, m.manifests.c.digest == digest
                    )
                ).scalar()
            if repo_id is None or manifest_id is None:
                raise ManifestUnknown(f"manifest {digest} is not in repository {repository}")
            rows = self._set_tags(conn, repo_id, repository, manifest_id, digest, [tag], origin)
            if not rows:
                return None
            event_id = conn.execute(
                select(m.tag_events.c.id)
                .where(m.tag_events.c.repository_id == repo_id, m.tag_events.c.tag == tag)
                .order_by(m.tag_events.c.id.desc())
                .limit(1)
            ).scalar_one()
        row = rows[0]
        return TagEvent(
            id=int(event_id),
            repository=repository,
            tag=tag,
            action=row["action"],
            old_digest=row["old_digest"],
            new_digest=row["new_digest"],
            via=row["via"],
            actor=row["actor"],
            at=row["at"],
        )

    def list_tags(self, repository: str, after: str | None, limit: int | None) -> list[str]:
        name = self._ascii(m.tags.c.name)
        query = (
            select(m.tags.c.name)
            .join(m.repositories, m.repositories.c.id == m.tags.c.repository_id)
            .where(m.repositories.c.name == repository)
            .order_by(name)
        )
        if after is not None:
            query = query.where(name > after)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return self._first_column(conn, query)

    def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None
    ) -> list[ReferrerRecord]:
        query = (
            select(
                m.manifests.c.digest,
                m.manifests.c.media_type,
                m.manifests.c.size,
                m.manifests.c.artifact_type,
                m.manifests.c.annotations,
            )
            .join(m.repositories, m.repositories.c.id == m.manifests.c.repository_id)
            .where(m.repositories.c.name == repository, m.manifests.c.subject_digest == subject)
            .order_by(m.manifests.c.id)
        )
        if artifact_type is not None:
            query = query.where(m.manifests.c.artifact_type == artifact_type)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            ReferrerRecord(
                digest=row.digest,
                media_type=row.media_type,
                size=int(row.size),
                artifact_type=row.artifact_type,
                annotations=json.loads(row.annotations) if row.annotations else None,
            )
            for row in rows
        ]

    # -- upload sessions
    def create_upload(self, record: UploadRecord) -> None:
        values = {
            "id": record.upload_id,
            "repository": record.repository,
            "algorithm": record.algorithm,
            "created_at": record.created_at,
        }
        with self._write(durable=False) as conn:
            conn.execute(self._prepared("insert upload", m.uploads.insert), values)

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        query = self._prepared(
            "upload", lambda: select(m.uploads).where(m.uploads.c.id == bindparam("id"))
        )
        with self._read() as conn:
            row = conn.execute(query, {"id": upload_id}).first()
        if row is None:
            return None
        return UploadRecord(row.id, row.repository, row.algorithm, row.created_at)

    def delete_upload(self, upload_id: str) -> bool:
        with self._write(durable=False) as conn:
            return self._delete_upload(conn, upload_id)

    def _delete_upload(self, conn: Connection, upload_id: str) -> bool:
        statement = self._prepared(
            "delete upload", lambda: delete(m.uploads).where(m.uploads.c.id == bindparam("id"))
        )
        return bool(conn.execute(statement, {"id": upload_id}).rowcount)

    def count_uploads(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(m.uploads)).scalar_one())

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(text("SELECT 1"))


# -- the event log (record_events): pushes and deletions, in the change's transaction
def _log_push(
    conn: Connection,
    repository: str,
    manifest: ManifestRecord,
    tags: list[str],
    origin: ChangeOrigin,
) -> None:
    from cargohold import events as ev  # here: cargohold.events imports this package

    data = {"size": manifest.size, "tags": tags, "via": origin.via}
    if manifest.artifact_type:
        data["artifact_type"] = manifest.artifact_type
    if manifest.subject:
        data["subject"] = manifest.subject
    ev.record_in(
        conn,
        ev.PUSH,
        repository,
        digest=manifest.digest,
        tag=tags[0] if tags else None,
        media_type=manifest.media_type,
        actor=origin.actor,
        data=data,
    )


def _log_delete(
    conn: Connection,
    repository: str,
    digest: str,
    tag: str | None,
    tags: list[str],
    origin: ChangeOrigin,
) -> None:
    from cargohold import events as ev

    ev.record_in(
        conn,
        ev.DELETE,
        repository,
        digest=digest,
        tag=tag,
        actor=origin.actor,
        data={"target": "tag" if tag else "manifest", "tags": tags, "via": origin.via},
    )

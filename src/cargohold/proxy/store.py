"""Proxy rules, tag revalidation times and not-yet-fetched blobs in the metadata database.

A cached manifest is stored before its blobs are (they arrive when a client pulls them).
`manifest_blobs` rows need the blob row, so the references wait in `proxy_pending_blobs`
and become `manifest_blobs` rows in the transaction that records the fetched blob, under
the same digest lock an upload's commit takes (see storage/meta/sql_gc.py): garbage
collection never sees a fetched blob unreferenced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cargohold.storage.meta import models as m
from cargohold.storage.meta.sql import SqlMetadataStore
from cargohold.storage.meta.sql_versioning import aware
from cargohold.storage.meta.sqlbase import now as _now

LOCAL_FIRST = "local-first"
UPSTREAM_FIRST = "upstream-first"
MODES = (LOCAL_FIRST, UPSTREAM_FIRST)
WHOLE_REGISTRY = "*"


@dataclass(frozen=True, slots=True)
class ProxyRule:
    namespace: str  # "*": every repository no other rule matches
    upstream_url: str
    mirror_of: str | None
    remote_prefix: str | None
    username: str | None
    password_encrypted: str | None
    mode: str
    tag_ttl_seconds: int
    serve_stale_on_error: bool
    serve_stale_on_404: bool
    created_at: datetime
    created_by: str | None
    updated_at: datetime

    @property
    def has_password(self) -> bool:
        return self.password_encrypted is not None

    def remote_name(self, repository: str) -> str:
        """The repository's path upstream: the namespace dropped, the prefix put in front."""
        rest = repository if self.namespace == WHOLE_REGISTRY else repository.split("/", 1)[1]
        return f"{self.remote_prefix}/{rest}" if self.remote_prefix else rest

    def mirror_host(self) -> str:
        """The host name containerd names in `?ns=`: mirror_of, else the upstream's host."""
        if self.mirror_of:
            return self.mirror_of
        host = self.upstream_url.split("://", 1)[-1].split("/", 1)[0]
        return "docker.io" if host == "registry-1.docker.io" else host


@dataclass(frozen=True, slots=True)
class TagCheck:
    checked_at: datetime
    upstream_digest: str | None


RULE_FIELDS = (
    "upstream_url",
    "mirror_of",
    "remote_prefix",
    "username",
    "password_encrypted",
    "mode",
    "tag_ttl_seconds",
    "serve_stale_on_error",
    "serve_stale_on_404",
)


def _rule(row: Any) -> ProxyRule:
    values = dict(row._mapping)
    for key in ("created_at", "updated_at"):
        values[key] = aware(values[key])
    return ProxyRule(**values)


class ProxyStore(SqlMetadataStore):
    """The SQL metadata store plus the proxy's tables (same engine, same locks)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)

    # -- rules
    def rules(self) -> list[ProxyRule]:
        with self._read() as conn:
            rows = conn.execute(select(m.proxy_rules).order_by(m.proxy_rules.c.namespace))
            return [_rule(row) for row in rows]

    def rule(self, namespace: str) -> ProxyRule | None:
        with self._read() as conn:
            row = conn.execute(
                select(m.proxy_rules).where(m.proxy_rules.c.namespace == namespace)
            ).first()
        return None if row is None else _rule(row)

    def add_rule(self, namespace: str, values: dict[str, Any], created_by: str | None) -> bool:
        """False when the namespace has a rule already."""
        now = _now()
        try:
            with self._write() as conn:
                conn.execute(
                    insert(m.proxy_rules).values(
                        namespace=namespace,
                        created_at=now,
                        created_by=created_by,
                        updated_at=now,
                        **{key: values.get(key) for key in RULE_FIELDS},
                    )
                )
        except IntegrityError:
            return False
        return True

    def update_rule(self, namespace: str, changes: dict[str, Any]) -> bool:
        changes = {key: value for key, value in changes.items() if key in RULE_FIELDS}
        with self._write() as conn:
            result = conn.execute(
                update(m.proxy_rules)
                .where(m.proxy_rules.c.namespace == namespace)
                .values(updated_at=_now(), **changes)
            )
        return bool(result.rowcount)

    def remove_rule(self, namespace: str) -> bool:
        """The cached content stays (plain local images now); tag checks go."""
        with self._write() as conn:
            result = conn.execute(
                delete(m.proxy_rules).where(m.proxy_rules.c.namespace == namespace)
            )
            if namespace == WHOLE_REGISTRY:
                conn.execute(delete(m.proxy_tag_checks))
            else:
                conn.execute(
                    delete(m.proxy_tag_checks).where(
                        m.proxy_tag_checks.c.repository.startswith(f"{namespace}/", autoescape=True)
                    )
                )
        return bool(result.rowcount)

    # -- tag revalidation
    def tag_check(self, repository: str, tag: str) -> TagCheck | None:
        t = m.proxy_tag_checks
        with self._read() as conn:
            row = conn.execute(
                select(t.c.checked_at, t.c.upstream_digest).where(
                    t.c.repository == repository, t.c.tag == tag
                )
            ).first()
        return None if row is None else TagCheck(aware(row.checked_at), row.upstream_digest)

    def record_tag_check(self, repository: str, tag: str, upstream_digest: str | None) -> None:
        t = m.proxy_tag_checks
        with self._write() as conn:
            conn.execute(
                self._insert(t)
                .values(
                    repository=repository,
                    tag=tag,
                    checked_at=_now(),
                    upstream_digest=upstream_digest,
                )
                .on_conflict_do_update(
                    index_elements=["repository", "tag"],
                    set_={"checked_at": _now(), "upstream_digest": upstream_digest},
                )
            )

    # -- blobs of cached manifests
    def add_pending(
        self, repository: str, manifest_digest: str, blobs: Iterable[tuple[str, int]]
    ) -> None:
        """Remember blobs `manifest_digest` references that are not in the repository yet."""
        with self._write() as conn:
            repo_id = self._ensure_repository(conn, repository)
            manifest_id = conn.execute(
                select(m.manifests.c.id).where(
                    m.manifests.c.repository_id == repo_id,
                    m.manifests.c.digest == manifest_digest,
                )
            ).scalar()
            if manifest_id is None:
                return  # collected meanwhile; the next pull stores it again
            rows = [
                {"manifest_id": manifest_id, "digest": d, "repository_id": repo_id, "size": s}
                for d, s in dict(blobs).items()
            ]
            if rows:
                conn.execute(self._insert(m.proxy_pending_blobs).on_conflict_do_nothing(), rows)

    def pending_size(self, repository: str, digest: str) -> int | None:
        """The size a cached manifest declares for a blob not fetched yet, if any does."""
        p = m.proxy_pending_blobs
        with self._read() as conn:
            return conn.execute(
                select(p.c.size)
                .join(m.repositories, m.repositories.c.id == p.c.repository_id)
                .where(m.repositories.c.name == repository, p.c.digest == digest)
                .limit(1)
            ).scalar()

    def _resolve_pending(self, conn: Any, repository: str, digest: str) -> None:
        """Pending references to `digest` in the repository become manifest_blobs rows."""
        p = m.proxy_pending_blobs
        repo_id = self._ensure_repository(conn, repository)
        manifest_ids = list(
            conn.execute(
                select(p.c.manifest_id).where(p.c.repository_id == repo_id, p.c.digest == digest)
            ).scalars()
        )
        if manifest_ids:
            conn.execute(
                self._insert(m.manifest_blobs).on_conflict_do_nothing(),
                [{"manifest_id": i, "digest": digest} for i in manifest_ids],
            )
            conn.execute(delete(p).where(p.c.repository_id == repo_id, p.c.digest == digest))

    def commit_fetched_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        store: Callable[[], None],
        discard: Callable[[], None] | None = None,
    ) -> None:
        """commit_blob (quota, digest lock, link) plus the pending references, atomically."""
        with self._digest_locked([digest]) as conn:
            self._refuse_over_quota(conn, repository, digest, size, lock=not self._sqlite)
            store()
            self._link(conn, repository, digest, size)
            self._resolve_pending(conn, repository, digest)

    def link_pending_blob(self, repository: str, digest: str) -> bool:
        """A blob a cached manifest here references, stored already (another repository
        fetched or pushed it): link it without asking the upstream. False otherwise."""
        p = m.proxy_pending_blobs
        try:
            with self._digest_locked([digest]) as conn:
                pending = conn.execute(
                    select(p.c.size)
                    .join(m.repositories, m.repositories.c.id == p.c.repository_id)
                    .where(m.repositories.c.name == repository, p.c.digest == digest)
                    .limit(1)
                ).first()
                size = conn.execute(
                    select(m.blobs.c.size).where(m.blobs.c.digest == digest)
                ).scalar()
                if pending is None or size is None:
                    return False
                self._refuse_over_quota(conn, repository, digest, int(size), lock=True)
                self._link(conn, repository, digest, int(size))
                self._resolve_pending(conn, repository, digest)
        except IntegrityError:
            return False
        return True

    def pending_count(self, repository: str | None = None) -> int:
        p = m.proxy_pending_blobs
        query = select(p.c.digest)
        if repository is not None:
            query = query.join(m.repositories, m.repositories.c.id == p.c.repository_id).where(
                m.repositories.c.name == repository
            )
        with self._read() as conn:
            return len(conn.execute(query).all())


def unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))

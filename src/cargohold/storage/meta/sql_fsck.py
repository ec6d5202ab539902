"""What `cargohold fsck` reads from the metadata database: one consistent inventory.

Read-only. Repairs go through the MetadataStore's own conditional deletes (sql_gc.py),
which re-check in the database that nothing references what they remove.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, select

from cargohold.storage.meta import models as m


@dataclass(frozen=True, slots=True)
class ManifestRow:
    id: int
    repository_id: int
    digest: str
    media_type: str
    size: int
    subject: str | None


@dataclass(slots=True)
class Inventory:
    repositories: dict[int, str]
    blobs: dict[str, int]  # digest -> recorded size
    links: dict[str, set[int]]  # blob digest -> repository ids that link it
    manifests: dict[int, ManifestRow]
    blob_refs: dict[int, set[str]]  # manifest id -> blob digests it names
    children: dict[int, set[str]]  # manifest id -> manifest digests it lists
    tags: list[tuple[int, str, int]]  # (repository id, tag, manifest id)
    by_digest: dict[tuple[int, str], int] = field(default_factory=dict)  # -> manifest id

    def __post_init__(self) -> None:
        for row in self.manifests.values():
            self.by_digest[(row.repository_id, row.digest)] = row.id


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
        else:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn


def repository_id(engine: Engine, name: str) -> int | None:
    with engine.connect() as conn:
        value = conn.execute(
            select(m.repositories.c.id).where(m.repositories.c.name == name)
        ).scalar()
    return None if value is None else int(value)


def read_inventory(engine: Engine, only_repository: int | None = None) -> Inventory:
    """Every row fsck checks, from one snapshot; `only_repository` limits repositories,
    links, manifests and tags to one repository, and blobs to those it links or names."""
    with _snapshot(engine) as conn:
        repos = select(m.repositories.c.id, m.repositories.c.name)
        links_q = select(m.repository_blobs.c.repository_id, m.repository_blobs.c.digest)
        manifests_q = select(
            m.manifests.c.id,
            m.manifests.c.repository_id,
            m.manifests.c.digest,
            m.manifests.c.media_type,
            m.manifests.c.size,
            m.manifests.c.subject_digest,
        )
        tags_q = select(m.tags.c.repository_id, m.tags.c.name, m.tags.c.manifest_id)
        refs_q = select(m.manifest_blobs.c.manifest_id, m.manifest_blobs.c.digest)
        children_q = select(m.manifest_children.c.manifest_id, m.manifest_children.c.child_digest)
        if only_repository is not None:
            repos = repos.where(m.repositories.c.id == only_repository)
            links_q = links_q.where(m.repository_blobs.c.repository_id == only_repository)
            manifests_q = manifests_q.where(m.manifests.c.repository_id == only_repository)
            tags_q = tags_q.where(m.tags.c.repository_id == only_repository)
            mine = select(m.manifests.c.id).where(m.manifests.c.repository_id == only_repository)
            refs_q = refs_q.where(m.manifest_blobs.c.manifest_id.in_(mine))
            children_q = children_q.where(m.manifest_children.c.manifest_id.in_(mine))
        repositories = {int(row.id): row.name for row in conn.execute(repos)}
        links: dict[str, set[int]] = {}
        for row in conn.execute(links_q):
            links.setdefault(row.digest, set()).add(int(row.repository_id))
        manifests = {
            int(row.id): ManifestRow(
                int(row.id),
                int(row.repository_id),
                row.digest,
                row.media_type,
                int(row.size),
                row.subject_digest,
            )
            for row in conn.execute(manifests_q)
        }
        blob_refs: dict[int, set[str]] = {}
        for row in conn.execute(refs_q):
            blob_refs.setdefault(int(row.manifest_id), set()).add(row.digest)
        children: dict[int, set[str]] = {}
        for row in conn.execute(children_q):
            children.setdefault(int(row.manifest_id), set()).add(row.child_digest)
        tags = [
            (int(row.repository_id), row.name, int(row.manifest_id)) for row in conn.execute(tags_q)
        ]
        blobs = {row.digest: int(row.size) for row in conn.execute(select(m.blobs))}
        if only_repository is not None:
            wanted = set(links).union(*blob_refs.values())
            blobs = {digest: size for digest, size in blobs.items() if digest in wanted}
    return Inventory(repositories, blobs, links, manifests, blob_refs, children, tags)


def manifest_contents(engine: Engine, ids: set[int]) -> Iterator[tuple[int, bytes]]:
    """The stored bytes of the given manifests, streamed in batches."""
    wanted = sorted(ids)
    for start in range(0, len(wanted), 200):
        batch = wanted[start : start + 200]
        with engine.connect() as conn:
            rows = conn.execute(
                select(m.manifests.c.id, m.manifests.c.content).where(m.manifests.c.id.in_(batch))
            ).all()
        for row in rows:
            yield int(row.id), bytes(row.content)

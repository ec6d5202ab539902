"""The Redis lookup cache in front of the metadata store: shared, invalidated, optional."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cargohold.shared_redis import redis_client
from cargohold.storage.meta import ManifestRecord, SqlMetadataStore, schema
from cargohold.storage.meta.cached import RedisCachedMetadataStore
from cargohold.storage.meta.sqlbase import create_sql_engine

REDIS_URL = "redis://127.0.0.1:6379/0"


def record(text: str) -> ManifestRecord:
    return ManifestRecord(
        digest="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
        media_type="application/vnd.oci.image.manifest.v1+json",
        content=text.encode(),
        annotations={"org.example": "ünïcode"},
    )


@pytest.fixture
def database(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    schema.upgrade(engine)
    yield SqlMetadataStore(engine)
    engine.dispose()


def replica(database: SqlMetadataStore, prefix: str) -> RedisCachedMetadataStore:
    return RedisCachedMetadataStore(database, redis_client(REDIS_URL), prefix)


def test_lookups_are_answered_from_redis_until_a_write(database: SqlMetadataStore) -> None:
    cached = replica(database, f"test-{uuid.uuid4().hex}")
    one, two = record("one"), record("two")
    cached.put_manifest("r", one, [], [], ["prod"])
    assert cached.get_tagged_manifest("r", "prod") == one
    # Behind the cache's back (as a process without the cache would): still the cached one,
    # which proves the answer comes from Redis...
    database.put_manifest("r", two, [], [], ["prod"])
    assert cached.get_tagged_manifest("r", "prod") == one
    # ...and a write through the cache makes every later lookup see the database again.
    cached.delete_tag("r", "other")
    assert cached.get_tagged_manifest("r", "prod") == two


def test_a_write_on_one_replica_invalidates_the_others(database: SqlMetadataStore) -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    a, b = replica(database, prefix), replica(database, prefix)
    one, two = record("one"), record("two")
    a.put_manifest("r", one, [], [], ["prod"])
    assert a.get_tagged_manifest("r", "prod") == one
    assert b.get_tagged_manifest("r", "prod") == one
    b.put_manifest("r", two, [], [], ["prod"])
    assert a.get_tagged_manifest("r", "prod") == two
    b.delete_manifest("r", two.digest)
    assert a.get_manifest("r", two.digest) is None
    assert a.get_tagged_manifest("r", "prod") is None


def test_other_repositories_keep_their_entries(database: SqlMetadataStore) -> None:
    cached = replica(database, f"test-{uuid.uuid4().hex}")
    one = record("one")
    cached.put_manifest("keep", one, [], [], ["t"])
    assert cached.get_tagged_manifest("keep", "t") == one
    database.delete_tag("keep", "t")  # unseen by the cache
    cached.put_manifest("other", one, [], [], ["t"])  # invalidates "other" only
    assert cached.get_tagged_manifest("keep", "t") == one


def test_without_redis_lookups_go_to_the_database(database: SqlMetadataStore) -> None:
    dead = RedisCachedMetadataStore(database, redis_client("redis://127.0.0.1:1/0"), "x")
    one = record("one")
    dead.put_manifest("r", one, [], [], ["prod"])  # the failed invalidation is only logged
    assert dead.get_tagged_manifest("r", "prod") == one
    dead.link_blob("r", "sha256:" + "a" * 64, 7)
    assert dead.blob_size("r", "sha256:" + "a" * 64) == 7

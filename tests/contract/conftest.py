"""Backends under contract: each fixture param is one backend; every test runs on all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from tests.conftest import scratch_postgres_database
from tests.contract.s3_server import moto_server, scratch_s3_store

from cargohold.shared_redis import redis_client
from cargohold.storage.blobs import BlobStore, FilesystemBlobStore
from cargohold.storage.blobs.locks import RedisUploadLocks
from cargohold.storage.meta import MetadataStore, SqlMetadataStore, schema
from cargohold.storage.meta.cached import LocalCachedMetadataStore, RedisCachedMetadataStore
from cargohold.storage.meta.sql import create_sql_engine


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 on 127.0.0.1, started once per test session, only when a test asks."""
    with moto_server() as endpoint:
        yield endpoint


REDIS_URL = "redis://127.0.0.1:6379/0"


def scratch_redis_prefix() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture(params=["filesystem", "s3", "s3-redis-locks"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "filesystem":
        yield FilesystemBlobStore(tmp_path / "blobs")
    elif request.param.startswith("s3"):
        locks = None
        if request.param == "s3-redis-locks":
            locks = RedisUploadLocks(redis_client(REDIS_URL), scratch_redis_prefix())
        with scratch_s3_store(request.getfixturevalue("s3_endpoint"), locks=locks) as store:
            yield store
    else:
        raise AssertionError(request.param)


@pytest.fixture(params=["sqlite", "sqlite-local-cache", "postgresql", "postgresql-redis-cache"])
def meta_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    """Each backend; the cached ones answer repeated lookups from Redis or from memory, so
    every test that reads after a write checks their invalidation too."""
    with ExitStack() as stack:
        if request.param.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / 'meta.db'}"
        else:
            url = stack.enter_context(scratch_postgres_database())
        engine = create_sql_engine(url)
        schema.upgrade(engine)
        store: MetadataStore = SqlMetadataStore(engine)
        if request.param.endswith("redis-cache"):
            store = RedisCachedMetadataStore(store, redis_client(REDIS_URL), scratch_redis_prefix())
        if request.param.endswith("local-cache"):
            store = LocalCachedMetadataStore(store, tmp_path / "generations", max_entries=1000)
        yield store
        engine.dispose()

"""Backends under contract: each fixture param is one backend; every test runs on all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from tests.conftest import scratch_postgres_database
from tests.contract.s3_server import moto_server, scratch_s3_store

from cargohold.storage.blobs import BlobStore, FilesystemBlobStore
from cargohold.storage.meta import MetadataStore, SqlMetadataStore, schema
from cargohold.storage.meta.sql import create_sql_engine


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 on 127.0.0.1, started once per test session, only when a test asks."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["filesystem", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "filesystem":
        yield FilesystemBlobStore(tmp_path / "blobs")
    elif request.param == "s3":
        with scratch_s3_store(request.getfixturevalue("s3_endpoint")) as store:
            yield store
    else:
        raise AssertionError(request.param)


@pytest.fixture(params=["sqlite", "postgresql"])
def meta_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'meta.db'}"
        else:
            url = stack.enter_context(scratch_postgres_database())
        engine = create_sql_engine(url)
        schema.upgrade(engine)
        store = SqlMetadataStore(engine)
        yield store
        store.close()

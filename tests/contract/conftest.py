"""Backends under contract: each fixture param is one backend; every test runs on all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from tests.conftest import scratch_postgres_database

from cargohold.storage.blobs import BlobStore, FilesystemBlobStore
from cargohold.storage.meta import MetadataStore, SqlMetadataStore, schema
from cargohold.storage.meta.sql import create_sql_engine


@pytest.fixture(params=["filesystem"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path / "blobs")
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

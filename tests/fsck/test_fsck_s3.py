"""fsck against the S3 blob store, on moto's S3 server over loopback."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests.contract.s3_server import moto_server, scratch_s3_store

from cargohold.core.fsck import Fsck, FsckOptions
from cargohold.core.registry import Registry
from cargohold.storage.blobs.s3 import S3BlobStore
from cargohold.storage.meta import SqlMetadataStore, schema
from cargohold.storage.meta.sqlbase import create_sql_engine

from .conftest import push_blob, push_image, sha256


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def s3_registry(endpoint: str, tmp_path: Path) -> Iterator[tuple[Registry, S3BlobStore, Fsck]]:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    schema.upgrade(engine)
    meta = SqlMetadataStore(engine)
    with scratch_s3_store(endpoint) as blobs:
        yield Registry(blobs, meta, 4 << 20), blobs, Fsck(meta, blobs, engine)
    engine.dispose()


def key(store: S3BlobStore, digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"{store.prefix}blobs/{algorithm}/{encoded[:2]}/{encoded}"


def kinds(report: dict) -> set[tuple[str, str]]:
    return {(f["kind"], f["subject"]) for f in report["findings"]}


def test_fsck_and_repair_on_s3(s3_registry: tuple[Registry, S3BlobStore, Fsck]) -> None:
    registry, store, fsck = s3_registry
    image = push_image(registry, "team/app", "v1", layers=3)
    loose = push_blob(registry, "team/app", os.urandom(500))["digest"]
    assert fsck.run(FsckOptions()).to_dict()["findings"] == []

    client, bucket = store.client, store.bucket
    client.delete_object(Bucket=bucket, Key=key(store, image.layers[0]))
    client.delete_object(Bucket=bucket, Key=key(store, loose))
    corrupt = image.layers[1]
    client.put_object(Bucket=bucket, Key=key(store, corrupt), Body=os.urandom(2049))
    orphan_bytes = os.urandom(700)
    orphan = sha256(orphan_bytes)
    client.put_object(Bucket=bucket, Key=key(store, orphan), Body=orphan_bytes)

    found = fsck.run(FsckOptions()).to_dict()
    assert kinds(found) == {
        ("blob_missing", image.layers[0]),
        ("blob_missing", loose),
        ("blob_digest_mismatch", corrupt),
        ("orphan_file_young", orphan),  # just written: within the grace
    }

    time.sleep(1.1)  # S3 keeps LastModified in whole seconds
    repaired = fsck.run(FsckOptions(repair=True, grace=timedelta(0))).to_dict()
    assert {(i["kind"], i["subject"]) for i in repaired["repaired"]} == {
        ("blob_missing", loose),
        ("blob_digest_mismatch", corrupt),
        ("orphan_file", orphan),
    }
    assert store.stat(orphan) is None and store.stat(corrupt) is None
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{store.prefix}quarantine/")
    names = [item["Key"] for item in listed.get("Contents", ())]
    assert len(names) == 1 and corrupt.replace(":", "-") in names[0]

    after = fsck.run(FsckOptions(grace=timedelta(0))).to_dict()
    assert kinds(after) == {("blob_missing", image.layers[0]), ("blob_missing", corrupt)}
    push_blob(registry, "team/app", image.layer_bytes[1])
    push_blob(registry, "team/app", image.layer_bytes[0])
    assert fsck.run(FsckOptions(grace=timedelta(0))).to_dict()["findings"] == []

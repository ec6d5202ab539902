"""Garbage collection against real stores (SQLite and PostgreSQL, files on disk)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from tests.conftest import scratch_postgres_database

from cargohold.core.gc import GarbageCollector, GcOptions, collect
from cargohold.core.registry import Registry
from cargohold.errors import ManifestUnknown, TagInvalid
from cargohold.storage.blobs import FilesystemBlobStore
from cargohold.storage.meta import SqlMetadataStore, schema
from cargohold.storage.meta.sqlbase import create_sql_engine

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
NOW = GcOptions(grace=timedelta(0))  # everything unreferenced is old enough


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'meta.db'}"
        else:
            url = stack.enter_context(scratch_postgres_database())
        engine = create_sql_engine(url)
        schema.upgrade(engine)
        yield Registry(FilesystemBlobStore(tmp_path / "blobs"), SqlMetadataStore(engine), 4 << 20)
        engine.dispose()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(registry: Registry, repository: str, data: bytes) -> dict[str, object]:
    upload_id = str(uuid.uuid4())
    store = registry.blob_store
    store.start_upload(upload_id)
    with store.open_upload(upload_id, 0) as writer:
        writer.write(data)
    registry.meta.commit_blob(
        repository, digest(data), len(data), lambda: store.commit_upload(upload_id, digest(data))
    )
    return {"mediaType": "application/octet-stream", "digest": digest(data), "size": len(data)}


def image(registry: Registry, repository: str, tag: str | None, *layers: bytes, **extra) -> str:
    config = blob(registry, repository, b"{}")
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {**config, "mediaType": "application/vnd.oci.image.config.v1+json"},
            "layers": [blob(registry, repository, layer) for layer in layers],
            **extra,
        }
    ).encode()
    reference = tag or digest(body)
    return registry.manifests.put(repository, reference, body, OCI_MANIFEST).digest


def stored(registry: Registry, data: bytes) -> bool:
    return registry.blob_store.stat(digest(data)) is not None


def run(registry: Registry, options: GcOptions = NOW):
    return GarbageCollector(registry.meta, registry.blob_store).run(options)


def test_referenced_content_survives_and_bytes_are_counted(registry: Registry) -> None:
    image(registry, "team/app", "v1", b"shared", b"only-v1")
    second = image(registry, "team/app", "v2", b"shared", b"only-v2")
    blob(registry, "team/app", b"uploaded, never referenced")
    report = run(registry)
    assert (report.blobs_deleted, report.bytes_freed) == (1, len(b"uploaded, never referenced"))
    assert not stored(registry, b"uploaded, never referenced")
    registry.manifests.delete("team/app", second)
    report = run(registry)
    assert (report.manifests_deleted, report.blobs_deleted) == (0, 1)
    assert report.bytes_freed == len(b"only-v2")
    assert stored(registry, b"shared") and stored(registry, b"only-v1")
    assert not stored(registry, b"only-v2")
    assert registry.manifests.get("team/app", "v1") is not None
    assert run(registry).blobs_deleted == 0


def test_grace_period_keeps_young_garbage(registry: Registry) -> None:
    blob(registry, "team/app", b"just uploaded")
    report = run(registry, GcOptions(grace=timedelta(hours=1)))
    assert report.blobs_deleted == 0 and stored(registry, b"just uploaded")


def test_untagged_manifests_go_only_when_asked(registry: Registry) -> None:
    untagged = image(registry, "team/app", None, b"untagged layer")
    assert run(registry).manifests_deleted == 0
    report = run(registry, GcOptions(grace=timedelta(0), delete_untagged=True))
    assert report.manifests_deleted == 1 and report.blobs_deleted == 2  # layer and config
    assert registry.meta.get_manifest("team/app", untagged) is None
    assert not stored(registry, b"untagged layer")


def test_tag_history_keeps_rollback_targets_for_its_window(registry: Registry) -> None:
    first = image(registry, "team/app", "prod", b"first")
    image(registry, "team/app", "prod", b"second")  # first is untagged now
    options = GcOptions(grace=timedelta(0), delete_untagged=True)
    assert run(registry, options).manifests_deleted == 0
    assert registry.tags.rollback("team/app", "prod", first, "ops").digest == first
    image(registry, "team/app", "prod", b"third")
    expired = GcOptions(grace=timedelta(0), delete_untagged=True, history_window=timedelta(0))
    report = run(registry, expired)
    assert report.manifests_deleted == 2  # first and second, no longer in the window
    assert not stored(registry, b"first") and stored(registry, b"third")


def test_index_children_and_referrers_live_with_their_parent(registry: Registry) -> None:
    child = image(registry, "team/app", None, b"amd64")
    size = len(registry.meta.get_manifest("team/app", child).content)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": size}],
        }
    ).encode()
    registry.manifests.put("team/app", "multi", index, OCI_INDEX)
    subject = {"mediaType": OCI_MANIFEST, "digest": child, "size": size}
    signature = image(registry, "team/app", None, b"signature", subject=subject)
    options = GcOptions(grace=timedelta(0), delete_untagged=True, history_window=timedelta(0))
    assert run(registry, options).manifests_deleted == 0
    registry.manifests.delete("team/app", "multi")
    report = run(registry, options)
    # The index's tag went; the index, its child, and the child's signature follow.
    assert report.manifests_deleted == 3
    assert registry.meta.get_manifest("team/app", signature) is None
    assert not stored(registry, b"amd64") and not stored(registry, b"signature")


def test_dry_run_reports_exactly_what_the_run_then_frees(registry: Registry) -> None:
    for n in range(5):
        image(registry, f"team/r{n % 2}", f"t{n}", b"common", f"layer {n}".encode())
        blob(registry, f"team/r{n % 2}", f"orphan {n}".encode())
    for n in range(3):
        registry.manifests.delete(f"team/r{n % 2}", f"t{n}")
    options = GcOptions(grace=timedelta(0), delete_untagged=True, history_window=timedelta(0))
    dry = run(registry, dataclasses.replace(options, dry_run=True))
    real = run(registry, options)
    assert dry.dry_run and not real.dry_run
    for field in ("manifests_deleted", "links_removed", "blobs_deleted", "bytes_freed"):
        assert getattr(dry, field) == getattr(real, field), field
    assert dry.repositories == real.repositories
    assert real.blobs_deleted >= 8 and run(registry, options).blobs_deleted == 0


def test_abandoned_uploads_go_and_live_ones_stay(registry: Registry) -> None:
    old = registry.uploads.start("team/app")
    store = registry.blob_store
    with store.open_upload(old.upload_id, 0) as writer:
        writer.write(b"half a layer")
    report = run(registry, GcOptions(upload_max_age=timedelta(hours=1)))
    assert report.uploads_removed == 0 and store.upload_size(old.upload_id) == 12
    report = run(registry, GcOptions(upload_max_age=timedelta(0)))
    assert report.uploads_removed == 1
    assert store.upload_size(old.upload_id) is None
    assert registry.meta.get_upload(old.upload_id) is None


def test_runs_are_logged(registry: Registry) -> None:
    blob(registry, "team/app", b"x")
    collect(registry.meta, registry.blob_store, NOW, "cli")
    runs = registry.meta.gc_runs()
    assert runs[0]["trigger"] == "cli" and runs[0]["blobs_deleted"] == 1


def test_rollback_targets_in_every_form(registry: Registry) -> None:
    first = image(registry, "team/app", "prod", b"one")
    image(registry, "team/app", "prod", b"two")
    events = registry.tags.history("team/app", "prod")
    assert registry.tags.rollback("team/app", "prod", str(events[-1].id), "ops").digest == first
    registry.tags.rollback("team/app", "prod", None, "ops")  # undo: back to two
    moment = events[-1].at.astimezone(timezone(timedelta(hours=5))).isoformat()
    assert registry.tags.rollback("team/app", "prod", moment, "ops").digest == first
    for hostile in ("²", "9" * 30, "not a time", "0001-01-01T00:00+05:00"):
        with pytest.raises((ManifestUnknown, TagInvalid)):
            registry.tags.rollback("team/app", "prod", hostile, "ops")
    with pytest.raises(ManifestUnknown, match="never held"):
        registry.tags.rollback("team/app", "prod", "sha256:" + "0" * 64, "ops")

"""The MetadataStore contract: every backend passes these."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime

import pytest

from cargohold.errors import ManifestBlobUnknown
from cargohold.storage.meta import ManifestRecord, MetadataStore, UploadRecord


def dg(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def manifest(text: str, subject: str | None = None, artifact_type: str | None = None):
    body = text.encode()
    return ManifestRecord(
        digest=dg(text),
        media_type="application/vnd.oci.image.manifest.v1+json",
        content=body,
        artifact_type=artifact_type,
        subject=subject,
        annotations={"k": "v"} if subject else None,
    )


def test_blob_visibility_is_per_repository(meta_store: MetadataStore) -> None:
    meta_store.link_blob("a/one", dg("x"), 10)
    assert meta_store.blob_size("a/one", dg("x")) == 10
    assert meta_store.blob_size("a/two", dg("x")) is None
    assert meta_store.blob_sizes("a/one", [dg("x"), dg("y")]) == {dg("x"): 10}
    assert meta_store.repository_exists("a/one")
    assert not meta_store.repository_exists("a/two")


def test_link_is_idempotent_and_unlink_hides(meta_store: MetadataStore) -> None:
    meta_store.link_blob("r", dg("x"), 1)
    meta_store.link_blob("r", dg("x"), 1)
    assert meta_store.unlink_blob("r", dg("x")) is True
    assert meta_store.unlink_blob("r", dg("x")) is False
    assert meta_store.blob_size("r", dg("x")) is None
    assert meta_store.unlink_blob("nope", dg("x")) is False


def test_put_get_manifest_by_digest_and_tag(meta_store: MetadataStore) -> None:
    meta_store.link_blob("r", dg("layer"), 5)
    record = manifest("m1")
    meta_store.put_manifest("r", record, [dg("layer")], [], ["latest", "v1"])
    assert meta_store.get_manifest("r", record.digest) == record
    assert meta_store.get_tagged_manifest("r", "latest") == record
    assert meta_store.get_tagged_manifest("other", "latest") is None
    assert meta_store.list_tags("r", None, None) == ["latest", "v1"]
    assert meta_store.existing_manifests("r", [record.digest, dg("no")]) == {record.digest}


def test_manifest_with_unknown_blob_is_refused(meta_store: MetadataStore) -> None:
    with pytest.raises(ManifestBlobUnknown):
        meta_store.put_manifest("r", manifest("m"), [dg("never stored")], [], ["t"])
    assert meta_store.get_manifest("r", dg("m")) is None
    assert meta_store.list_tags("r", None, None) == []


def test_tag_moves_to_new_manifest(meta_store: MetadataStore) -> None:
    first, second = manifest("one"), manifest("two")
    meta_store.put_manifest("r", first, [], [], ["prod"])
    meta_store.put_manifest("r", second, [], [], ["prod"])
    assert meta_store.get_tagged_manifest("r", "prod") == second
    assert meta_store.get_manifest("r", first.digest) == first


def test_delete_manifest_removes_its_tags(meta_store: MetadataStore) -> None:
    record = manifest("gone")
    meta_store.put_manifest("r", record, [], [], ["a", "b"])
    assert meta_store.delete_manifest("r", record.digest) is True
    assert meta_store.get_manifest("r", record.digest) is None
    assert meta_store.list_tags("r", None, None) == []
    assert meta_store.delete_manifest("r", record.digest) is False


def test_delete_tag_keeps_manifest(meta_store: MetadataStore) -> None:
    record = manifest("kept")
    meta_store.put_manifest("r", record, [], [], ["t"])
    assert meta_store.delete_tag("r", "t") is True
    assert meta_store.delete_tag("r", "t") is False
    assert meta_store.get_manifest("r", record.digest) == record


def test_tag_listing_is_ascii_ordered_and_paginated(meta_store: MetadataStore) -> None:
    record = manifest("tagged")
    names = ["b", "A", "a", "Z", "1.0", "_x", "10"]
    meta_store.put_manifest("r", record, [], [], names)
    assert meta_store.list_tags("r", None, None) == sorted(names)
    assert meta_store.list_tags("r", None, 2) == sorted(names)[:2]
    assert meta_store.list_tags("r", "Z", None) == [t for t in sorted(names) if t > "Z"]


def test_repository_listing(meta_store: MetadataStore) -> None:
    for name in ("b/x", "a/y", "c"):
        meta_store.link_blob(name, dg(name), 1)
    assert meta_store.list_repositories(None, None) == ["a/y", "b/x", "c"]
    assert meta_store.list_repositories("a/y", 1) == ["b/x"]


def test_referrers_by_subject_and_artifact_type(meta_store: MetadataStore) -> None:
    subject = dg("subject")
    sbom = manifest("sbom", subject=subject, artifact_type="application/sbom")
    sig = manifest("sig", subject=subject, artifact_type="application/sig")
    meta_store.put_manifest("r", sbom, [], [], [])
    meta_store.put_manifest("r", sig, [], [], [])
    found = meta_store.list_referrers("r", subject, None)
    assert [r.digest for r in found] == [sbom.digest, sig.digest]
    assert found[0].annotations == {"k": "v"} and found[0].size == sbom.size
    filtered = meta_store.list_referrers("r", subject, "application/sig")
    assert [r.digest for r in filtered] == [sig.digest]
    assert meta_store.list_referrers("elsewhere", subject, None) == []


def test_upload_sessions(meta_store: MetadataStore) -> None:
    record = UploadRecord("id-1", "r", "sha256", datetime.now(UTC))
    assert meta_store.count_uploads() == 0
    meta_store.create_upload(record)
    assert meta_store.count_uploads() == 1
    found = meta_store.get_upload("id-1")
    assert found is not None and found.repository == "r" and found.algorithm == "sha256"
    assert meta_store.delete_upload("id-1") is True
    assert meta_store.get_upload("id-1") is None
    assert meta_store.delete_upload("id-1") is False


def test_concurrent_pushes_of_same_tag_leave_one_winner(meta_store: MetadataStore) -> None:
    records = [manifest(f"racer-{i}") for i in range(8)]
    errors: list[BaseException] = []

    def push(record: ManifestRecord) -> None:
        try:
            meta_store.put_manifest("race", record, [], [], ["latest"])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(r,)) for r in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    winner = meta_store.get_tagged_manifest("race", "latest")
    assert winner in records
    assert meta_store.list_tags("race", None, None) == ["latest"]


def test_concurrent_links_of_same_blob(meta_store: MetadataStore) -> None:
    errors: list[BaseException] = []

    def link() -> None:
        try:
            meta_store.link_blob("same", dg("blob"), 3)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=link) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert meta_store.blob_size("same", dg("blob")) == 3


def test_every_write_is_seen_by_the_next_read(meta_store: MetadataStore) -> None:
    """Reads before and after each write: a caching backend must not answer from before."""
    first, second = manifest("first"), manifest("second")
    meta_store.link_blob("r", dg("layer"), 3)
    assert meta_store.blob_size("r", dg("layer")) == 3
    meta_store.put_manifest("r", first, [dg("layer")], [], ["prod"])
    assert meta_store.get_tagged_manifest("r", "prod") == first
    assert meta_store.get_manifest("r", first.digest) == first
    meta_store.put_manifest("r", second, [], [], ["prod"])
    assert meta_store.get_tagged_manifest("r", "prod") == second
    assert meta_store.delete_tag("r", "prod") is True
    assert meta_store.get_tagged_manifest("r", "prod") is None
    meta_store.put_manifest("r", second, [], [], ["prod"])
    assert meta_store.get_tagged_manifest("r", "prod") == second
    assert meta_store.delete_manifest("r", second.digest) is True
    assert meta_store.get_manifest("r", second.digest) is None
    assert meta_store.get_tagged_manifest("r", "prod") is None
    assert meta_store.delete_manifest("r", first.digest) is True
    assert meta_store.unlink_blob("r", dg("layer")) is True
    assert meta_store.blob_size("r", dg("layer")) is None

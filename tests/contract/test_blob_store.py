"""The BlobStore contract: every backend passes these."""

from __future__ import annotations

import hashlib

import pytest

from cargohold.storage.blobs import BlobStore, UploadOffsetMismatch


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload(store: BlobStore, upload_id: str, *parts: bytes) -> None:
    store.start_upload(upload_id)
    offset = 0
    for part in parts:
        with store.open_upload(upload_id, offset) as writer:
            writer.write(part)
        offset += len(part)


def test_missing_blob_is_absent(blob_store: BlobStore) -> None:
    missing = digest_of(b"nothing")
    assert blob_store.stat(missing) is None
    assert blob_store.delete(missing) is False
    with pytest.raises(FileNotFoundError):
        blob_store.read(missing)


def test_upload_commit_read_roundtrip(blob_store: BlobStore) -> None:
    data = b"a" * 3000 + b"b" * 5000
    upload(blob_store, "u1", data[:3000], data[3000:])
    assert blob_store.upload_size("u1") == len(data)
    digest = digest_of(data)
    assert blob_store.stat(digest) is None  # not visible before commit
    blob_store.commit_upload("u1", digest)
    assert blob_store.stat(digest) == len(data)
    assert b"".join(blob_store.read(digest)) == data
    assert blob_store.upload_size("u1") is None
    assert digest in set(blob_store.digests())


def test_a_flushed_writer_can_be_committed_while_held(blob_store: BlobStore) -> None:
    # The core's one-step finish: write, flush, flush_upload and commit under one writer.
    data = b"small blob " * 100
    digest = digest_of(data)
    blob_store.start_upload("uf")
    with blob_store.open_upload("uf", 0) as writer:
        writer.write(data)
        writer.flush()
        assert blob_store.upload_size("uf") == len(data)
        blob_store.flush_upload("uf")
        blob_store.commit_upload("uf", digest)
    assert b"".join(blob_store.read(digest)) == data
    assert blob_store.upload_size("uf") is None


def test_read_at_offset_and_length(blob_store: BlobStore) -> None:
    data = bytes(range(256)) * 10
    upload(blob_store, "u2", data)
    digest = digest_of(data)
    blob_store.commit_upload("u2", digest)
    assert b"".join(blob_store.read(digest, 100, 50)) == data[100:150]
    assert b"".join(blob_store.read(digest, 2500)) == data[2500:]


def test_append_at_wrong_offset_is_refused(blob_store: BlobStore) -> None:
    upload(blob_store, "u3", b"12345")
    with pytest.raises(UploadOffsetMismatch) as caught:
        blob_store.open_upload("u3", 2)
    assert caught.value.actual == 5
    assert blob_store.upload_size("u3") == 5


def test_abort_discards_only_this_writers_bytes(blob_store: BlobStore) -> None:
    upload(blob_store, "u4", b"keep")
    writer = blob_store.open_upload("u4", 4)
    writer.write(b"discard")
    writer.abort()
    writer.close()
    assert blob_store.upload_size("u4") == 4
    assert b"".join(blob_store.read_upload("u4")) == b"keep"


def test_concurrent_writer_is_refused(blob_store: BlobStore) -> None:
    upload(blob_store, "u5", b"x")
    with blob_store.open_upload("u5", 1), pytest.raises(UploadOffsetMismatch) as refused:
        blob_store.open_upload("u5", 1)
    assert refused.value.busy and refused.value.actual == 1
    with pytest.raises(UploadOffsetMismatch) as moved_on:
        blob_store.open_upload("u5", 0)
    assert not moved_on.value.busy and moved_on.value.actual == 1


def test_commit_of_existing_blob_keeps_stored_copy(blob_store: BlobStore) -> None:
    data = b"same content"
    digest = digest_of(data)
    upload(blob_store, "first", data)
    upload(blob_store, "second", data)
    blob_store.commit_upload("first", digest)
    blob_store.commit_upload("second", digest)
    assert blob_store.stat(digest) == len(data)
    assert set(blob_store.upload_ids()) == set()


def test_cancel_removes_temporary_data(blob_store: BlobStore) -> None:
    upload(blob_store, "gone", b"temporary")
    blob_store.cancel_upload("gone")
    blob_store.cancel_upload("gone")  # idempotent
    assert blob_store.upload_size("gone") is None
    assert "gone" not in set(blob_store.upload_ids())


def test_delete_removes_blob(blob_store: BlobStore) -> None:
    data = b"delete me"
    digest = digest_of(data)
    upload(blob_store, "d", data)
    blob_store.commit_upload("d", digest)
    assert blob_store.delete(digest) is True
    assert blob_store.stat(digest) is None


def test_delete_many_removes_blobs_and_passes_over_missing_ones(blob_store: BlobStore) -> None:
    kept = b"kept"
    upload(blob_store, "kept", kept)
    blob_store.commit_upload("kept", digest_of(kept))
    doomed = []
    for n in range(20):  # more than one batch of the filesystem's threads
        data = f"delete many {n}".encode()
        upload(blob_store, f"m{n}", data)
        blob_store.commit_upload(f"m{n}", digest_of(data))
        doomed.append(digest_of(data))
    missing = digest_of(b"never stored")
    blob_store.delete_many([*doomed, missing])
    assert all(blob_store.stat(digest) is None for digest in doomed)
    assert blob_store.stat(digest_of(kept)) == len(kept)
    blob_store.delete_many([])


def test_hostile_upload_ids_never_escape(blob_store: BlobStore) -> None:
    for bad in ("../escape", "a/b", "", ".."):
        assert blob_store.upload_size(bad) is None
        with pytest.raises(FileNotFoundError):
            blob_store.open_upload(bad, 0)


def test_check_passes_on_a_writable_store(blob_store: BlobStore) -> None:
    blob_store.check()
    assert set(blob_store.upload_ids()) == set()  # the probe leaves nothing behind


def test_redirect_url_is_none_or_serves_the_blob(blob_store: BlobStore) -> None:
    import httpx

    data = b"redirect me"
    digest = digest_of(data)
    upload(blob_store, "redir", data)
    blob_store.commit_upload("redir", digest)
    url = blob_store.redirect_url(digest)
    if url is not None:  # backends that can hand out direct URLs must hand out working ones
        assert httpx.get(url).content == data


def test_upload_touched_at_follows_writes(blob_store: BlobStore) -> None:
    from datetime import UTC, datetime, timedelta

    assert blob_store.upload_touched_at("never-started") is None
    before = datetime.now(UTC) - timedelta(seconds=5)
    blob_store.start_upload("touched")
    with blob_store.open_upload("touched", 0) as writer:
        writer.write(b"bytes")
    touched = blob_store.upload_touched_at("touched")
    assert touched is not None and before <= touched <= datetime.now(UTC) + timedelta(seconds=5)
    blob_store.cancel_upload("touched")
    assert blob_store.upload_touched_at("touched") is None

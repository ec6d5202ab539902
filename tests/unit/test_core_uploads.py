"""Upload sessions in the core, on real stores, with two services as two worker processes."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cargohold.core.registry import Registry
from cargohold.core.uploads import UploadStatus
from cargohold.errors import (
    BlobUnknown,
    BlobUploadUnknown,
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
)
from cargohold.storage.blobs import FilesystemBlobStore
from cargohold.storage.meta import SqlMetadataStore, schema
from cargohold.storage.meta.sql import create_sql_engine


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Registry, Registry]]:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    schema.upgrade(engine)
    meta = SqlMetadataStore(engine)
    blobs = FilesystemBlobStore(tmp_path)
    yield Registry(blobs, meta, 4096), Registry(blobs, meta, 4096)
    meta.close()


async def stream(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_chunks_on_different_workers_verify(workers: tuple[Registry, Registry]) -> None:
    one, two = workers
    data = bytes(range(256)) * 4000

    async def scenario() -> str:
        status = one.uploads.start("team/app")
        await one.uploads.append("team/app", status.upload_id, stream(data[:300_000]), 0)
        # The next chunk lands on the other worker, which never saw the first one.
        await two.uploads.append(
            "team/app", status.upload_id, stream(data[300_000:]), 300_000, len(data) - 300_000
        )
        return await one.uploads.finish("team/app", status.upload_id, sha256(data))

    digest = asyncio.run(scenario())
    blob = two.blobs.get("team/app", digest)
    assert blob.size == len(data)
    assert b"".join(blob.stream()) == data


def test_sha512_without_declared_algorithm(workers: tuple[Registry, Registry]) -> None:
    one, _ = workers
    data = b"sha512 content"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()

    async def scenario() -> str:
        status = one.uploads.start("r")
        return await one.uploads.finish("r", status.upload_id, digest, stream(data))

    assert asyncio.run(scenario()) == digest
    assert one.blobs.get("r", digest).size == len(data)


def test_digest_mismatch_leaves_nothing_visible(workers: tuple[Registry, Registry]) -> None:
    one, _ = workers
    data = b"actual bytes"
    wrong = sha256(b"other bytes")

    async def scenario() -> str:
        status = one.uploads.start("r")
        with pytest.raises(DigestInvalid):
            await one.uploads.finish("r", status.upload_id, wrong, stream(data))
        return status.upload_id

    upload_id = asyncio.run(scenario())
    assert one.blob_store.stat(wrong) is None
    assert one.blob_store.stat(sha256(data)) is None
    with pytest.raises(BlobUploadUnknown):
        one.uploads.status("r", upload_id)


def test_out_of_order_chunk_is_refused_and_harmless(workers: tuple[Registry, Registry]) -> None:
    one, _ = workers

    async def scenario() -> None:
        status = one.uploads.start("r")
        await one.uploads.append("r", status.upload_id, stream(b"12345"), 0)
        with pytest.raises(RangeInvalid) as caught:
            await one.uploads.append("r", status.upload_id, stream(b"zz"), 3)
        assert caught.value.offset == 5
        assert one.uploads.status("r", status.upload_id).offset == 5

    asyncio.run(scenario())


def test_short_chunk_is_rolled_back(workers: tuple[Registry, Registry]) -> None:
    one, _ = workers

    async def scenario() -> None:
        status = one.uploads.start("r")
        await one.uploads.append("r", status.upload_id, stream(b"abc"), 0)
        with pytest.raises(SizeInvalid):
            await one.uploads.append("r", status.upload_id, stream(b"de"), 3, 10)
        assert one.uploads.status("r", status.upload_id).offset == 3
        digest = await one.uploads.finish("r", status.upload_id, sha256(b"abcdef"), stream(b"def"))
        assert digest == sha256(b"abcdef")

    asyncio.run(scenario())


def test_upload_is_bound_to_its_repository(workers: tuple[Registry, Registry]) -> None:
    one, _ = workers
    status = one.uploads.start("owner/repo")
    with pytest.raises(BlobUploadUnknown):
        one.uploads.status("other/repo", status.upload_id)
    one.uploads.cancel("owner/repo", status.upload_id)
    with pytest.raises(BlobUploadUnknown):
        one.uploads.status("owner/repo", status.upload_id)


async def started_upload(registry: Registry, data: bytes) -> UploadStatus:
    """An upload in repository "r" that holds `data`."""
    status = registry.uploads.start("r")
    await registry.uploads.append("r", status.upload_id, stream(data), 0)
    return status


def test_finish_refuses_while_another_request_appends(
    workers: tuple[Registry, Registry],
) -> None:
    one, _ = workers
    data = b"payload"

    async def scenario() -> None:
        status = await started_upload(one, data)
        # Another request is mid-append: the closing PUT must not commit under it.
        with (
            one.blob_store.open_upload(status.upload_id, len(data)),
            pytest.raises(RangeInvalid),
        ):
            await one.uploads.finish("r", status.upload_id, sha256(data))
        assert await one.uploads.finish("r", status.upload_id, sha256(data)) == sha256(data)

    asyncio.run(scenario())


def test_a_request_waits_for_one_that_lets_go_in_moments(
    workers: tuple[Registry, Registry],
) -> None:
    one, _ = workers
    data = b"payload"

    async def scenario() -> None:
        status = await started_upload(one, data)
        # A request ending (a broken one closing its file, say) holds the upload briefly.
        holder = one.blob_store.open_upload(status.upload_id, len(data))
        asyncio.get_running_loop().call_later(0.2, holder.close)
        started = asyncio.get_running_loop().time()
        assert await one.uploads.finish("r", status.upload_id, sha256(data)) == sha256(data)
        assert asyncio.get_running_loop().time() - started >= 0.2

    asyncio.run(scenario())


def test_blob_lost_by_storage_reads_as_unknown(workers: tuple[Registry, Registry]) -> None:
    one, _ = workers
    data = b"soon lost"

    async def scenario() -> str:
        status = one.uploads.start("r")
        return await one.uploads.finish("r", status.upload_id, sha256(data), stream(data))

    digest = asyncio.run(scenario())
    blob = one.blobs.get("r", digest)
    assert b"".join(blob.stream()) == data
    one.blob_store.delete(digest)  # storage lost it; the metadata still says it is there
    with pytest.raises(BlobUnknown):
        one.blobs.get("r", digest).stream()


def pieces(data: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_a_body_of_many_steps_is_stored_in_order(workers: tuple[Registry, Registry]) -> None:
    # More than two 4 MiB steps, received while earlier ones are hashed and written.
    one, two = workers
    data = os.urandom(9 * 1024 * 1024 + 17)

    async def scenario() -> str:
        status = one.uploads.start("r")
        return await one.uploads.finish("r", status.upload_id, sha256(data), stream(*pieces(data)))

    digest = asyncio.run(scenario())
    assert digest == sha256(data)
    assert b"".join(two.blobs.get("r", digest).stream()) == data


def test_a_body_broken_after_several_steps_leaves_the_upload_as_it_was(
    workers: tuple[Registry, Registry],
) -> None:
    one, _ = workers
    data = os.urandom(9 * 1024 * 1024)

    async def broken() -> AsyncIterator[bytes]:
        for piece in pieces(data):
            yield piece
        raise ConnectionResetError("the client went away")

    async def scenario() -> None:
        status = one.uploads.start("r")
        await one.uploads.append("r", status.upload_id, stream(b"head"), 0)
        with pytest.raises(ConnectionResetError):
            await one.uploads.append("r", status.upload_id, broken(), 4)
        assert one.uploads.status("r", status.upload_id).offset == 4
        whole = b"head" + data
        digest = await one.uploads.finish("r", status.upload_id, sha256(whole), stream(data), 4)
        assert b"".join(one.blobs.get("r", digest).stream()) == whole

    asyncio.run(scenario())


def test_a_small_closing_chunk_out_of_place_or_short_changes_nothing(
    workers: tuple[Registry, Registry],
) -> None:
    # A closing chunk of known, small length takes the one-thread path.
    one, _ = workers

    async def scenario() -> None:
        status = one.uploads.start("r")
        await one.uploads.append("r", status.upload_id, stream(b"abc"), 0)
        whole = sha256(b"abcdef")
        with pytest.raises(RangeInvalid) as caught:
            await one.uploads.finish("r", status.upload_id, whole, stream(b"def"), 2, 3)
        assert caught.value.offset == 3
        with pytest.raises(SizeInvalid):
            await one.uploads.finish("r", status.upload_id, whole, stream(b"de"), 3, 3)
        assert one.uploads.status("r", status.upload_id).offset == 3
        assert await one.uploads.finish("r", status.upload_id, whole, stream(b"def"), 3, 3) == whole

    asyncio.run(scenario())

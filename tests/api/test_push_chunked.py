"""Push category: chunked blob uploads (PATCH, end-5), status (end-13), cancel (end-14)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .oci import (
    OCTET,
    assert_error,
    assert_not_server_error,
    blob_path,
    describe,
    digest_of,
    expect,
    fake_uuid,
    random_bytes,
    start_upload,
    unique,
    uploads_path,
    url_path,
)


def _patch(client: httpx.Client, location: str, chunk: bytes, start: int | None) -> httpx.Response:
    headers = {"Content-Type": OCTET}
    if start is not None:
        headers["Content-Range"] = f"{start}-{start + len(chunk) - 1}"
    return client.patch(location, content=chunk, headers=headers)


def _close(client: httpx.Client, location: str, digest: str, chunk: bytes = b"",
           start: int | None = None) -> httpx.Response:
    headers = {}
    if chunk:
        headers["Content-Type"] = OCTET
        if start is not None:
            headers["Content-Range"] = f"{start}-{start + len(chunk) - 1}"
    return client.put(location, params={"digest": digest}, content=chunk, headers=headers)


def _upload_chunks(client: httpx.Client, location: str, chunks: list[bytes]) -> str:
    """PATCH each chunk in order, following Location; return the latest Location."""
    offset = 0
    for chunk in chunks:
        resp = _patch(client, location, chunk, offset)
        expect(resp, 202)
        offset += len(chunk)
        location = resp.headers.get("location", "")
        assert location, describe(resp)
    return location


def test_post_with_content_length_zero_starts_session(client: httpx.Client) -> None:
    repo = unique("chunk")
    resp = client.post(uploads_path(repo), headers={"Content-Length": "0"})
    expect(resp, 202)
    assert url_path(resp.headers["location"]).startswith(f"/v2/{repo}/blobs/uploads/")


def test_patch_chunk_returns_202_location_and_range(client: httpx.Client) -> None:
    repo = unique("chunk")
    location = start_upload(client, repo)
    resp = _patch(client, location, random_bytes(100), 0)
    expect(resp, 202)
    assert resp.headers.get("location"), describe(resp)
    assert url_path(resp.headers["location"]).startswith(f"/v2/{repo}/blobs/uploads/")
    assert resp.headers.get("range") == "0-99", describe(resp)


def test_consecutive_chunks_extend_range(client: httpx.Client) -> None:
    repo = unique("chunk")
    location = start_upload(client, repo)
    resp = _patch(client, location, random_bytes(100), 0)
    expect(resp, 202)
    resp = _patch(client, resp.headers["location"], random_bytes(50), 100)
    expect(resp, 202)
    assert resp.headers.get("range") == "0-149", describe(resp)


def test_chunked_upload_then_put_without_body(client: httpx.Client) -> None:
    repo = unique("chunk")
    chunks = [random_bytes(1000), random_bytes(1000), random_bytes(37)]
    data = b"".join(chunks)
    digest = digest_of(data)
    location = _upload_chunks(client, start_upload(client, repo), chunks)
    resp = _close(client, location, digest)
    expect(resp, 201)
    assert url_path(resp.headers.get("location", "")) == blob_path(repo, digest), describe(resp)
    assert resp.headers.get("docker-content-digest") == digest, describe(resp)
    pulled = client.get(blob_path(repo, digest))
    expect(pulled, 200)
    assert pulled.content == data


def test_final_chunk_in_closing_put(client: httpx.Client) -> None:
    repo = unique("chunk")
    first, last = random_bytes(500), random_bytes(200)
    digest = digest_of(first + last)
    location = _upload_chunks(client, start_upload(client, repo), [first])
    resp = _close(client, location, digest, last, start=len(first))
    expect(resp, 201)
    pulled = client.get(blob_path(repo, digest))
    expect(pulled, 200)
    assert pulled.content == first + last


def test_final_chunk_in_put_without_content_range(client: httpx.Client) -> None:
    repo = unique("chunk")
    first, last = random_bytes(300), random_bytes(300)
    digest = digest_of(first + last)
    location = _upload_chunks(client, start_upload(client, repo), [first])
    expect(_close(client, location, digest, last), 201)
    pulled = client.get(blob_path(repo, digest))
    expect(pulled, 200)
    assert pulled.content == first + last


def test_streamed_patch_without_content_range(client: httpx.Client) -> None:
    repo = unique("chunk")
    first, second = random_bytes(400), random_bytes(100)
    location = start_upload(client, repo)
    resp = _patch(client, location, first, None)
    expect(resp, 202)
    assert resp.headers.get("range") == "0-399", describe(resp)
    resp = _patch(client, resp.headers["location"], second, None)
    expect(resp, 202)
    assert resp.headers.get("range") == "0-499", describe(resp)
    digest = digest_of(first + second)
    expect(_close(client, resp.headers["location"], digest), 201)
    pulled = client.get(blob_path(repo, digest))
    assert pulled.content == first + second


def test_many_chunks_large_blob(client: httpx.Client) -> None:
    repo = unique("chunk")
    chunks = [random_bytes(1024 * 1024) for _ in range(5)]
    data = b"".join(chunks)
    digest = digest_of(data)
    location = _upload_chunks(client, start_upload(client, repo), chunks)
    expect(_close(client, location, digest), 201)
    pulled = client.get(blob_path(repo, digest))
    expect(pulled, 200)
    assert digest_of(pulled.content) == digest


def test_chunked_sha512(client: httpx.Client) -> None:
    repo = unique("chunk")
    chunks = [random_bytes(100), random_bytes(100)]
    digest = digest_of(b"".join(chunks), "sha512")
    location = start_upload(client, repo, **{"digest-algorithm": "sha512"})
    location = _upload_chunks(client, location, chunks)
    resp = _close(client, location, digest)
    expect(resp, 201)
    assert resp.headers.get("docker-content-digest") == digest, describe(resp)
    expect(client.get(blob_path(repo, digest)), 200)


def test_chunked_digest_mismatch_is_400_and_blob_not_stored(client: httpx.Client) -> None:
    repo = unique("chunk")
    chunks = [random_bytes(100), random_bytes(100)]
    wrong = digest_of(random_bytes(200))
    location = _upload_chunks(client, start_upload(client, repo), chunks)
    assert_error(_close(client, location, wrong), 400, "DIGEST_INVALID")
    expect(client.head(blob_path(repo, wrong)), 404)
    expect(client.head(blob_path(repo, digest_of(b"".join(chunks)))), 404)


# ---------------------------------------------------------------- ordering (416)


def test_out_of_order_chunk_is_416(client: httpx.Client) -> None:
    repo = unique("chunk")
    location = _upload_chunks(client, start_upload(client, repo), [random_bytes(100)])
    resp = _patch(client, location, random_bytes(100), 150)
    expect(resp, 416)


def test_first_chunk_not_starting_at_zero_is_416(client: httpx.Client) -> None:
    repo = unique("chunk")
    resp = _patch(client, start_upload(client, repo), random_bytes(10), 5)
    expect(resp, 416)


def test_overlapping_chunk_is_416(client: httpx.Client) -> None:
    repo = unique("chunk")
    location = _upload_chunks(client, start_upload(client, repo), [random_bytes(100)])
    resp = _patch(client, location, random_bytes(100), 50)
    expect(resp, 416)


def test_out_of_order_final_chunk_in_put_is_416(client: httpx.Client) -> None:
    repo = unique("chunk")
    first, last = random_bytes(100), random_bytes(100)
    location = _upload_chunks(client, start_upload(client, repo), [first])
    resp = _close(client, location, digest_of(first + last), last, start=150)
    expect(resp, 416)


def test_upload_recovers_after_416(client: httpx.Client) -> None:
    repo = unique("chunk")
    first, second = random_bytes(100), random_bytes(100)
    location = _upload_chunks(client, start_upload(client, repo), [first])
    expect(_patch(client, location, second, 120), 416)
    status = client.get(location)
    expect(status, 204)
    assert status.headers.get("range") == "0-99", describe(status)
    location = status.headers["location"]
    resp = _patch(client, location, second, 100)
    expect(resp, 202)
    digest = digest_of(first + second)
    expect(_close(client, resp.headers["location"], digest), 201)
    assert client.get(blob_path(repo, digest)).content == first + second


def test_content_range_length_mismatch_is_rejected(client: httpx.Client) -> None:
    repo = unique("chunk")
    location = start_upload(client, repo)
    resp = client.patch(location, content=random_bytes(10),
                        headers={"Content-Type": OCTET, "Content-Range": "0-99"})
    assert_error(resp, 400, "SIZE_INVALID", "BLOB_UPLOAD_INVALID")


@pytest.mark.parametrize("header", ["abc", "9-0", "0-", "-9", "a-b", "0--9"])
def test_malformed_content_range_is_client_error(client: httpx.Client, header: str) -> None:
    repo = unique("chunk")
    location = start_upload(client, repo)
    resp = client.patch(location, content=random_bytes(10),
                        headers={"Content-Type": OCTET, "Content-Range": header})
    assert_not_server_error(resp)
    assert resp.status_code in (400, 416), describe(resp)


@pytest.mark.parametrize("header", ["bytes=0-9", "0-9/10", "bytes 0-9/*"])
def test_lenient_content_range_forms_are_correct_or_rejected(client: httpx.Client,
                                                             header: str) -> None:
    """Non-spec spellings of 0-9: a registry may reject them, but must not misread them."""
    repo = unique("chunk")
    location = start_upload(client, repo)
    resp = client.patch(location, content=random_bytes(10),
                        headers={"Content-Type": OCTET, "Content-Range": header})
    assert_not_server_error(resp)
    assert resp.status_code in (202, 400, 416), describe(resp)
    if resp.status_code == 202:
        assert resp.headers.get("range") == "0-9", describe(resp)


def test_streamed_patch_with_chunked_transfer_encoding(client: httpx.Client) -> None:
    repo = unique("chunk")
    parts = [random_bytes(1000) for _ in range(5)]
    location = start_upload(client, repo)
    resp = client.patch(location, content=iter(parts), headers={"Content-Type": OCTET})
    expect(resp, 202)
    assert resp.request.headers.get("transfer-encoding") == "chunked"
    assert resp.headers.get("range") == "0-4999", describe(resp)
    digest = digest_of(b"".join(parts))
    expect(_close(client, resp.headers["location"], digest), 201)
    assert client.get(blob_path(repo, digest)).content == b"".join(parts)


def test_empty_patch_keeps_offset(client: httpx.Client) -> None:
    repo = unique("chunk")
    data = random_bytes(100)
    location = _upload_chunks(client, start_upload(client, repo), [data])
    resp = client.patch(location, content=b"", headers={"Content-Type": OCTET})
    assert_not_server_error(resp)
    status = expect(client.get(location), 204)
    assert status.headers.get("range") == "0-99", describe(status)
    expect(_close(client, status.headers["location"], digest_of(data)), 201)


def test_upload_steps_on_separate_connections(registry: Any) -> None:
    """Each step on a fresh connection, so that different server workers may serve them."""
    repo = unique("chunk")
    chunks = [random_bytes(300) for _ in range(4)]
    digest = digest_of(b"".join(chunks))

    def fresh() -> httpx.Client:
        return httpx.Client(base_url=registry.url, timeout=60)

    with fresh() as c:
        location = start_upload(c, repo)
    for i, chunk in enumerate(chunks):
        with fresh() as c:
            resp = _patch(c, location, chunk, i * 300)
            expect(resp, 202)
            location = resp.headers["location"]
        with fresh() as c:
            status = expect(c.get(location), 204)
            assert status.headers.get("range") == f"0-{i * 300 + 299}", describe(status)
    with fresh() as c:
        expect(_close(c, location, digest), 201)
    with fresh() as c:
        assert c.get(blob_path(repo, digest)).content == b"".join(chunks)


# ---------------------------------------------------------------- status and cancel


def test_get_upload_status_is_204_with_location_and_range(client: httpx.Client) -> None:
    repo = unique("chunk")
    location = _upload_chunks(client, start_upload(client, repo), [random_bytes(64)])
    resp = client.get(location)
    expect(resp, 204)
    assert resp.headers.get("location"), describe(resp)
    assert url_path(resp.headers["location"]).startswith(f"/v2/{repo}/blobs/uploads/")
    assert resp.headers.get("range") == "0-63", describe(resp)


def test_get_new_upload_status_is_204(client: httpx.Client) -> None:
    repo = unique("chunk")
    resp = client.get(start_upload(client, repo))
    expect(resp, 204)
    assert resp.headers.get("location"), describe(resp)


def test_patch_unknown_session_is_404(client: httpx.Client) -> None:
    repo = unique("chunk")
    start_upload(client, repo)
    resp = _patch(client, f"/v2/{repo}/blobs/uploads/{fake_uuid()}", random_bytes(10), 0)
    assert_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")


def test_get_unknown_session_is_404(client: httpx.Client) -> None:
    repo = unique("chunk")
    start_upload(client, repo)
    resp = client.get(f"/v2/{repo}/blobs/uploads/{fake_uuid()}")
    assert_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")


def test_session_is_scoped_to_its_repository(client: httpx.Client) -> None:
    repo, other = unique("chunk"), unique("chunk-other")
    location = start_upload(client, repo)
    start_upload(client, other)
    moved = url_path(location).replace(f"/v2/{repo}/", f"/v2/{other}/", 1)
    assert_error(client.get(moved), 404, "BLOB_UPLOAD_UNKNOWN")


def test_cancel_upload_is_204_then_unknown(client: httpx.Client) -> None:
    repo = unique("chunk")
    location = _upload_chunks(client, start_upload(client, repo), [random_bytes(10)])
    resp = client.delete(location)
    expect(resp, 204)
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_patch_after_cancel_is_404(client: httpx.Client) -> None:
    repo = unique("chunk")
    location = start_upload(client, repo)
    expect(client.delete(location), 204)
    assert_error(_patch(client, location, random_bytes(10), 0), 404, "BLOB_UPLOAD_UNKNOWN")


def test_put_after_cancel_is_404(client: httpx.Client) -> None:
    repo = unique("chunk")
    data = random_bytes(10)
    location = _upload_chunks(client, start_upload(client, repo), [data])
    expect(client.delete(location), 204)
    assert_error(_close(client, location, digest_of(data)), 404, "BLOB_UPLOAD_UNKNOWN")
    expect(client.head(blob_path(repo, digest_of(data))), 404)


def test_cancel_unknown_session_is_404(client: httpx.Client) -> None:
    repo = unique("chunk")
    start_upload(client, repo)
    resp = client.delete(f"/v2/{repo}/blobs/uploads/{fake_uuid()}")
    assert_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")


def test_interleaved_sessions_for_same_blob(client: httpx.Client) -> None:
    repo = unique("chunk")
    first, second = random_bytes(100), random_bytes(100)
    digest = digest_of(first + second)
    a, b = start_upload(client, repo), start_upload(client, repo)
    a = expect(_patch(client, a, first, 0), 202).headers["location"]
    b = expect(_patch(client, b, first, 0), 202).headers["location"]
    a = expect(_patch(client, a, second, 100), 202).headers["location"]
    b = expect(_patch(client, b, second, 100), 202).headers["location"]
    expect(_close(client, a, digest), 201)
    expect(_close(client, b, digest), 201)
    assert client.get(blob_path(repo, digest)).content == first + second

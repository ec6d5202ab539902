"""Push category: monolithic blob uploads (POST then PUT, single POST), digests."""

from __future__ import annotations

import httpx
import pytest

from .oci import (
    EMPTY_BLOB_DIGEST,
    OCTET,
    assert_error,
    blob_path,
    describe,
    digest_of,
    expect,
    fake_uuid,
    random_bytes,
    start_upload,
    unique,
    upload_blob,
    uploads_path,
    url_path,
)


def _put(client: httpx.Client, location: str, data: bytes, digest: str) -> httpx.Response:
    return client.put(location, params={"digest": digest}, content=data,
                      headers={"Content-Type": OCTET})


# ---------------------------------------------------------------- obtaining a session


def test_post_upload_returns_202_with_location(client: httpx.Client) -> None:
    repo = unique("push")
    resp = client.post(uploads_path(repo), headers={"Content-Length": "0"})
    expect(resp, 202)
    location = resp.headers.get("location")
    assert location, describe(resp)
    assert url_path(location).startswith(f"/v2/{repo}/blobs/uploads/"), describe(resp)


def test_post_upload_location_contains_session_uuid(client: httpx.Client) -> None:
    repo = unique("push")
    resp = client.post(uploads_path(repo), headers={"Content-Length": "0"})
    expect(resp, 202)
    uuid = resp.headers.get("docker-upload-uuid")
    assert uuid, describe(resp)
    assert uuid in resp.headers["location"], describe(resp)


def test_post_upload_sessions_are_unique(client: httpx.Client) -> None:
    repo = unique("push")
    first, second = start_upload(client, repo), start_upload(client, repo)
    assert first != second


# ---------------------------------------------------------------- POST then PUT


def test_post_then_put_returns_201_with_blob_location(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(2048)
    digest = digest_of(data)
    resp = _put(client, start_upload(client, repo), data, digest)
    expect(resp, 201)
    assert url_path(resp.headers.get("location", "")) == blob_path(repo, digest), describe(resp)
    assert resp.headers.get("docker-content-digest") == digest, describe(resp)


def test_post_then_put_location_is_pullable(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(4096)
    resp = _put(client, start_upload(client, repo), data, digest_of(data))
    expect(resp, 201)
    pulled = client.get(resp.headers["location"])
    expect(pulled, 200)
    assert pulled.content == data


def test_post_then_put_empty_blob(client: httpx.Client) -> None:
    repo = unique("push")
    resp = _put(client, start_upload(client, repo), b"", EMPTY_BLOB_DIGEST)
    expect(resp, 201)
    pulled = client.get(blob_path(repo, EMPTY_BLOB_DIGEST))
    expect(pulled, 200)
    assert pulled.content == b""


def test_post_then_put_large_blob(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(6 * 1024 * 1024 + 17)
    digest = upload_blob(client, repo, data)
    pulled = client.get(blob_path(repo, digest))
    expect(pulled, 200)
    assert digest_of(pulled.content) == digest
    assert pulled.headers.get("content-length") == str(len(data)), describe(pulled)


def test_reupload_existing_blob_is_accepted(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(100)
    upload_blob(client, repo, data)
    resp = _put(client, start_upload(client, repo), data, digest_of(data))
    expect(resp, 201)


def test_same_blob_in_two_repositories(client: httpx.Client) -> None:
    data = random_bytes(100)
    first, second = unique("push"), unique("push")
    digest = upload_blob(client, first, data)
    upload_blob(client, second, data)
    for repo in (first, second):
        pulled = client.get(blob_path(repo, digest))
        expect(pulled, 200)
        assert pulled.content == data


def test_completed_session_is_gone(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(10)
    location = start_upload(client, repo)
    expect(_put(client, location, data, digest_of(data)), 201)
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_put_digest_mismatch_is_400_and_blob_not_stored(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(64)
    wrong = digest_of(random_bytes(64))
    resp = _put(client, start_upload(client, repo), data, wrong)
    assert_error(resp, 400, "DIGEST_INVALID")
    expect(client.head(blob_path(repo, wrong)), 404)
    expect(client.head(blob_path(repo, digest_of(data))), 404)


@pytest.mark.parametrize(
    "bad",
    ["sha256:abc", "sha256:" + "g" * 64, "sha256:" + "A" * 64, "nocolon", "sha256:",
     ":" + "a" * 64, "sha512:" + "a" * 64],
)
def test_put_malformed_digest_is_400_digest_invalid(client: httpx.Client, bad: str) -> None:
    repo = unique("push")
    resp = _put(client, start_upload(client, repo), random_bytes(8), bad)
    assert_error(resp, 400, "DIGEST_INVALID")


def test_put_unsupported_algorithm_is_400(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(8)
    resp = _put(client, start_upload(client, repo), data, digest_of(data, "md5"))
    assert_error(resp, 400, "DIGEST_INVALID", "UNSUPPORTED")


def test_put_without_digest_is_400(client: httpx.Client) -> None:
    repo = unique("push")
    resp = client.put(start_upload(client, repo), content=random_bytes(8),
                      headers={"Content-Type": OCTET})
    assert_error(resp, 400, "DIGEST_INVALID", "BLOB_UPLOAD_INVALID")


def test_put_unknown_session_is_404_blob_upload_unknown(client: httpx.Client) -> None:
    repo = unique("push")
    upload_blob(client, repo, random_bytes(8))
    data = random_bytes(8)
    resp = _put(client, f"/v2/{repo}/blobs/uploads/{fake_uuid()}", data, digest_of(data))
    assert_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")


# ---------------------------------------------------------------- single POST


def test_single_post_returns_201_with_location(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(1500)
    digest = digest_of(data)
    resp = client.post(uploads_path(repo), params={"digest": digest}, content=data,
                       headers={"Content-Type": OCTET})
    expect(resp, 201)
    assert url_path(resp.headers.get("location", "")) == blob_path(repo, digest), describe(resp)
    assert resp.headers.get("docker-content-digest") == digest, describe(resp)
    pulled = client.get(resp.headers["location"])
    expect(pulled, 200)
    assert pulled.content == data


def test_single_post_digest_mismatch_is_400(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(32)
    wrong = digest_of(random_bytes(32))
    resp = client.post(uploads_path(repo), params={"digest": wrong}, content=data,
                       headers={"Content-Type": OCTET})
    assert_error(resp, 400, "DIGEST_INVALID")
    expect(client.head(blob_path(repo, wrong)), 404)
    expect(client.head(blob_path(repo, digest_of(data))), 404)


def test_single_post_malformed_digest_is_400(client: httpx.Client) -> None:
    repo = unique("push")
    resp = client.post(uploads_path(repo), params={"digest": "sha256:nothex"},
                       content=b"abc", headers={"Content-Type": OCTET})
    assert_error(resp, 400, "DIGEST_INVALID")


# ---------------------------------------------------------------- sha512


def test_sha512_post_then_put(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(333)
    digest = digest_of(data, "sha512")
    location = start_upload(client, repo, **{"digest-algorithm": "sha512"})
    resp = _put(client, location, data, digest)
    expect(resp, 201)
    assert resp.headers.get("docker-content-digest") == digest, describe(resp)
    assert url_path(resp.headers.get("location", "")) == blob_path(repo, digest), describe(resp)


def test_sha512_single_post(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(333)
    digest = digest_of(data, "sha512")
    resp = client.post(uploads_path(repo), params={"digest": digest}, content=data,
                       headers={"Content-Type": OCTET})
    expect(resp, 201)
    pulled = client.get(blob_path(repo, digest))
    expect(pulled, 200)
    assert pulled.content == data
    assert pulled.headers.get("docker-content-digest") == digest, describe(pulled)


def test_sha512_digest_is_verified(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(333)
    wrong = digest_of(random_bytes(333), "sha512")
    location = start_upload(client, repo, **{"digest-algorithm": "sha512"})
    assert_error(_put(client, location, data, wrong), 400, "DIGEST_INVALID")
    expect(client.head(blob_path(repo, wrong)), 404)


def test_sha512_blob_is_not_reachable_by_sha256(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(100)
    upload_blob(client, repo, data, algorithm="sha512")
    assert_error(client.get(blob_path(repo, digest_of(data))), 404, "BLOB_UNKNOWN")


def test_unknown_digest_algorithm_on_post_is_400(client: httpx.Client) -> None:
    repo = unique("push")
    resp = client.post(uploads_path(repo), params={"digest-algorithm": "md5"},
                       headers={"Content-Length": "0"})
    assert_error(resp, 400, "DIGEST_INVALID", "UNSUPPORTED")


# ---------------------------------------------------------------- framing


def test_put_with_chunked_transfer_encoding(client: httpx.Client) -> None:
    repo = unique("push")
    parts = [random_bytes(700) for _ in range(3)]
    digest = digest_of(b"".join(parts))
    resp = client.put(start_upload(client, repo), params={"digest": digest},
                      content=iter(parts), headers={"Content-Type": OCTET})
    expect(resp, 201)
    assert resp.request.headers.get("transfer-encoding") == "chunked"
    assert client.get(blob_path(repo, digest)).content == b"".join(parts)


def test_single_post_empty_blob(client: httpx.Client) -> None:
    repo = unique("push")
    resp = client.post(uploads_path(repo), params={"digest": EMPTY_BLOB_DIGEST}, content=b"",
                       headers={"Content-Type": OCTET})
    expect(resp, 201, 202)
    if resp.status_code == 202:  # registry chose POST-then-PUT; finish the session
        expect(_put(client, resp.headers["location"], b"", EMPTY_BLOB_DIGEST), 201)
    pulled = client.get(blob_path(repo, EMPTY_BLOB_DIGEST))
    expect(pulled, 200)
    assert pulled.content == b""


def test_put_to_absolute_or_relative_location(client: httpx.Client) -> None:
    repo = unique("push")
    data = random_bytes(50)
    location = start_upload(client, repo)
    absolute = str(client.base_url.join(location))
    expect(_put(client, absolute, data, digest_of(data)), 201)

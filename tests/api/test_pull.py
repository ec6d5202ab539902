"""Pull category: GET/HEAD of blobs (end-2) and manifests (end-3), Range requests."""

from __future__ import annotations

import httpx
import pytest

from .oci import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    OCTET,
    assert_error,
    blob_path,
    describe,
    digest_of,
    expect,
    manifest_path,
    push_image,
    push_index,
    random_bytes,
    unique,
    upload_blob,
)


def _media_type(resp: httpx.Response) -> str:
    return resp.headers.get("content-type", "").split(";")[0].strip()


# ---------------------------------------------------------------- blobs


def test_get_blob_returns_exact_bytes(client: httpx.Client) -> None:
    repo = unique("pull")
    data = random_bytes(1000)
    digest = upload_blob(client, repo, data)
    resp = client.get(blob_path(repo, digest))
    expect(resp, 200)
    assert resp.content == data


def test_get_blob_has_docker_content_digest(client: httpx.Client) -> None:
    repo = unique("pull")
    data = random_bytes(300)
    digest = upload_blob(client, repo, data)
    resp = client.get(blob_path(repo, digest))
    expect(resp, 200)
    assert resp.headers.get("docker-content-digest") == digest, describe(resp)
    assert digest_of(resp.content) == resp.headers["docker-content-digest"]


def test_get_blob_headers_length_type_etag(client: httpx.Client) -> None:
    repo = unique("pull")
    data = random_bytes(777)
    digest = upload_blob(client, repo, data)
    resp = client.get(blob_path(repo, digest))
    expect(resp, 200)
    assert resp.headers.get("content-length") == "777", describe(resp)
    assert _media_type(resp) == OCTET, describe(resp)
    assert resp.headers.get("etag") == f'"{digest}"', describe(resp)


def test_get_empty_blob(client: httpx.Client) -> None:
    repo = unique("pull")
    digest = upload_blob(client, repo, b"")
    resp = client.get(blob_path(repo, digest))
    expect(resp, 200)
    assert resp.content == b""
    assert resp.headers.get("content-length") == "0", describe(resp)
    assert resp.headers.get("docker-content-digest") == digest, describe(resp)


def test_head_blob_returns_digest_and_length_without_body(client: httpx.Client) -> None:
    repo = unique("pull")
    data = random_bytes(512)
    digest = upload_blob(client, repo, data)
    resp = client.head(blob_path(repo, digest))
    expect(resp, 200)
    assert resp.headers.get("docker-content-digest") == digest, describe(resp)
    assert resp.headers.get("content-length") == "512", describe(resp)
    assert resp.content == b""


def test_get_unknown_blob_is_404_blob_unknown(client: httpx.Client) -> None:
    repo = unique("pull")
    upload_blob(client, repo, random_bytes(10))  # the repository exists
    resp = client.get(blob_path(repo, digest_of(random_bytes(10))))
    assert_error(resp, 404, "BLOB_UNKNOWN")


def test_head_unknown_blob_is_404(client: httpx.Client) -> None:
    repo = unique("pull")
    upload_blob(client, repo, random_bytes(10))
    resp = client.head(blob_path(repo, digest_of(random_bytes(10))))
    expect(resp, 404)


def test_blob_in_unknown_repository_is_404(client: httpx.Client) -> None:
    resp = client.get(blob_path(unique("nosuchrepo"), digest_of(random_bytes(10))))
    expect(resp, 404)


def test_blob_is_scoped_to_its_repository(client: httpx.Client) -> None:
    repo, other = unique("pull"), unique("pull-other")
    digest = upload_blob(client, repo, random_bytes(64))
    upload_blob(client, other, random_bytes(64))
    expect(client.get(blob_path(other, digest)), 404)
    expect(client.head(blob_path(other, digest)), 404)


def test_get_blob_sha512(client: httpx.Client) -> None:
    repo = unique("pull")
    data = random_bytes(200)
    digest = upload_blob(client, repo, data, algorithm="sha512")
    resp = client.get(blob_path(repo, digest))
    expect(resp, 200)
    assert resp.content == data
    assert resp.headers.get("docker-content-digest") == digest, describe(resp)


def test_get_blob_nested_repository(client: httpx.Client) -> None:
    repo = f"{unique('org')}/team/app"
    data = random_bytes(50)
    digest = upload_blob(client, repo, data)
    resp = client.get(blob_path(repo, digest))
    expect(resp, 200)
    assert resp.content == data


# ---------------------------------------------------------------- ranges


@pytest.fixture
def ranged(client: httpx.Client) -> tuple[str, str, bytes]:
    repo = unique("range")
    data = random_bytes(100)
    return repo, upload_blob(client, repo, data), data


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=10-19", 10, 19), ("bytes=90-", 90, 99), ("bytes=-10", 90, 99),
     ("bytes=0-0", 0, 0), ("bytes=50-1000", 50, 99)],
)
def test_get_blob_range(client: httpx.Client, ranged: tuple[str, str, bytes], header: str,
                        start: int, end: int) -> None:
    repo, digest, data = ranged
    resp = client.get(blob_path(repo, digest), headers={"Range": header})
    expect(resp, 206)
    assert resp.content == data[start:end + 1]
    assert resp.headers.get("content-range") == f"bytes {start}-{end}/100", describe(resp)
    assert resp.headers.get("content-length") == str(end - start + 1), describe(resp)


def test_get_blob_advertises_accept_ranges(client: httpx.Client,
                                           ranged: tuple[str, str, bytes]) -> None:
    repo, digest, _ = ranged
    resp = client.get(blob_path(repo, digest))
    expect(resp, 200)
    assert resp.headers.get("accept-ranges") == "bytes", describe(resp)


def test_get_blob_unsatisfiable_range_is_416(client: httpx.Client,
                                             ranged: tuple[str, str, bytes]) -> None:
    repo, digest, _ = ranged
    resp = client.get(blob_path(repo, digest), headers={"Range": "bytes=200-300"})
    expect(resp, 416)
    if "content-range" in resp.headers:
        assert resp.headers["content-range"] == "bytes */100", describe(resp)


def test_head_blob_ignores_range(client: httpx.Client, ranged: tuple[str, str, bytes]) -> None:
    """RFC 9110 14.2: range handling is defined for GET only; HEAD MUST return 200."""
    repo, digest, _ = ranged
    resp = client.head(blob_path(repo, digest), headers={"Range": "bytes=0-9"})
    expect(resp, 200)
    assert resp.headers.get("content-length") == "100", describe(resp)


def test_get_blob_ignores_unknown_range_unit(client: httpx.Client,
                                             ranged: tuple[str, str, bytes]) -> None:
    """RFC 9110 14.2: an origin server MUST ignore a Range with a unit it does not know."""
    repo, digest, data = ranged
    resp = client.get(blob_path(repo, digest), headers={"Range": "items=0-5"})
    expect(resp, 200)
    assert resp.content == data


def test_get_blob_multiple_ranges(client: httpx.Client, ranged: tuple[str, str, bytes]) -> None:
    repo, digest, data = ranged
    resp = client.get(blob_path(repo, digest), headers={"Range": "bytes=0-1,5-6"})
    expect(resp, 200, 206)
    if resp.status_code == 200:
        assert resp.content == data
    else:
        content_type = resp.headers.get("content-type", "")
        assert content_type.startswith("multipart/byteranges"), describe(resp)
        assert b"Content-Range: bytes 0-1/100" in resp.content, describe(resp)
        assert b"Content-Range: bytes 5-6/100" in resp.content, describe(resp)
        assert data[0:2] in resp.content
        assert data[5:7] in resp.content


def test_resumed_pull_reassembles_blob(client: httpx.Client) -> None:
    repo = unique("range")
    data = random_bytes(10_000)
    digest = upload_blob(client, repo, data)
    got = b""
    while len(got) < len(data):
        resp = client.get(blob_path(repo, digest),
                          headers={"Range": f"bytes={len(got)}-{len(got) + 2999}"})
        expect(resp, 206)
        got += resp.content
    assert got == data


# ---------------------------------------------------------------- manifests


def test_get_manifest_by_tag_returns_exact_bytes(client: httpx.Client) -> None:
    repo = unique("pull")
    image = push_image(client, repo, "v1")
    resp = client.get(manifest_path(repo, "v1"), headers={"Accept": OCI_MANIFEST})
    expect(resp, 200)
    assert resp.content == image.body


def test_get_manifest_by_digest_returns_exact_bytes(client: httpx.Client) -> None:
    repo = unique("pull")
    image = push_image(client, repo, "v1")
    resp = client.get(manifest_path(repo, image.digest), headers={"Accept": OCI_MANIFEST})
    expect(resp, 200)
    assert resp.content == image.body


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_get_manifest_headers(client: httpx.Client, by: str) -> None:
    repo = unique("pull")
    image = push_image(client, repo, "v1")
    ref = "v1" if by == "tag" else image.digest
    resp = client.get(manifest_path(repo, ref), headers={"Accept": OCI_MANIFEST})
    expect(resp, 200)
    assert resp.headers.get("docker-content-digest") == image.digest, describe(resp)
    assert _media_type(resp) == OCI_MANIFEST, describe(resp)
    assert resp.headers.get("content-length") == str(image.size), describe(resp)
    assert image.digest in resp.headers.get("etag", ""), describe(resp)


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_head_manifest(client: httpx.Client, by: str) -> None:
    repo = unique("pull")
    image = push_image(client, repo, "v1")
    ref = "v1" if by == "tag" else image.digest
    resp = client.head(manifest_path(repo, ref), headers={"Accept": OCI_MANIFEST})
    expect(resp, 200)
    assert resp.headers.get("docker-content-digest") == image.digest, describe(resp)
    assert resp.headers.get("content-length") == str(image.size), describe(resp)
    assert _media_type(resp) == OCI_MANIFEST, describe(resp)
    assert resp.content == b""


def test_get_manifest_content_type_matches_pushed_type(client: httpx.Client) -> None:
    repo = unique("pull")
    docker = push_image(client, repo, "docker", docker=True)
    index = push_index(client, repo, [push_image(client, repo)], "index")
    for ref, pushed in (("docker", docker), ("index", index)):
        resp = client.get(manifest_path(repo, ref),
                          headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}"})
        expect(resp, 200)
        assert _media_type(resp) == pushed.media_type, describe(resp)
        assert resp.content == pushed.body


def test_get_manifest_without_accept_header(client: httpx.Client) -> None:
    repo = unique("pull")
    image = push_image(client, repo, "v1")
    resp = client.get(manifest_path(repo, image.digest))
    expect(resp, 200)
    assert resp.content == image.body


def test_get_unknown_tag_is_404_manifest_unknown(client: httpx.Client) -> None:
    repo = unique("pull")
    push_image(client, repo, "v1")
    assert_error(client.get(manifest_path(repo, "nope")), 404, "MANIFEST_UNKNOWN")


def test_get_unknown_manifest_digest_is_404_manifest_unknown(client: httpx.Client) -> None:
    repo = unique("pull")
    push_image(client, repo, "v1")
    resp = client.get(manifest_path(repo, digest_of(random_bytes(10))))
    assert_error(resp, 404, "MANIFEST_UNKNOWN")


def test_head_unknown_manifest_is_404(client: httpx.Client) -> None:
    repo = unique("pull")
    push_image(client, repo, "v1")
    expect(client.head(manifest_path(repo, "nope")), 404)
    expect(client.head(manifest_path(repo, digest_of(random_bytes(10)))), 404)


def test_get_manifest_in_unknown_repository_is_404(client: httpx.Client) -> None:
    resp = client.get(manifest_path(unique("nosuchrepo"), "latest"))
    assert_error(resp, 404, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")


def test_manifest_is_scoped_to_its_repository(client: httpx.Client) -> None:
    repo, other = unique("pull"), unique("pull-other")
    image = push_image(client, repo, "v1")
    push_image(client, other, "v2")
    assert_error(client.get(manifest_path(other, image.digest)), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(manifest_path(other, "v1")), 404, "MANIFEST_UNKNOWN")


def test_pull_whole_image_in_nested_repository(client: httpx.Client) -> None:
    repo = f"{unique('org')}/sub/image"
    image = push_image(client, repo, "latest", layers=2)
    resp = client.get(manifest_path(repo, "latest"))
    expect(resp, 200)
    manifest = resp.json()
    for desc in (manifest["config"], *manifest["layers"]):
        blob = client.get(blob_path(repo, desc["digest"]))
        expect(blob, 200)
        assert blob.content == image.blobs[desc["digest"]]
        assert len(blob.content) == desc["size"]


# ---------------------------------------------------------------- names and tags


@pytest.mark.parametrize("suffix", ["a__b", "a--b", "a---b", "a.b", "a_b", "0", "b.c/d-e/f__g",
                                    "x9/9x"])
def test_valid_unusual_repository_names(client: httpx.Client, suffix: str) -> None:
    repo = f"{unique('names')}/{suffix}"
    image = push_image(client, repo, "v1")
    resp = client.get(manifest_path(repo, "v1"))
    expect(resp, 200)
    assert resp.content == image.body
    expect(client.get(blob_path(repo, next(iter(image.blobs)))), 200)


@pytest.mark.parametrize("middle", ["blobs", "manifests", "tags", "tags/list", "referrers",
                                    "blobs/uploads", "uploads", "v2", "catalog"])
def test_repository_names_containing_api_keywords(client: httpx.Client, middle: str) -> None:
    repo = f"{unique('kw')}/{middle}/app"
    image = push_image(client, repo, "v1")
    resp = client.get(manifest_path(repo, "v1"))
    expect(resp, 200)
    assert resp.content == image.body
    for digest, data in image.blobs.items():
        assert client.get(blob_path(repo, digest)).content == data
    tags = client.get(f"/v2/{repo}/tags/list")
    expect(tags, 200)
    assert tags.json() == {"name": repo, "tags": ["v1"]}, describe(tags)
    expect(client.get(f"/v2/{repo}/referrers/{image.digest}"), 200)


def test_tags_are_case_sensitive(client: httpx.Client) -> None:
    repo = unique("pull")
    lower, upper = push_image(client, repo, "latest"), push_image(client, repo, "LATEST")
    assert client.get(manifest_path(repo, "latest")).content == lower.body
    assert client.get(manifest_path(repo, "LATEST")).content == upper.body
    expect(client.get(manifest_path(repo, "Latest")), 404)

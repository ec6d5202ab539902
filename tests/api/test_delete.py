"""Content management: deleting tags, manifests (end-9) and blobs (end-10)."""

from __future__ import annotations

import httpx

from .oci import (
    OCI_MANIFEST,
    Pushed,
    assert_error,
    blob_path,
    describe,
    digest_of,
    encode,
    expect,
    image_manifest,
    make_config,
    manifest_path,
    push,
    push_image,
    push_index,
    random_bytes,
    tags_path,
    unique,
    upload_blob,
)


def _tags(client: httpx.Client, repo: str) -> list[str]:
    resp = client.get(tags_path(repo))
    expect(resp, 200)
    return resp.json().get("tags") or []


# ---------------------------------------------------------------- tags


def test_delete_tag_is_202(client: httpx.Client) -> None:
    repo = unique("del")
    push_image(client, repo, "v1")
    expect(client.delete(manifest_path(repo, "v1")), 202)


def test_deleted_tag_is_404(client: httpx.Client) -> None:
    repo = unique("del")
    push_image(client, repo, "v1")
    expect(client.delete(manifest_path(repo, "v1")), 202)
    assert_error(client.get(manifest_path(repo, "v1")), 404, "MANIFEST_UNKNOWN")
    expect(client.head(manifest_path(repo, "v1")), 404)


def test_delete_tag_keeps_manifest_by_digest(client: httpx.Client) -> None:
    repo = unique("del")
    image = push_image(client, repo, "v1")
    expect(client.delete(manifest_path(repo, "v1")), 202)
    resp = client.get(manifest_path(repo, image.digest))
    expect(resp, 200)
    assert resp.content == image.body


def test_delete_tag_keeps_other_tags(client: httpx.Client) -> None:
    repo = unique("del")
    image = push_image(client, repo, "v1")
    push(client, repo, Pushed(image.body, image.media_type), "v1-alias")
    expect(client.delete(manifest_path(repo, "v1")), 202)
    resp = client.get(manifest_path(repo, "v1-alias"))
    expect(resp, 200)
    assert resp.content == image.body
    assert _tags(client, repo) == ["v1-alias"]


def test_delete_unknown_tag_is_404(client: httpx.Client) -> None:
    repo = unique("del")
    push_image(client, repo, "v1")
    assert_error(client.delete(manifest_path(repo, "nope")), 404, "MANIFEST_UNKNOWN")


def test_retag_after_delete(client: httpx.Client) -> None:
    repo = unique("del")
    image = push_image(client, repo, "v1")
    expect(client.delete(manifest_path(repo, "v1")), 202)
    push(client, repo, Pushed(image.body, image.media_type), "v1")
    expect(client.get(manifest_path(repo, "v1")), 200)


# ---------------------------------------------------------------- manifests


def test_delete_manifest_by_digest_is_202(client: httpx.Client) -> None:
    repo = unique("del")
    image = push_image(client, repo, "v1")
    expect(client.delete(manifest_path(repo, image.digest)), 202)


def test_deleted_manifest_is_404_by_digest(client: httpx.Client) -> None:
    repo = unique("del")
    image = push_image(client, repo, "v1")
    expect(client.delete(manifest_path(repo, image.digest)), 202)
    assert_error(client.get(manifest_path(repo, image.digest)), 404, "MANIFEST_UNKNOWN")
    expect(client.head(manifest_path(repo, image.digest)), 404)


def test_deleted_manifest_is_404_by_every_tag(client: httpx.Client) -> None:
    repo = unique("del")
    image = push_image(client, repo, "v1")
    for tag in ("v1.0", "latest"):
        push(client, repo, Pushed(image.body, image.media_type), tag)
    expect(client.delete(manifest_path(repo, image.digest)), 202)
    for tag in ("v1", "v1.0", "latest"):
        assert_error(client.get(manifest_path(repo, tag)), 404, "MANIFEST_UNKNOWN")
    assert _tags(client, repo) == []


def test_delete_manifest_keeps_other_manifests(client: httpx.Client) -> None:
    repo = unique("del")
    gone, kept = push_image(client, repo, "a"), push_image(client, repo, "b")
    expect(client.delete(manifest_path(repo, gone.digest)), 202)
    expect(client.get(manifest_path(repo, "b")), 200)
    expect(client.get(manifest_path(repo, kept.digest)), 200)
    assert _tags(client, repo) == ["b"]


def test_delete_unknown_manifest_digest_is_404(client: httpx.Client) -> None:
    repo = unique("del")
    push_image(client, repo, "v1")
    resp = client.delete(manifest_path(repo, digest_of(random_bytes(8))))
    assert_error(resp, 404, "MANIFEST_UNKNOWN")


def test_delete_manifest_in_unknown_repository_is_404(client: httpx.Client) -> None:
    resp = client.delete(manifest_path(unique("del-none"), digest_of(random_bytes(8))))
    assert_error(resp, 404, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")


def test_delete_manifest_twice_is_404(client: httpx.Client) -> None:
    repo = unique("del")
    image = push_image(client, repo, "v1")
    expect(client.delete(manifest_path(repo, image.digest)), 202)
    assert_error(client.delete(manifest_path(repo, image.digest)), 404, "MANIFEST_UNKNOWN")


def test_delete_index_by_digest(client: httpx.Client) -> None:
    repo = unique("del")
    child = push_image(client, repo)
    index = push_index(client, repo, [child], "multi")
    expect(client.delete(manifest_path(repo, index.digest)), 202)
    expect(client.get(manifest_path(repo, "multi")), 404)
    expect(client.get(manifest_path(repo, child.digest)), 200)


def test_repush_after_manifest_delete(client: httpx.Client) -> None:
    repo = unique("del")
    config = make_config()
    upload_blob(client, repo, config)
    pushed = Pushed(encode(image_manifest(config, [])), OCI_MANIFEST)
    push(client, repo, pushed, "v1")
    expect(client.delete(manifest_path(repo, pushed.digest)), 202)
    push(client, repo, pushed, "v1")
    resp = client.get(manifest_path(repo, "v1"))
    expect(resp, 200)
    assert resp.content == pushed.body


def test_delete_manifest_in_one_repository_keeps_other(client: httpx.Client) -> None:
    first, second = unique("del"), unique("del")
    image = push_image(client, first, "v1")
    for blob in image.blobs.values():
        upload_blob(client, second, blob)
    push(client, second, Pushed(image.body, image.media_type), "v1")
    expect(client.delete(manifest_path(first, image.digest)), 202)
    resp = client.get(manifest_path(second, image.digest))
    expect(resp, 200)
    assert resp.content == image.body


# ---------------------------------------------------------------- blobs


def test_delete_blob_is_202(client: httpx.Client) -> None:
    repo = unique("del")
    digest = upload_blob(client, repo, random_bytes(64))
    expect(client.delete(blob_path(repo, digest)), 202)


def test_deleted_blob_is_404(client: httpx.Client) -> None:
    repo = unique("del")
    digest = upload_blob(client, repo, random_bytes(64))
    expect(client.delete(blob_path(repo, digest)), 202)
    assert_error(client.get(blob_path(repo, digest)), 404, "BLOB_UNKNOWN")
    expect(client.head(blob_path(repo, digest)), 404)


def test_delete_unknown_blob_is_404_blob_unknown(client: httpx.Client) -> None:
    repo = unique("del")
    upload_blob(client, repo, random_bytes(8))
    resp = client.delete(blob_path(repo, digest_of(random_bytes(8))))
    assert_error(resp, 404, "BLOB_UNKNOWN")


def test_delete_blob_twice_is_404(client: httpx.Client) -> None:
    repo = unique("del")
    digest = upload_blob(client, repo, random_bytes(64))
    expect(client.delete(blob_path(repo, digest)), 202)
    assert_error(client.delete(blob_path(repo, digest)), 404, "BLOB_UNKNOWN")


def test_delete_blob_invalid_digest_is_400(client: httpx.Client) -> None:
    repo = unique("del")
    upload_blob(client, repo, random_bytes(8))
    assert_error(client.delete(blob_path(repo, "sha256:nothex")), 400, "DIGEST_INVALID")


def test_delete_blob_in_one_repository_keeps_other(client: httpx.Client) -> None:
    first, second = unique("del"), unique("del")
    data = random_bytes(64)
    digest = upload_blob(client, first, data)
    upload_blob(client, second, data)
    expect(client.delete(blob_path(first, digest)), 202)
    resp = client.get(blob_path(second, digest))
    expect(resp, 200)
    assert resp.content == data


def test_reupload_after_blob_delete(client: httpx.Client) -> None:
    repo = unique("del")
    data = random_bytes(64)
    digest = upload_blob(client, repo, data)
    expect(client.delete(blob_path(repo, digest)), 202)
    upload_blob(client, repo, data)
    resp = client.get(blob_path(repo, digest))
    expect(resp, 200)
    assert resp.content == data, describe(resp)


def test_delete_sha512_blob(client: httpx.Client) -> None:
    repo = unique("del")
    digest = upload_blob(client, repo, random_bytes(64), algorithm="sha512")
    expect(client.delete(blob_path(repo, digest)), 202)
    assert_error(client.get(blob_path(repo, digest)), 404, "BLOB_UNKNOWN")

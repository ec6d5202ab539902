"""Push category: cross-repository blob mount (end-11)."""

from __future__ import annotations

import httpx

from .oci import (
    OCTET,
    assert_error,
    assert_not_server_error,
    blob_path,
    describe,
    digest_of,
    expect,
    random_bytes,
    unique,
    upload_blob,
    uploads_path,
    url_path,
)


def _mount(client: httpx.Client, repo: str, digest: str, source: str | None) -> httpx.Response:
    params = {"mount": digest}
    if source is not None:
        params["from"] = source
    return client.post(uploads_path(repo), params=params, headers={"Content-Length": "0"})


def test_mount_existing_blob_is_201_with_location(client: httpx.Client) -> None:
    source, target = unique("mount-src"), unique("mount-dst")
    data = random_bytes(256)
    digest = upload_blob(client, source, data)
    resp = _mount(client, target, digest, source)
    expect(resp, 201)
    assert url_path(resp.headers.get("location", "")) == blob_path(target, digest), describe(resp)
    assert resp.headers.get("docker-content-digest") == digest, describe(resp)


def test_mounted_blob_is_pullable_from_target(client: httpx.Client) -> None:
    source, target = unique("mount-src"), unique("mount-dst")
    data = random_bytes(256)
    digest = upload_blob(client, source, data)
    expect(_mount(client, target, digest, source), 201)
    for method in ("GET", "HEAD"):
        resp = client.request(method, blob_path(target, digest))
        expect(resp, 200)
        assert resp.headers.get("docker-content-digest") == digest, describe(resp)
    assert client.get(blob_path(target, digest)).content == data


def test_mount_from_nested_repository(client: httpx.Client) -> None:
    source, target = f"{unique('mount')}/src/app", f"{unique('mount')}/dst/app"
    data = random_bytes(64)
    digest = upload_blob(client, source, data)
    expect(_mount(client, target, digest, source), 201)
    assert client.get(blob_path(target, digest)).content == data


def test_mount_sha512_blob(client: httpx.Client) -> None:
    source, target = unique("mount-src"), unique("mount-dst")
    data = random_bytes(64)
    digest = upload_blob(client, source, data, algorithm="sha512")
    expect(_mount(client, target, digest, source), 201)
    assert client.get(blob_path(target, digest)).content == data


def test_mount_missing_from_source_falls_back_to_upload_session(client: httpx.Client) -> None:
    source, target = unique("mount-src"), unique("mount-dst")
    upload_blob(client, source, random_bytes(16))  # source exists, blob does not
    data = random_bytes(64)
    digest = digest_of(data)
    resp = _mount(client, target, digest, source)
    expect(resp, 202)
    location = resp.headers.get("location")
    assert location, describe(resp)
    assert url_path(location).startswith(f"/v2/{target}/blobs/uploads/"), describe(resp)
    done = client.put(location, params={"digest": digest}, content=data,
                      headers={"Content-Type": OCTET})
    expect(done, 201)
    assert client.get(blob_path(target, digest)).content == data


def test_mount_blob_present_elsewhere_but_not_in_source_is_202(client: httpx.Client) -> None:
    owner, source, target = unique("mount-own"), unique("mount-src"), unique("mount-dst")
    digest = upload_blob(client, owner, random_bytes(64))
    upload_blob(client, source, random_bytes(16))
    resp = _mount(client, target, digest, source)
    # The blob is not in `source`; a registry MAY still cross-mount it (from is optional).
    expect(resp, 201, 202)
    if resp.status_code == 202:
        assert resp.headers.get("location"), describe(resp)
        expect(client.head(blob_path(target, digest)), 404)


def test_mount_from_unknown_repository_is_202(client: httpx.Client) -> None:
    target = unique("mount-dst")
    resp = _mount(client, target, digest_of(random_bytes(64)), unique("mount-none"))
    expect(resp, 202)
    assert url_path(resp.headers.get("location", "")).startswith(
        f"/v2/{target}/blobs/uploads/"), describe(resp)


def test_mount_without_from_is_201_or_202(client: httpx.Client) -> None:
    source, target = unique("mount-src"), unique("mount-dst")
    data = random_bytes(64)
    digest = upload_blob(client, source, data)
    resp = _mount(client, target, digest, None)
    expect(resp, 201, 202)
    assert resp.headers.get("location"), describe(resp)
    if resp.status_code == 201:
        assert client.get(blob_path(target, digest)).content == data


def test_mount_invalid_digest_is_400(client: httpx.Client) -> None:
    source, target = unique("mount-src"), unique("mount-dst")
    upload_blob(client, source, random_bytes(16))
    resp = _mount(client, target, "sha256:not-a-digest", source)
    assert_error(resp, 400, "DIGEST_INVALID")


def test_mount_invalid_from_name_is_not_a_server_error(client: httpx.Client) -> None:
    target = unique("mount-dst")
    resp = _mount(client, target, digest_of(random_bytes(8)), "Invalid//Name")
    assert_not_server_error(resp)
    assert resp.status_code in (202, 400), describe(resp)


def test_mounted_blob_survives_delete_in_source(client: httpx.Client) -> None:
    source, target = unique("mount-src"), unique("mount-dst")
    data = random_bytes(64)
    digest = upload_blob(client, source, data)
    expect(_mount(client, target, digest, source), 201)
    expect(client.delete(blob_path(source, digest)), 202)
    expect(client.get(blob_path(source, digest)), 404)
    resp = client.get(blob_path(target, digest))
    expect(resp, 200)
    assert resp.content == data


def test_mount_into_repository_that_already_has_blob(client: httpx.Client) -> None:
    source, target = unique("mount-src"), unique("mount-dst")
    data = random_bytes(64)
    digest = upload_blob(client, source, data)
    upload_blob(client, target, data)
    expect(_mount(client, target, digest, source), 201)


def test_mount_from_source_after_blob_deleted_there_is_202(client: httpx.Client) -> None:
    source, target = unique("mount-src"), unique("mount-dst")
    digest = upload_blob(client, source, random_bytes(64))
    upload_blob(client, source, random_bytes(8))  # keep the source repository alive
    expect(client.delete(blob_path(source, digest)), 202)
    resp = _mount(client, target, digest, source)
    expect(resp, 202)
    expect(client.head(blob_path(target, digest)), 404)

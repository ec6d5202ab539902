"""Error handling: JSON error bodies, NAME_INVALID, DIGEST_INVALID, and no 5xx on bad input."""

from __future__ import annotations

import httpx
import pytest

from .oci import (
    ERROR_CODES,
    OCI_MANIFEST,
    OCTET,
    assert_error,
    assert_not_server_error,
    blob_path,
    describe,
    digest_of,
    error_codes,
    expect,
    fake_uuid,
    manifest_path,
    push_image,
    random_bytes,
    referrers_path,
    start_upload,
    tags_path,
    unique,
    uploads_path,
)

# Names that do not match
# [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
INVALID_NAMES = ["UPPER", "Mixed-case", "a..b", "-lead", "trail-", "a___b", "a_.b", "trail.",
                 "a/B", "a/-b", "a!b", "a%40b"]

# Digests that do not match the descriptor digest grammar or the sha256 encoding rules.
INVALID_DIGESTS = ["sha256:abc", "sha256:" + "g" * 64, "sha256:" + "A" * 64, "nocolon",
                   "sha256:", "sha256:" + "a" * 63, "sha256:" + "a" * 65, "SHA256:" + "a" * 64]


def _name_requests(name: str) -> list[tuple[str, str]]:
    digest = digest_of(b"x")
    return [
        ("GET", blob_path(name, digest)),
        ("HEAD", blob_path(name, digest)),
        ("GET", manifest_path(name, "latest")),
        ("PUT", manifest_path(name, "latest")),
        ("DELETE", manifest_path(name, digest)),
        ("DELETE", blob_path(name, digest)),
        ("POST", uploads_path(name)),
        ("GET", tags_path(name)),
        ("GET", referrers_path(name, digest)),
    ]


# ---------------------------------------------------------------- error body shape


def test_error_body_shape(client: httpx.Client) -> None:
    resp = client.get(blob_path(unique("err"), digest_of(random_bytes(8))))
    expect(resp, 404)
    assert resp.headers.get("content-type", "").startswith("application/json"), describe(resp)
    body = resp.json()
    assert set(body) == {"errors"}, describe(resp)
    for err in body["errors"]:
        assert set(err) <= {"code", "message", "detail"}, describe(resp)
        assert err["code"] in ERROR_CODES, describe(resp)


@pytest.mark.parametrize(
    ("method", "path_fmt"),
    [("GET", "/v2/{r}/blobs/{d}"), ("GET", "/v2/{r}/manifests/{d}"),
     ("GET", "/v2/{r}/manifests/nosuchtag"), ("GET", "/v2/{r}/blobs/uploads/{u}"),
     ("DELETE", "/v2/{r}/blobs/{d}")],
)
def test_not_found_errors_use_spec_codes(client: httpx.Client, method: str,
                                         path_fmt: str) -> None:
    repo = unique("err")
    push_image(client, repo, "v1")
    path = path_fmt.format(r=repo, d=digest_of(random_bytes(8)), u=fake_uuid())
    resp = client.request(method, path)
    expect(resp, 404)
    assert set(error_codes(resp)) <= ERROR_CODES, describe(resp)


# ---------------------------------------------------------------- NAME_INVALID


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_name_on_blob_get_is_name_invalid(client: httpx.Client, name: str) -> None:
    assert_error(client.get(blob_path(name, digest_of(b"x"))), 400, "NAME_INVALID")


@pytest.mark.parametrize("name", ["UPPER", "a..b", "trail-"])
@pytest.mark.parametrize("index", range(len(_name_requests("x"))))
def test_invalid_name_on_every_endpoint(client: httpx.Client, name: str, index: int) -> None:
    method, path = _name_requests(name)[index]
    resp = client.request(method, path, content=b"{}" if method == "PUT" else None,
                          headers={"Content-Type": OCI_MANIFEST} if method == "PUT" else None)
    assert resp.status_code == 400, describe(resp)
    if method != "HEAD":
        assert "NAME_INVALID" in error_codes(resp), describe(resp)


def test_overlong_name_is_rejected(client: httpx.Client) -> None:
    name = "/".join(["a" * 60] * 20)
    resp = client.get(tags_path(name))
    assert_not_server_error(resp)
    assert resp.status_code in (400, 404), describe(resp)


# ---------------------------------------------------------------- DIGEST_INVALID


@pytest.mark.parametrize("bad", INVALID_DIGESTS)
def test_invalid_digest_on_blob_get_is_digest_invalid(client: httpx.Client, bad: str) -> None:
    repo = unique("err")
    push_image(client, repo, "v1")
    assert_error(client.get(blob_path(repo, bad)), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("bad", ["sha256:abc", "sha256:" + "g" * 64])
def test_invalid_digest_on_blob_head_is_400(client: httpx.Client, bad: str) -> None:
    repo = unique("err")
    push_image(client, repo, "v1")
    expect(client.head(blob_path(repo, bad)), 400)


@pytest.mark.parametrize("bad", ["sha256:abc", "sha256:" + "g" * 64, "sha256:" + "A" * 64])
def test_invalid_digest_reference_on_manifest_get(client: httpx.Client, bad: str) -> None:
    repo = unique("err")
    push_image(client, repo, "v1")
    resp = client.get(manifest_path(repo, bad))
    assert_not_server_error(resp)
    assert resp.status_code in (400, 404), describe(resp)
    if resp.status_code == 400:
        assert set(error_codes(resp)) & {"DIGEST_INVALID", "MANIFEST_INVALID",
                                          "MANIFEST_UNKNOWN", "TAG_INVALID"}, describe(resp)


# ---------------------------------------------------------------- invalid tags


@pytest.mark.parametrize("tag", [".lead", "-lead", "a" * 129, "t@g", "t+g"])
def test_push_invalid_tag_is_400(client: httpx.Client, tag: str) -> None:
    repo = unique("err")
    image = push_image(client, repo, "v1")
    resp = client.put(manifest_path(repo, tag), content=image.body,
                      headers={"Content-Type": image.media_type})
    assert resp.status_code == 400, describe(resp)
    assert set(error_codes(resp)) & {"TAG_INVALID", "MANIFEST_INVALID", "NAME_INVALID",
                                     "DIGEST_INVALID"}, describe(resp)


def test_push_by_digest_with_invalid_tag_param_is_rejected(client: httpx.Client) -> None:
    repo = unique("err")
    image = push_image(client, repo)
    resp = client.put(manifest_path(repo, image.digest), content=image.body,
                      params=[("tag", "ok"), ("tag", ".bad")],
                      headers={"Content-Type": image.media_type})
    assert_not_server_error(resp)
    if resp.status_code == 201:  # accepted: only valid tags may be announced and created
        announced = [t.strip() for t in resp.headers.get_list("oci-tag", split_commas=True)]
        assert ".bad" not in announced, describe(resp)
    else:
        assert resp.status_code == 400, describe(resp)


# ---------------------------------------------------------------- never a 500


def _with(location: str, **params: str) -> str:
    return str(httpx.URL(location).copy_merge_params(params))


def _bad_requests(repo: str, upload: str, d: str) -> list[tuple[str, str, dict[str, str], bytes]]:
    """Malformed requests against an existing repository `repo` holding blob `d`."""
    return [
        ("GET", f"{tags_path(repo)}?n=abc", {}, b""),
        ("GET", f"{tags_path(repo)}?n=-1", {}, b""),
        ("GET", f"{tags_path(repo)}?n=99999999999999999999999", {}, b""),
        ("GET", "/v2/_catalog?n=abc", {}, b""),
        ("GET", "/v2/_catalog?n=-5", {}, b""),
        ("GET", blob_path(repo, d), {"Range": "bytes=abc"}, b""),
        ("GET", blob_path(repo, d), {"Range": "bytes=5-2"}, b""),
        ("PUT", manifest_path(repo, "t"), {"Content-Type": "text/plain"}, b"hello"),
        ("PUT", manifest_path(repo, "t"), {}, b"{}"),
        ("PUT", manifest_path(repo, "t"), {"Content-Type": OCI_MANIFEST},
         b'{"schemaVersion":2,"config":{"digest":5}}'),
        ("PUT", manifest_path(repo, "t"), {"Content-Type": OCI_MANIFEST},
         b'{"schemaVersion":2,"layers":[{"digest":"' + d.encode() + b'","size":"big"}]}'),
        ("PUT", manifest_path(repo, "t"), {"Content-Type": OCI_MANIFEST},
         b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","config":null}'),
        ("PUT", manifest_path(repo, "t"), {"Content-Type": OCI_MANIFEST}, b"{" * 10000),
        ("PATCH", upload, {"Content-Range": "99999999999999999999-100000000000000000000"},
         b"x"),
        ("PUT", _with(upload, digest="sha256:zz"), {}, b""),
        ("PUT", _with(upload, digest=""), {}, b""),
        ("PUT", _with(upload, digest="sha256:" + "a" * 64 + "/../x"), {}, b""),
        ("POST", f"{uploads_path(repo)}?digest=bogus", {"Content-Type": OCTET}, b"abc"),
        ("POST", f"{uploads_path(repo)}?mount=bogus&from={repo}", {}, b""),
        ("POST", f"{uploads_path(repo)}?mount={d}&from=NOT..VALID", {}, b""),
        ("GET", f"{referrers_path(repo, d)}?artifactType=", {}, b""),
        ("GET", referrers_path(repo, "sha256:"), {}, b""),
        ("DELETE", manifest_path(repo, "sha256:zz"), {}, b""),
        ("PATCH", manifest_path(repo, "t"), {}, b""),
        ("POST", manifest_path(repo, "t"), {}, b""),
        ("GET", f"/v2/{repo}/blobs/uploads/not-a-uuid", {}, b""),
        ("GET", f"/v2/{repo}/blobs/uploads/..%2F..%2F..%2Fetc%2Fpasswd", {}, b""),
        ("GET", f"/v2/{repo}/blobs/sha256:..%2F..%2Fetc", {}, b""),
    ]


@pytest.mark.parametrize("index", range(len(_bad_requests("r", "/u", "sha256:0"))))
def test_bad_input_is_never_a_server_error(client: httpx.Client, index: int) -> None:
    repo = unique("err")
    image = push_image(client, repo, "v1")
    upload = start_upload(client, repo)
    blob = next(iter(image.blobs))
    method, path, headers, body = _bad_requests(repo, upload, blob)[index]
    resp = client.request(method, path, headers=headers, content=body or None)
    assert_not_server_error(resp)
    is_json = resp.headers.get("content-type", "").startswith("application/json")
    if resp.status_code >= 400 and method != "HEAD" and resp.content and is_json:
        error_codes(resp)  # a JSON 4xx body MUST have the spec shape


def test_warning_headers_if_any_are_well_formed(client: httpx.Client) -> None:
    repo = unique("err")
    image = push_image(client, repo, "v1")
    responses = [client.get("/v2/"), client.get(manifest_path(repo, "v1")),
                 client.get(blob_path(repo, next(iter(image.blobs)))), client.get(tags_path(repo)),
                 client.get(referrers_path(repo, image.digest))]
    for resp in responses:
        warnings = resp.headers.get_list("warning")
        assert sum(len(w) for w in warnings) <= 4096, describe(resp)
        for warning in warnings:
            assert warning.startswith('299 - "'), describe(resp)
            assert warning.endswith('"'), describe(resp)

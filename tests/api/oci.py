"""Helpers for the HTTP conformance tests: digests, blobs, manifests and pushes.

Everything here talks to the live server through the `client` fixture (an httpx.Client
whose base_url is the registry); nothing is mocked.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_BLOB_DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

OCTET = "application/octet-stream"
ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
        "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED",
        "TOOMANYREQUESTS",
        # Legacy Docker codes the spec says a client MAY encounter.
        "TAG_INVALID", "MANIFEST_UNVERIFIED", "PAGINATION_NUMBER_INVALID",
    }
)


# ---------------------------------------------------------------- names and digests


def unique(prefix: str) -> str:
    """A repository (or tag) name that no other test uses."""
    return f"{prefix}-{os.urandom(5).hex()}"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def random_bytes(size: int = 256) -> bytes:
    return os.urandom(size)


def fake_uuid() -> str:
    """A syntactically valid UUID that no server issued."""
    raw = os.urandom(16).hex()
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-a{raw[17:20]}-{raw[20:32]}"


def blob_path(repo: str, digest: str) -> str:
    return f"/v2/{repo}/blobs/{digest}"


def manifest_path(repo: str, ref: str) -> str:
    return f"/v2/{repo}/manifests/{ref}"


def uploads_path(repo: str) -> str:
    return f"/v2/{repo}/blobs/uploads/"


def tags_path(repo: str) -> str:
    return f"/v2/{repo}/tags/list"


def referrers_path(repo: str, digest: str) -> str:
    return f"/v2/{repo}/referrers/{digest}"


def url_path(location: str) -> str:
    """The path of a Location header value, which MAY be absolute or relative."""
    return httpx.URL(location).path


# ---------------------------------------------------------------- assertions


def describe(resp: httpx.Response) -> str:
    """One-line summary of an exchange, used as the assertion message."""
    req = resp.request
    try:
        body = resp.text[:600]
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        body = f"<{len(resp.content)} bytes>"
    headers = {k: v for k, v in resp.headers.items() if k.lower() != "date"}
    return f"{req.method} {req.url} -> {resp.status_code} headers={headers} body={body!r}"


def expect(resp: httpx.Response, *statuses: int) -> httpx.Response:
    assert resp.status_code in statuses, describe(resp)
    return resp


def error_codes(resp: httpx.Response) -> list[str]:
    """Codes of a spec error body, asserting its shape on the way."""
    try:
        body = resp.json()
    except ValueError as exc:
        raise AssertionError(f"error body is not JSON: {describe(resp)}") from exc
    assert isinstance(body, dict), describe(resp)
    errors = body.get("errors")
    assert isinstance(errors, list), describe(resp)
    assert errors, describe(resp)
    codes = []
    for err in errors:
        assert isinstance(err, dict), describe(resp)
        code = err.get("code")
        assert isinstance(code, str), describe(resp)
        assert code, describe(resp)
        assert all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ_" for c in code), describe(resp)
        if "message" in err:
            assert isinstance(err["message"], str), describe(resp)
        codes.append(code)
    return codes


def assert_error(resp: httpx.Response, status: int, *codes: str) -> None:
    """The response has the status and a JSON error body with one of the codes."""
    assert resp.status_code == status, describe(resp)
    found = error_codes(resp)
    if codes:
        assert set(found) & set(codes), f"expected one of {codes}: {describe(resp)}"


def assert_not_server_error(resp: httpx.Response) -> None:
    assert resp.status_code < 500, describe(resp)


def link_next(resp: httpx.Response) -> str | None:
    """The target of a `Link: <url>; rel="next"` header, if any."""
    for value in resp.headers.get_list("link"):
        for part in value.split(","):
            pieces = [p.strip() for p in part.split(";")]
            target = pieces[0]
            if not (target.startswith("<") and target.endswith(">")):
                continue
            params = [p.replace(" ", "").lower() for p in pieces[1:]]
            if 'rel="next"' in params or "rel=next" in params:
                return target[1:-1]
    return None


# ---------------------------------------------------------------- blobs


def start_upload(client: httpx.Client, repo: str, **params: str) -> str:
    """POST /v2/<name>/blobs/uploads/ and return the upload Location."""
    resp = client.post(uploads_path(repo), params=params or None,
                       headers={"Content-Length": "0"})
    expect(resp, 202)
    location = resp.headers.get("location")
    assert location, describe(resp)
    return location


def upload_blob(client: httpx.Client, repo: str, data: bytes, algorithm: str = "sha256") -> str:
    """Push a blob with POST then PUT; return its digest."""
    digest = digest_of(data, algorithm)
    params = {} if algorithm == "sha256" else {"digest-algorithm": algorithm}
    location = start_upload(client, repo, **params)
    resp = client.put(location, params={"digest": digest}, content=data,
                      headers={"Content-Type": OCTET})
    expect(resp, 201)
    return digest


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


# ---------------------------------------------------------------- manifests


class Pushed:
    """A manifest that was (or will be) pushed: its exact bytes and media type."""

    def __init__(self, body: bytes, media_type: str, blobs: dict[str, bytes] | None = None):
        self.body = body
        self.media_type = media_type
        self.digest = digest_of(body)
        self.size = len(body)
        self.blobs = blobs or {}
        self.response: httpx.Response | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.body)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, indent=2).encode()


def put_manifest(client: httpx.Client, repo: str, ref: str, body: bytes, media_type: str | None,
                 params: Any = None) -> httpx.Response:
    headers = {"Content-Type": media_type} if media_type else {}
    return client.put(manifest_path(repo, ref), content=body, headers=headers, params=params)


def push(client: httpx.Client, repo: str, pushed: Pushed, ref: str | None = None) -> Pushed:
    """PUT the manifest by ref (tag) or, when ref is None, by its digest; assert 201."""
    resp = put_manifest(client, repo, ref or pushed.digest, pushed.body, pushed.media_type)
    expect(resp, 201)
    pushed.response = resp
    return pushed


def image_manifest(
    config: bytes,
    layers: list[bytes],
    *,
    media_type: str = OCI_MANIFEST,
    config_type: str = OCI_CONFIG,
    layer_type: str = OCI_LAYER,
    artifact_type: str | None = None,
    subject: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type:
        manifest["artifactType"] = artifact_type
    manifest["config"] = descriptor(config_type, config)
    manifest["layers"] = [descriptor(layer_type, layer) for layer in layers]
    if subject:
        manifest["subject"] = subject
    if annotations:
        manifest["annotations"] = annotations
    return manifest


def make_config() -> bytes:
    """A small, unique OCI image config."""
    return encode({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest_of(random_bytes(16))]},
    })


def push_image(
    client: httpx.Client,
    repo: str,
    ref: str | None = None,
    *,
    layers: int = 1,
    docker: bool = False,
    config_type: str | None = None,
    artifact_type: str | None = None,
    subject: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> Pushed:
    """Upload a config and `layers` random layers, then push an image manifest."""
    config = make_config()
    layer_data = [random_bytes(128 + i) for i in range(layers)]
    for blob in (config, *layer_data):
        upload_blob(client, repo, blob)
    if docker:
        manifest = image_manifest(config, layer_data, media_type=DOCKER_MANIFEST,
                                  config_type=config_type or DOCKER_CONFIG,
                                  layer_type=DOCKER_LAYER)
    else:
        manifest = image_manifest(config, layer_data, config_type=config_type or OCI_CONFIG,
                                  artifact_type=artifact_type, subject=subject,
                                  annotations=annotations)
    blobs = {digest_of(b): b for b in (config, *layer_data)}
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    return push(client, repo, Pushed(encode(manifest), media_type, blobs), ref)


def push_artifact(
    client: httpx.Client,
    repo: str,
    subject: Pushed | dict[str, Any] | None,
    artifact_type: str = "application/vnd.example.sbom.v1",
    *,
    annotations: dict[str, str] | None = None,
    ref: str | None = None,
) -> Pushed:
    """Push an OCI artifact (empty config, one non-empty layer) referring to subject."""
    layer = random_bytes(64)
    upload_blob(client, repo, EMPTY_JSON)
    upload_blob(client, repo, layer)
    subject_desc = subject.descriptor() if isinstance(subject, Pushed) else subject
    manifest = image_manifest(EMPTY_JSON, [layer], config_type=OCI_EMPTY,
                              layer_type="application/vnd.example.data.v1",
                              artifact_type=artifact_type, subject=subject_desc,
                              annotations=annotations)
    blobs = {EMPTY_JSON_DIGEST: EMPTY_JSON, digest_of(layer): layer}
    return push(client, repo, Pushed(encode(manifest), OCI_MANIFEST, blobs), ref)


def index_manifest(
    children: list[Pushed],
    *,
    media_type: str = OCI_INDEX,
    artifact_type: str | None = None,
    subject: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type:
        index["artifactType"] = artifact_type
    platforms = [("amd64", "linux"), ("arm64", "linux"), ("ppc64le", "linux"), ("s390x", "linux")]
    index["manifests"] = [
        child.descriptor(platform={"architecture": arch, "os": os_name})
        for child, (arch, os_name) in zip(children, platforms * 4, strict=False)
    ]
    if subject:
        index["subject"] = subject
    if annotations:
        index["annotations"] = annotations
    return index


def push_index(
    client: httpx.Client,
    repo: str,
    children: list[Pushed],
    ref: str | None = None,
    **kwargs: Any,
) -> Pushed:
    media_type = kwargs.get("media_type", OCI_INDEX)
    body = encode(index_manifest(children, **kwargs))
    return push(client, repo, Pushed(body, media_type), ref)

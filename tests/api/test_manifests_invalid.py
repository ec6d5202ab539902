"""Push category: manifest uploads that a registry MUST (or per the contract does) reject."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    OCI_INDEX,
    OCI_MANIFEST,
    Pushed,
    assert_error,
    digest_of,
    encode,
    expect,
    image_manifest,
    index_manifest,
    make_config,
    manifest_path,
    put_manifest,
    random_bytes,
    unique,
    upload_blob,
)


def _config(client: httpx.Client, repo: str) -> bytes:
    config = make_config()
    upload_blob(client, repo, config)
    return config


def _pull(client: httpx.Client, repo: str, ref: str) -> httpx.Response:
    return expect(client.get(manifest_path(repo, ref)), 200)


# ---------------------------------------------------------------- rejections


def test_push_missing_config_blob_is_manifest_blob_unknown(client: httpx.Client) -> None:
    repo = unique("man")
    layer = random_bytes(50)
    upload_blob(client, repo, layer)
    body = encode(image_manifest(make_config(), [layer]))
    assert_error(put_manifest(client, repo, "v1", body, OCI_MANIFEST), 400,
                 "MANIFEST_BLOB_UNKNOWN")


def test_push_missing_layer_blob_is_manifest_blob_unknown(client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    body = encode(image_manifest(config, [random_bytes(50)]))
    assert_error(put_manifest(client, repo, "v1", body, OCI_MANIFEST), 400,
                 "MANIFEST_BLOB_UNKNOWN")
    expect(client.get(manifest_path(repo, "v1")), 404)


def test_push_docker_manifest_missing_layer_is_manifest_blob_unknown(
        client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    body = encode(image_manifest(config, [random_bytes(50)], media_type=DOCKER_MANIFEST,
                                 config_type="application/vnd.docker.container.image.v1+json"))
    assert_error(put_manifest(client, repo, "v1", body, DOCKER_MANIFEST), 400,
                 "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_push_index_with_missing_child_is_manifest_blob_unknown(
        client: httpx.Client, media_type: str) -> None:
    repo = unique("man")
    child_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
    ghost = Pushed(encode({"schemaVersion": 2, "ghost": unique("x")}), child_type)
    body = encode(index_manifest([ghost], media_type=media_type))
    assert_error(put_manifest(client, repo, "multi", body, media_type), 400,
                 "MANIFEST_BLOB_UNKNOWN")


def test_push_by_digest_mismatch_is_digest_invalid(client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    body = encode(image_manifest(config, []))
    wrong = digest_of(body + b" ")
    assert_error(put_manifest(client, repo, wrong, body, OCI_MANIFEST), 400, "DIGEST_INVALID")
    expect(client.get(manifest_path(repo, wrong)), 404)
    expect(client.get(manifest_path(repo, digest_of(body))), 404)


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe\x00", b"[]", b"null"])
def test_push_invalid_json_is_manifest_invalid(client: httpx.Client, body: bytes) -> None:
    repo = unique("man")
    _config(client, repo)
    assert_error(put_manifest(client, repo, "bad", body, OCI_MANIFEST), 400, "MANIFEST_INVALID")


def _broken_manifests(config: bytes) -> list[tuple[str, dict[str, Any]]]:
    good = image_manifest(config, [])
    cfg = good["config"]
    return [
        ("no-config", {k: v for k, v in good.items() if k != "config"}),
        ("schema-1", {**good, "schemaVersion": 1}),
        ("schema-string", {**good, "schemaVersion": "2"}),
        ("layers-not-list", {**good, "layers": "nope"}),
        ("config-not-object", {**good, "config": "nope"}),
        ("config-no-digest", {**good, "config": {k: v for k, v in cfg.items() if k != "digest"}}),
        ("config-no-size", {**good, "config": {k: v for k, v in cfg.items() if k != "size"}}),
        ("config-negative-size", {**good, "config": {**cfg, "size": -1}}),
        ("config-bad-digest", {**good, "config": {**cfg, "digest": "sha256:zz"}}),
        ("layer-not-object", {**good, "layers": [42]}),
        ("wrong-media-type-field", {**good, "mediaType": OCI_INDEX}),
    ]


@pytest.mark.parametrize("case", [name for name, _ in _broken_manifests(b"{}")])
def test_push_schema_violation_is_manifest_invalid(client: httpx.Client, case: str) -> None:
    repo = unique("man")
    config = _config(client, repo)
    manifest = dict(_broken_manifests(config))[case]
    resp = put_manifest(client, repo, "bad", encode(manifest), OCI_MANIFEST)
    assert_error(resp, 400, "MANIFEST_INVALID", "DIGEST_INVALID")
    expect(client.get(manifest_path(repo, "bad")), 404)


def test_push_index_with_invalid_manifests_field_is_manifest_invalid(client: httpx.Client) -> None:
    repo = unique("man")
    body = encode({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {"a": 1}})
    assert_error(put_manifest(client, repo, "bad", body, OCI_INDEX), 400, "MANIFEST_INVALID")


@pytest.mark.parametrize("media_type", [DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED])
def test_push_schema1_is_rejected(client: httpx.Client, media_type: str) -> None:
    repo = unique("man")
    layer = random_bytes(20)
    upload_blob(client, repo, layer)
    body = encode({
        "schemaVersion": 1, "name": repo, "tag": "old", "architecture": "amd64",
        "fsLayers": [{"blobSum": digest_of(layer)}],
        "history": [{"v1Compatibility": "{\"id\": \"abc\"}"}],
    })
    assert_error(put_manifest(client, repo, "old", body, media_type), 400,
                 "MANIFEST_INVALID", "UNSUPPORTED")


def _padded_manifest(config: bytes, total: int) -> bytes:
    """A valid manifest whose encoding is exactly `total` bytes (padded via an annotation)."""
    manifest = image_manifest(config, [], annotations={"pad": ""})
    base = len(encode(manifest))
    manifest["annotations"]["pad"] = "x" * (total - base)
    body = encode(manifest)
    assert len(body) == total
    return body


def test_push_large_manifest_under_limit_is_accepted(client: httpx.Client) -> None:
    repo = unique("man")
    body = _padded_manifest(_config(client, repo), 4_000_000)
    expect(put_manifest(client, repo, "big", body, OCI_MANIFEST), 201)
    assert _pull(client, repo, "big").content == body


def test_push_manifest_over_4mib_is_413(client: httpx.Client) -> None:
    repo = unique("man")
    body = _padded_manifest(_config(client, repo), 4 * 1024 * 1024 + 1024)
    resp = put_manifest(client, repo, "huge", body, OCI_MANIFEST)
    expect(resp, 413)
    expect(client.get(manifest_path(repo, "huge")), 404)

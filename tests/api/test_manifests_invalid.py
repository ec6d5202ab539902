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


@pytest.mark.parametrize("ref", ["sha256:baddigeststring", "sha256:" + "A" * 64, "sha256:",
                                 "md5:d41d8cd98f00b204e9800998ecf8427e"])
def test_push_to_malformed_digest_reference_is_400(client: httpx.Client, ref: str) -> None:
    repo = unique("man")
    body = encode(image_manifest(_config(client, repo), []))
    resp = put_manifest(client, repo, ref, body, OCI_MANIFEST)
    assert_error(resp, 400, "DIGEST_INVALID", "MANIFEST_INVALID", "TAG_INVALID", "UNSUPPORTED")


def test_push_with_trailing_whitespace_by_original_digest_is_digest_invalid(
        client: httpx.Client) -> None:
    repo = unique("man")
    body = encode(image_manifest(_config(client, repo), []))
    resp = put_manifest(client, repo, digest_of(body), body + b"  ", OCI_MANIFEST)
    assert_error(resp, 400, "DIGEST_INVALID")


def test_rejected_manifest_does_not_move_tag(client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    good = encode(image_manifest(config, []))
    expect(put_manifest(client, repo, "stable", good, OCI_MANIFEST), 201)
    bad = encode(image_manifest(config, [random_bytes(30)]))  # layer never pushed
    assert_error(put_manifest(client, repo, "stable", bad, OCI_MANIFEST), 400,
                 "MANIFEST_BLOB_UNKNOWN")
    assert _pull(client, repo, "stable").content == good


def test_manifest_with_blobs_only_in_other_repository_is_consistent(
        client: httpx.Client) -> None:
    """Rejected as unknown, or accepted and then every referenced blob is pullable here."""
    owner, repo = unique("man"), unique("man")
    config, layer = make_config(), random_bytes(40)
    upload_blob(client, owner, config)
    upload_blob(client, owner, layer)
    upload_blob(client, repo, random_bytes(8))  # the target repository exists
    body = encode(image_manifest(config, [layer]))
    resp = put_manifest(client, repo, "x", body, OCI_MANIFEST)
    if resp.status_code == 400:
        assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
        return
    expect(resp, 201)
    for blob in (config, layer):
        pulled = client.get(f"/v2/{repo}/blobs/{digest_of(blob)}")
        assert pulled.status_code == 200, f"manifest accepted but blob not pullable: {pulled}"


def test_index_with_child_only_in_other_repository_is_consistent(
        client: httpx.Client) -> None:
    owner, repo = unique("man"), unique("man")
    config = make_config()
    upload_blob(client, owner, config)
    child = Pushed(encode(image_manifest(config, [])), OCI_MANIFEST)
    expect(put_manifest(client, owner, child.digest, child.body, OCI_MANIFEST), 201)
    upload_blob(client, repo, random_bytes(8))
    body = encode(index_manifest([child]))
    resp = put_manifest(client, repo, "x", body, OCI_INDEX)
    if resp.status_code == 400:
        assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
        return
    expect(resp, 201)
    expect(client.get(manifest_path(repo, child.digest)), 200)

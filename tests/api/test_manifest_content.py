"""Push category: manifest content variations a registry must store and serve unchanged."""

from __future__ import annotations

import httpx
import pytest

from .oci import (
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    describe,
    digest_of,
    encode,
    expect,
    image_manifest,
    index_manifest,
    make_config,
    manifest_path,
    push_image,
    put_manifest,
    random_bytes,
    unique,
    upload_blob,
)


def _pull(client: httpx.Client, repo: str, ref: str) -> httpx.Response:
    return expect(client.get(manifest_path(repo, ref)), 200)


def _media_type(resp: httpx.Response) -> str:
    return resp.headers.get("content-type", "").split(";")[0].strip()


def _config(client: httpx.Client, repo: str) -> bytes:
    config = make_config()
    upload_blob(client, repo, config)
    return config


# ---------------------------------------------------------------- content variations


ND_LAYERS = ["application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
             "application/vnd.oci.image.layer.nondistributable.v1.tar",
             "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"]


@pytest.mark.parametrize("layer_type", ND_LAYERS)
def test_push_with_unpushed_nondistributable_layer(client: httpx.Client, layer_type: str) -> None:
    repo = unique("man")
    config, layer = _config(client, repo), random_bytes(40)
    upload_blob(client, repo, layer)
    foreign = digest_of(random_bytes(256))
    manifest = image_manifest(config, [layer])
    manifest["layers"].insert(0, {
        "mediaType": layer_type, "digest": foreign, "size": 123456,
        "urls": [f"https://store.example.com/blobs/sha256/{foreign.split(':')[1]}"],
    })
    body = encode(manifest)
    expect(put_manifest(client, repo, "nd", body, OCI_MANIFEST), 201)
    assert _pull(client, repo, "nd").content == body


def test_push_with_custom_fields(client: httpx.Client) -> None:
    repo = unique("man")
    child = push_image(client, repo)
    index = index_manifest([child])
    index["org.example.custom"] = {"nested": [1, 2, 3]}
    index["manifests"][0]["x-extra"] = "kept"
    body = encode(index)
    expect(put_manifest(client, repo, "custom", body, OCI_INDEX), 201)
    assert _pull(client, repo, "custom").content == body


def test_push_artifact_with_empty_layer(client: httpx.Client) -> None:
    repo = unique("man")
    upload_blob(client, repo, EMPTY_JSON)
    manifest = image_manifest(EMPTY_JSON, [EMPTY_JSON], config_type=OCI_EMPTY,
                              layer_type=OCI_EMPTY, artifact_type="application/vnd.x.v1")
    body = encode(manifest)
    expect(put_manifest(client, repo, "nolayers", body, OCI_MANIFEST), 201)
    assert _pull(client, repo, "nolayers").content == body


def test_push_sha512_content_by_digest(client: httpx.Client) -> None:
    repo = unique("man")
    config, layer = make_config(), random_bytes(100)
    for blob in (config, layer):
        upload_blob(client, repo, blob, algorithm="sha512")
    manifest = image_manifest(config, [layer])
    manifest["config"]["digest"] = digest_of(config, "sha512")
    manifest["layers"][0]["digest"] = digest_of(layer, "sha512")
    body = encode(manifest)
    ref = digest_of(body, "sha512")
    resp = put_manifest(client, repo, ref, body, OCI_MANIFEST, params=[("tag", "s512")])
    expect(resp, 201)
    assert resp.headers.get("docker-content-digest") == ref, describe(resp)
    for pull_ref in (ref, "s512"):
        pulled = _pull(client, repo, pull_ref)
        assert pulled.content == body
    head = expect(client.head(manifest_path(repo, ref)), 200)
    assert head.headers.get("docker-content-digest") == ref, describe(head)


def test_push_sha512_index_of_sha512_manifest(client: httpx.Client) -> None:
    repo = unique("man")
    config = make_config()
    upload_blob(client, repo, config, algorithm="sha512")
    manifest = image_manifest(config, [])
    manifest["config"]["digest"] = digest_of(config, "sha512")
    body = encode(manifest)
    expect(put_manifest(client, repo, digest_of(body, "sha512"), body, OCI_MANIFEST), 201)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest_of(body, "sha512"), "size": len(body)}]}
    index_body = encode(index)
    ref = digest_of(index_body, "sha512")
    expect(put_manifest(client, repo, ref, index_body, OCI_INDEX), 201)
    assert _pull(client, repo, ref).content == index_body


def test_push_exactly_4mib_manifest_is_accepted(client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    manifest = image_manifest(config, [], annotations={"pad": ""})
    manifest["annotations"]["pad"] = "x" * (4 * 1024 * 1024 - len(encode(manifest)))
    body = encode(manifest)
    assert len(body) == 4 * 1024 * 1024
    expect(put_manifest(client, repo, "max", body, OCI_MANIFEST), 201)


def test_push_without_content_type_uses_media_type_field_or_rejects(
        client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    body = encode(image_manifest(config, []))
    resp = client.put(manifest_path(repo, "noct"), content=body)
    expect(resp, 201, 400, 415)
    if resp.status_code == 201:
        pulled = _pull(client, repo, "noct")
        assert _media_type(pulled) == OCI_MANIFEST, describe(pulled)
        assert pulled.content == body


def test_push_manifest_with_chunked_transfer_encoding(client: httpx.Client) -> None:
    repo = unique("man")
    body = encode(image_manifest(_config(client, repo), []))
    resp = client.put(manifest_path(repo, "streamed"), content=iter([body[:50], body[50:]]),
                      headers={"Content-Type": OCI_MANIFEST})
    expect(resp, 201)
    assert resp.request.headers.get("transfer-encoding") == "chunked"
    assert _pull(client, repo, "streamed").content == body


def test_push_oversized_manifest_with_chunked_transfer_encoding_is_413(
        client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    manifest = image_manifest(config, [], annotations={"pad": "x" * (4 * 1024 * 1024)})
    body = encode(manifest)
    parts = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    resp = client.put(manifest_path(repo, "huge"), content=iter(parts),
                      headers={"Content-Type": OCI_MANIFEST})
    expect(resp, 413)
    expect(client.get(manifest_path(repo, "huge")), 404)

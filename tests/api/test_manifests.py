"""Push category: manifest uploads (end-7a, end-7b) for OCI and Docker media types."""

from __future__ import annotations

import httpx
import pytest

from .oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Pushed,
    describe,
    descriptor,
    digest_of,
    encode,
    expect,
    image_manifest,
    make_config,
    manifest_path,
    push,
    push_artifact,
    push_image,
    push_index,
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


# ---------------------------------------------------------------- successful pushes


def test_push_manifest_by_tag_is_201_with_location_and_digest(client: httpx.Client) -> None:
    repo = unique("man")
    image = push_image(client, repo, "v1")
    assert image.response is not None
    resp = image.response
    assert resp.headers.get("location"), describe(resp)
    assert resp.headers.get("docker-content-digest") == image.digest, describe(resp)


def test_push_manifest_location_is_pullable(client: httpx.Client) -> None:
    repo = unique("man")
    image = push_image(client, repo, "v1")
    assert image.response is not None
    resp = client.get(image.response.headers["location"])
    expect(resp, 200)
    assert resp.content == image.body


def test_push_manifest_by_digest(client: httpx.Client) -> None:
    repo = unique("man")
    image = push_image(client, repo)  # ref None -> PUT by digest
    assert image.response is not None
    assert image.response.headers.get("docker-content-digest") == image.digest
    assert _pull(client, repo, image.digest).content == image.body


def test_push_preserves_exact_bytes(client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    manifest = image_manifest(config, [])
    # Unusual but valid JSON layout: reordered keys, tabs, trailing newline, unicode escape.
    body = (
        '{\t"config" : ' + encode(manifest["config"]).decode() + ",\n"
        '"layers":[],  "annotations": {"x": "caf\\u00e9"},'
        f'"mediaType":"{OCI_MANIFEST}","schemaVersion":2}}\n\n'
    ).encode()
    resp = put_manifest(client, repo, "odd", body, OCI_MANIFEST)
    expect(resp, 201)
    assert resp.headers.get("docker-content-digest") == digest_of(body), describe(resp)
    assert _pull(client, repo, "odd").content == body
    assert _pull(client, repo, digest_of(body)).content == body


def test_push_manifest_without_layers(client: httpx.Client) -> None:
    repo = unique("man")
    image = push_image(client, repo, "empty", layers=0)
    assert _pull(client, repo, "empty").content == image.body


def test_push_oci_index(client: httpx.Client) -> None:
    repo = unique("man")
    children = [push_image(client, repo), push_image(client, repo)]
    index = push_index(client, repo, children, "multi")
    resp = _pull(client, repo, "multi")
    assert resp.content == index.body
    assert _media_type(resp) == OCI_INDEX, describe(resp)


def test_push_empty_oci_index(client: httpx.Client) -> None:
    repo = unique("man")
    index = push_index(client, repo, [], "none")
    assert _pull(client, repo, "none").content == index.body


def test_push_nested_oci_index(client: httpx.Client) -> None:
    repo = unique("man")
    inner = push_index(client, repo, [push_image(client, repo)])
    outer = push_index(client, repo, [inner], "outer")
    assert _pull(client, repo, "outer").content == outer.body


def test_push_docker_schema2_manifest(client: httpx.Client) -> None:
    repo = unique("man")
    image = push_image(client, repo, "docker", docker=True)
    resp = _pull(client, repo, "docker")
    assert resp.content == image.body
    assert _media_type(resp) == DOCKER_MANIFEST, describe(resp)


def test_push_docker_manifest_list(client: httpx.Client) -> None:
    repo = unique("man")
    children = [push_image(client, repo, docker=True), push_image(client, repo, docker=True)]
    lst = push_index(client, repo, children, "list", media_type=DOCKER_LIST)
    resp = _pull(client, repo, "list")
    assert resp.content == lst.body
    assert _media_type(resp) == DOCKER_LIST, describe(resp)


def test_push_oci_artifact_with_empty_config(client: httpx.Client) -> None:
    repo = unique("man")
    artifact = push_artifact(client, repo, None, "application/vnd.example.thing.v1", ref="art")
    resp = _pull(client, repo, "art")
    assert resp.content == artifact.body
    assert resp.json()["artifactType"] == "application/vnd.example.thing.v1"
    assert resp.json()["config"]["mediaType"] == OCI_EMPTY


def test_push_manifest_with_unknown_config_and_layer_types(client: httpx.Client) -> None:
    repo = unique("man")
    config, layer = random_bytes(20), random_bytes(20)
    upload_blob(client, repo, config)
    upload_blob(client, repo, layer)
    manifest = image_manifest(config, [layer], config_type="application/vnd.example.cfg.v1+json",
                              layer_type="application/vnd.example.layer.v1",
                              artifact_type="application/vnd.example.unknown.v1")
    expect(put_manifest(client, repo, "unknown", encode(manifest), OCI_MANIFEST), 201)


def test_push_ignores_content_type_parameters(client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    body = encode(image_manifest(config, []))
    resp = put_manifest(client, repo, "params", body, f"{OCI_MANIFEST}; charset=utf-8")
    expect(resp, 201)
    assert _pull(client, repo, "params").content == body


def test_push_same_manifest_twice_is_idempotent(client: httpx.Client) -> None:
    repo = unique("man")
    image = push_image(client, repo, "v1")
    resp = put_manifest(client, repo, "v1", image.body, image.media_type)
    expect(resp, 201)
    assert resp.headers.get("docker-content-digest") == image.digest, describe(resp)


def test_push_to_existing_tag_moves_it(client: httpx.Client) -> None:
    repo = unique("man")
    old = push_image(client, repo, "latest")
    new = push_image(client, repo, "latest")
    assert _pull(client, repo, "latest").content == new.body
    assert _pull(client, repo, old.digest).content == old.body


def test_push_to_nested_repository(client: httpx.Client) -> None:
    repo = f"{unique('man')}/a/b/c"
    image = push_image(client, repo, "v1")
    assert _pull(client, repo, "v1").content == image.body


@pytest.mark.parametrize("length", [1, 128])
def test_push_tag_length_limits(client: httpx.Client, length: int) -> None:
    repo = unique("man")
    tag = ("T" + "a_b.c-9" * 20)[:length]
    image = push_image(client, repo, tag)
    assert _pull(client, repo, tag).content == image.body


def test_push_artifact_config_descriptor_matches_empty_blob(client: httpx.Client) -> None:
    repo = unique("man")
    upload_blob(client, repo, EMPTY_JSON)
    layer = random_bytes(10)
    upload_blob(client, repo, layer)
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.x.v1",
        "config": {**descriptor(OCI_EMPTY, EMPTY_JSON), "data": "e30="},
        "layers": [descriptor(OCI_LAYER, layer)],
    }
    pushed = push(client, repo, Pushed(encode(manifest), OCI_MANIFEST), "x")
    assert _pull(client, repo, "x").content == pushed.body


# ---------------------------------------------------------------- tags on push by digest


def test_push_by_digest_with_tag_params_returns_oci_tag(client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    pushed = Pushed(encode(image_manifest(config, [])), OCI_MANIFEST)
    tags = ["1.2.3", "1.2", "latest"]
    resp = put_manifest(client, repo, pushed.digest, pushed.body, OCI_MANIFEST,
                        params=[("tag", t) for t in tags])
    expect(resp, 201)
    announced = [t.strip() for t in resp.headers.get_list("oci-tag", split_commas=True)]
    assert sorted(announced) == sorted(tags), describe(resp)


def test_push_by_digest_with_tag_params_creates_tags(client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    pushed = Pushed(encode(image_manifest(config, [])), OCI_MANIFEST)
    resp = put_manifest(client, repo, pushed.digest, pushed.body, OCI_MANIFEST,
                        params=[("tag", "a"), ("tag", "b")])
    expect(resp, 201)
    for tag in ("a", "b"):
        pulled = _pull(client, repo, tag)
        assert pulled.content == pushed.body
        assert pulled.headers.get("docker-content-digest") == pushed.digest, describe(pulled)


def test_push_by_digest_with_ten_tags(client: httpx.Client) -> None:
    repo = unique("man")
    config = _config(client, repo)
    pushed = Pushed(encode(image_manifest(config, [])), OCI_MANIFEST)
    tags = [f"t{i}" for i in range(10)]
    resp = put_manifest(client, repo, pushed.digest, pushed.body, OCI_MANIFEST,
                        params=[("tag", t) for t in tags])
    expect(resp, 201)
    announced = {t.strip() for t in resp.headers.get_list("oci-tag", split_commas=True)}
    assert announced == set(tags), describe(resp)


# ---------------------------------------------------------------- subject


def test_push_with_subject_returns_oci_subject(client: httpx.Client) -> None:
    repo = unique("man")
    subject = push_image(client, repo, "v1")
    artifact = push_artifact(client, repo, subject)
    assert artifact.response is not None
    assert artifact.response.headers.get("oci-subject") == subject.digest, describe(
        artifact.response)


def test_push_without_subject_has_no_oci_subject(client: httpx.Client) -> None:
    repo = unique("man")
    image = push_image(client, repo, "v1")
    assert image.response is not None
    assert "oci-subject" not in image.response.headers, describe(image.response)


def test_push_with_missing_subject_is_accepted(client: httpx.Client) -> None:
    repo = unique("man")
    missing = {"mediaType": OCI_MANIFEST, "digest": digest_of(random_bytes(32)), "size": 1234}
    artifact = push_artifact(client, repo, missing)
    assert artifact.response is not None
    assert artifact.response.headers.get("oci-subject") == missing["digest"], describe(
        artifact.response)
    assert _pull(client, repo, artifact.digest).content == artifact.body


def test_push_index_with_subject_returns_oci_subject(client: httpx.Client) -> None:
    repo = unique("man")
    subject = push_image(client, repo, "v1")
    index = push_index(client, repo, [push_image(client, repo)], subject=subject.descriptor(),
                       artifact_type="application/vnd.example.bundle.v1")
    assert index.response is not None
    assert index.response.headers.get("oci-subject") == subject.digest, describe(index.response)

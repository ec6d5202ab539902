"""End-to-end tests with podman, a real registry client, against a live cargohold server.

Images are OCI layouts built by :mod:`oci_layout`, loaded into a private podman store
(``podman pull oci:DIR:TAG``), pushed to the server, removed and pulled back. podman
recompresses layers when it pushes from its own store, so layers are checked by their
uncompressed digests (the config's ``diff_ids``); configs and manifests byte by byte.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .oci_layout import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_MANIFEST,
    Image,
    build_image_layout,
    sha256_digest,
)
from .podman import Podman, find_podman

NO_TLS = "--tls-verify=false"

DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ACCEPT_ALL = ", ".join([MEDIA_TYPE_MANIFEST, MEDIA_TYPE_INDEX, DOCKER_MANIFEST_V2,
                        DOCKER_MANIFEST_LIST])

#: podman push --format -> (manifest, config, layer) media types the server must then hold.
FORMATS = {
    "oci": (MEDIA_TYPE_MANIFEST, MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER_GZIP),
    "v2s2": (DOCKER_MANIFEST_V2, DOCKER_CONFIG, DOCKER_LAYER_GZIP),
}


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    """The real podman client with a fresh private store. Missing podman fails, never skips."""
    client = Podman(find_podman(), tmp_path / "podman")
    yield client
    client.cleanup()


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def get_manifest(url: str, repo: str, reference: str) -> httpx.Response:
    response = httpx.get(f"{url}/v2/{repo}/manifests/{reference}", headers={"Accept": ACCEPT_ALL})
    assert response.status_code == 200, (repo, reference, response.status_code, response.text)
    return response


def get_blob(url: str, repo: str, descriptor: dict[str, Any]) -> bytes:
    """GET a blob and check it against its descriptor's digest and size."""
    response = httpx.get(f"{url}/v2/{repo}/blobs/{descriptor['digest']}", follow_redirects=True)
    assert response.status_code == 200, (descriptor, response.status_code, response.text)
    assert sha256_digest(response.content) == descriptor["digest"]
    assert len(response.content) == descriptor["size"]
    return response.content


def assert_manifest(response: httpx.Response, digest: str, media_type: str) -> dict[str, Any]:
    """The served manifest is the one with ``digest``, with matching headers."""
    assert sha256_digest(response.content) == digest
    assert response.headers["docker-content-digest"] == digest
    assert response.headers["content-type"] == media_type
    manifest: dict[str, Any] = json.loads(response.content)
    assert manifest["mediaType"] == media_type
    return manifest


def assert_image_inspect(info: dict[str, Any], image: Image, image_id: str) -> None:
    """``podman image inspect`` of a pulled image describes the source image."""
    assert info["Id"] == image_id
    assert info["Architecture"] == image.architecture
    assert info["Os"] == image.os
    assert info["RootFS"]["Layers"] == list(image.diff_ids)
    assert info["Labels"] == json.loads(image.config.data)["config"]["Labels"]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_push_rmi_pull_round_trip(podman: Podman, registry, tmp_path: Path, fmt: str) -> None:
    layout = build_image_layout(tmp_path / "img", "1.0", seed=f"podman-{fmt}")
    (image,) = layout.images
    manifest_type, config_type, layer_type = FORMATS[fmt]

    # Load the layout into podman's store: the image ID is the config digest.
    image_id = podman.pull(layout.reference)
    assert f"sha256:{image_id}" == image.config.digest
    assert podman.image_ids() == [image_id]

    repo = unique("team/podman")
    dest = f"{registry.host}/{repo}:1"
    digest = podman.push(image_id, dest, tmp_path / "digest", "--format", fmt)

    # The server holds exactly what podman pushed, in the format asked for.
    manifest = assert_manifest(get_manifest(registry.url, repo, "1"), digest, manifest_type)
    assert get_manifest(registry.url, repo, digest).content == get_manifest(
        registry.url, repo, "1"
    ).content
    assert manifest["config"]["mediaType"] == config_type
    config = get_blob(registry.url, repo, manifest["config"])
    if fmt == "oci":
        assert config == image.config.data  # same image ID: the config went up untouched
    assert json.loads(config)["rootfs"]["diff_ids"] == list(image.diff_ids)
    assert [layer["mediaType"] for layer in manifest["layers"]] == [layer_type] * 3
    uncompressed = [
        sha256_digest(gzip.decompress(get_blob(registry.url, repo, layer)))
        for layer in manifest["layers"]
    ]
    assert uncompressed == list(image.diff_ids)
    pushed_id = manifest["config"]["digest"].removeprefix("sha256:")

    # Remove everything locally, then pull it back from the server: by tag and by digest.
    podman.run("rmi", "--all", "--force")
    assert podman.image_ids() == []
    assert podman.pull(dest, NO_TLS) == pushed_id
    info = podman.inspect(dest)
    assert_image_inspect(info, image, pushed_id)
    assert info["Digest"] == digest
    assert f"{registry.host}/{repo}@{digest}" in info["RepoDigests"]
    assert podman.pull(f"{registry.host}/{repo}@{digest}", NO_TLS) == pushed_id
    assert podman.image_ids() == [pushed_id]


def test_push_to_second_repository_reuses_blobs(podman: Podman, registry, tmp_path: Path) -> None:
    """A second push of the same image to another repository gives the same manifest."""
    layout = build_image_layout(tmp_path / "img", "1.0", seed="podman-two-repos", layers=2)
    image_id = podman.pull(layout.reference)
    first, second = unique("team/podman-a"), unique("team/podman-b")
    digest1 = podman.push(image_id, f"{registry.host}/{first}:1", tmp_path / "d1")
    digest2 = podman.push(image_id, f"{registry.host}/{second}:1", tmp_path / "d2")
    assert digest1 == digest2
    body1 = get_manifest(registry.url, first, "1").content
    assert get_manifest(registry.url, second, "1").content == body1
    for layer in json.loads(body1)["layers"]:
        assert get_blob(registry.url, second, layer) == get_blob(registry.url, first, layer)


def test_manifest_list_push_all(podman: Podman, registry, tmp_path: Path) -> None:
    """``podman manifest create/add/push --all``: a two-platform index, children untouched."""
    layouts = [
        build_image_layout(tmp_path / arch, "1.0", seed="podman-list", architecture=arch, layers=2)
        for arch in ("amd64", "arm64")
    ]
    images = [layout.images[0] for layout in layouts]
    local = "localhost/cargohold-e2e-list:1"
    podman.run("manifest", "create", local)
    for layout in layouts:
        podman.run("manifest", "add", local, layout.reference)
    local_list = podman.manifest_inspect(local)
    assert [m["digest"] for m in local_list["manifests"]] == [i.digest for i in images]

    repo = unique("team/podman-list")
    digest_file = tmp_path / "list.digest"
    podman.run(
        "manifest", "push", "--all", "--format", "oci", NO_TLS, "--digestfile", digest_file,
        local, f"docker://{registry.host}/{repo}:1",
    )  # fmt: skip
    digest = digest_file.read_text().strip()

    index = assert_manifest(get_manifest(registry.url, repo, "1"), digest, MEDIA_TYPE_INDEX)
    entries = [(m["digest"], m["size"], m["mediaType"], m["platform"]) for m in index["manifests"]]
    assert entries == [(i.digest, i.manifest.size, MEDIA_TYPE_MANIFEST, i.platform) for i in images]
    for image in images:
        # --all copied each image from its layout as is: every blob byte-identical.
        child = get_manifest(registry.url, repo, image.digest)
        assert child.content == image.manifest.data
        assert child.headers["content-type"] == MEDIA_TYPE_MANIFEST
        manifest = json.loads(child.content)
        assert get_blob(registry.url, repo, manifest["config"]) == image.config.data
        for descriptor, layer in zip(manifest["layers"], image.layers, strict=True):
            assert get_blob(registry.url, repo, descriptor) == layer.data

    # Pulling the index for one platform picks that platform's image.
    podman.run("rmi", "--all", "--force")
    arm = images[1]
    image_id = podman.pull(f"{registry.host}/{repo}:1", NO_TLS, "--arch", "arm64")
    assert f"sha256:{image_id}" == arm.config.digest
    assert_image_inspect(podman.inspect(image_id), arm, image_id)

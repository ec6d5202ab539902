"""End-to-end tests with the docker CLI's ``docker manifest`` commands (no engine needed).

Images are pushed with skopeo from OCI layouts built by :mod:`oci_layout`; ``docker manifest
inspect`` must then show exactly what was pushed, and ``docker manifest create/annotate/push``
must put up an index whose children and blobs are byte-identical to the sources. Each test
gets its own ``DOCKER_CONFIG`` directory (docker keeps its local manifest lists there).
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from .oci_layout import (
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Image,
    Layout,
    build_image_layout,
    build_index_layout,
    sha256_digest,
)
from .skopeo import Result, Skopeo

TIMEOUT = 120
PUSH = "--dest-tls-verify=false"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT = ", ".join([MEDIA_TYPE_MANIFEST, MEDIA_TYPE_INDEX, DOCKER_MANIFEST_LIST])

MISSING = (
    "the docker CLI is not installed (looked for `docker` on PATH): these end-to-end tests need "
    "the real client (no engine). Install it (e.g. `apt-get install docker.io`); CI does."
)


class Docker:
    """Runs the docker client with a private ``DOCKER_CONFIG``."""

    def __init__(self, binary: str, config_dir: Path) -> None:
        self.binary = binary
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "config.json").write_text("{}")
        self.env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}

    def run(self, *args: str, check: bool = True) -> Result:
        cmd = [self.binary, *args]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, timeout=TIMEOUT, check=False, env=self.env
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"$ {shlex.join(cmd)}\ntimed out after {TIMEOUT}s", pytrace=False)
        result = Result(cmd, proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))
        if check and result.returncode != 0:
            pytest.fail(f"docker failed:\n{result.describe()}", pytrace=False)
        return result

    def inspect(self, ref: str, *options: str) -> Any:
        return self.run("manifest", "inspect", "--insecure", *options, ref).json()


@pytest.fixture
def docker(tmp_path: Path) -> Docker:
    """The real docker CLI. Missing docker is a failure, not a skip."""
    binary = shutil.which("docker")
    if binary is None:
        pytest.fail(MISSING, pytrace=False)
    return Docker(binary, tmp_path / "docker-config")


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def push(skopeo: Skopeo, layout: Layout, registry, repo: str, tag: str) -> str:
    """Push a layout with skopeo (every platform of an index); returns ``host/repo:tag``."""
    ref = f"{registry.host}/{repo}:{tag}"
    options = ["--all"] if layout.is_index else []
    skopeo.copy(layout.reference, f"docker://{ref}", PUSH, *options)
    return ref


def get(url: str, path: str) -> httpx.Response:
    response = httpx.get(f"{url}/v2/{path}", headers={"Accept": ACCEPT}, follow_redirects=True)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response


def assert_verbose_entry(entry: dict[str, Any], image: Image, ref: str) -> None:
    """One ``docker manifest inspect -v`` entry describes ``image`` with its exact bytes."""
    assert entry["Ref"] in (ref, f"{ref}@{image.digest}")
    assert entry["Descriptor"]["mediaType"] == MEDIA_TYPE_MANIFEST
    assert entry["Descriptor"]["digest"] == image.digest
    assert entry["Descriptor"]["size"] == image.manifest.size
    assert entry["Descriptor"]["platform"] == image.platform
    assert base64.b64decode(entry["Raw"]) == image.manifest.data
    # Older docker clients have no "OCIManifest" key; Raw (the exact bytes) is checked above.
    assert entry.get("OCIManifest", json.loads(image.manifest.data)) == json.loads(
        image.manifest.data
    )


def test_inspect_image(docker: Docker, skopeo: Skopeo, registry, tmp_path: Path) -> None:
    layout = build_image_layout(tmp_path / "img", "1.0", seed="docker-inspect")
    (image,) = layout.images
    repo = unique("team/app")
    ref = push(skopeo, layout, registry, repo, "1.0")

    assert docker.inspect(ref) == json.loads(image.manifest.data)
    by_digest = f"{registry.host}/{repo}@{image.digest}"
    assert docker.inspect(by_digest) == json.loads(image.manifest.data)
    assert_verbose_entry(docker.inspect(ref, "--verbose"), image, ref)


def test_inspect_index(docker: Docker, skopeo: Skopeo, registry, tmp_path: Path) -> None:
    layout = build_index_layout(tmp_path / "idx", "1.0", seed="docker-index")
    repo = unique("team/app")
    ref = push(skopeo, layout, registry, repo, "1.0")

    # The server serves the index byte for byte; docker's view of it has no index-level
    # annotations (its manifest list type has no such field), everything else must match.
    assert get(registry.url, f"{repo}/manifests/1.0").content == layout.root.data
    expected = json.loads(layout.root.data)
    assert expected.pop("annotations")
    assert docker.inspect(ref) == expected
    verbose = docker.inspect(ref, "--verbose")
    assert isinstance(verbose, list), verbose
    assert len(verbose) == len(layout.images) == 2
    for entry, image in zip(verbose, layout.images, strict=True):
        assert_verbose_entry(entry, image, ref)


def test_inspect_missing_manifest(docker: Docker, skopeo: Skopeo, registry, tmp_path: Path):
    layout = build_image_layout(tmp_path / "img", "1.0", seed="docker-missing", layers=1)
    repo = unique("team/app")
    push(skopeo, layout, registry, repo, "1.0")
    for ref in (f"{repo}:nope", f"{unique('team/nothing')}:1.0"):
        result = docker.run("manifest", "inspect", "--insecure", f"{registry.host}/{ref}",
                            check=False)  # fmt: skip
        assert result.returncode != 0, result.describe()
        assert "no such manifest" in result.stderr + result.text, result.describe()


@pytest.mark.parametrize("where", ["same-repo", "other-repo"])
def test_create_annotate_push(
    docker: Docker, skopeo: Skopeo, registry, tmp_path: Path, where: str
) -> None:
    """``docker manifest create/annotate/push`` of an index over two pushed images."""
    layouts = {
        arch: build_image_layout(
            tmp_path / arch, "1.0", seed="docker-create", architecture=arch, layers=2
        )
        for arch in ("amd64", "arm64")
    }
    source = unique("team/app")
    refs = {arch: push(skopeo, layout, registry, source, arch) for arch, layout in layouts.items()}
    target = source if where == "same-repo" else unique("team/app-list")
    list_ref = f"{registry.host}/{target}:multi"

    docker.run("manifest", "create", "--insecure", list_ref, refs["amd64"], refs["arm64"])
    docker.run("manifest", "annotate", "--variant", "v8", list_ref, refs["arm64"])
    pushed = docker.run("manifest", "push", "--insecure", list_ref).text.strip().splitlines()
    digest = pushed[-1]
    if where == "other-repo":  # docker first copies each child manifest, by digest
        assert sorted(pushed[:-1]) == sorted(
            f"Pushed ref {registry.host}/{target}@{layout.images[0].digest} with digest: "
            f"{layout.images[0].digest}"
            for layout in layouts.values()
        )

    response = get(registry.url, f"{target}/manifests/multi")
    assert sha256_digest(response.content) == digest
    assert response.headers["docker-content-digest"] == digest
    index = json.loads(response.content)
    assert index["mediaType"] in (MEDIA_TYPE_INDEX, DOCKER_MANIFEST_LIST)
    assert response.headers["content-type"] == index["mediaType"]
    images = [layouts[arch].images[0] for arch in ("amd64", "arm64")]
    assert [(m["digest"], m["size"], m["mediaType"]) for m in index["manifests"]] == [
        (image.digest, image.manifest.size, MEDIA_TYPE_MANIFEST) for image in images
    ]
    platforms = [m["platform"] for m in index["manifests"]]
    assert platforms == [images[0].platform, {**images[1].platform, "variant": "v8"}]

    # The children (and, in another repository, their blobs) are there, byte for byte.
    for image in images:
        child = get(registry.url, f"{target}/manifests/{image.digest}")
        assert child.content == image.manifest.data
        for blob in (image.config, *image.layers):
            assert get(registry.url, f"{target}/blobs/{blob.digest}").content == blob.data

    # docker reads back what it pushed (from the registry, not from its local list).
    fresh = Docker(docker.binary, tmp_path / "docker-config-2")
    assert fresh.inspect(list_ref) == index
    assert fresh.inspect(f"{registry.host}/{target}@{digest}") == index

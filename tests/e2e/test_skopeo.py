"""End-to-end tests with skopeo, a real registry client, against a live cargohold server.

The images are OCI layouts built on disk by :mod:`oci_layout` (real gzip tar layers, configs
with diff_ids). Every round trip is checked digest by digest and byte by byte.
"""

from __future__ import annotations

import gzip
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .oci_layout import (
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Layout,
    build_image_layout,
    build_index_layout,
    compare_layouts,
    read_layout,
    sha256_digest,
)
from .skopeo import Skopeo

PUSH = "--dest-tls-verify=false"
PULL = "--src-tls-verify=false"
NO_TLS = "--tls-verify=false"

DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
ACCEPT_ALL = ", ".join([MEDIA_TYPE_MANIFEST, MEDIA_TYPE_INDEX, DOCKER_MANIFEST_V2])


def unique(name: str) -> str:
    """A repository name no other test (or session sharing the server) uses."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


@dataclass
class Pushed:
    """A layout pushed with skopeo to ``host/repo:tag``."""

    layout: Layout
    host: str
    url: str
    repo: str
    tag: str
    pushed_digest: str

    def ref(self, reference: str | None = None) -> str:
        """``docker://host/repo:tag`` (or ``@digest`` / another ``:tag``)."""
        reference = reference or self.tag
        sep = "@" if reference.startswith("sha256:") else ":"
        return f"docker://{self.host}/{self.repo}{sep}{reference}"


def push(skopeo: Skopeo, layout: Layout, registry, repo: str, tag: str, *options: str) -> Pushed:
    # One file per push: concurrent pushes of one tag to several repositories would
    # otherwise truncate and read each other's file.
    digest_file = layout.path.parent / f"{layout.path.name}-{uuid.uuid4().hex}.digest"
    dest = f"docker://{registry.host}/{repo}:{tag}"
    skopeo.copy(layout.reference, dest, PUSH, "--digestfile", digest_file, *options)
    return Pushed(layout, registry.host, registry.url, repo, tag, digest_file.read_text().strip())


def get_manifest(url: str, repo: str, reference: str, accept: str = ACCEPT_ALL) -> httpx.Response:
    return httpx.get(f"{url}/v2/{repo}/manifests/{reference}", headers={"Accept": accept})


def assert_manifest_served(url: str, repo: str, reference: str, data: bytes, media_type: str):
    """GET /v2/<repo>/manifests/<reference> returns exactly ``data`` with the right headers."""
    response = get_manifest(url, repo, reference)
    assert response.status_code == 200, (reference, response.status_code, response.text)
    assert response.content == data
    assert response.headers["content-type"] == media_type
    assert response.headers["docker-content-digest"] == sha256_digest(data)


def assert_blobs_served(url: str, repo: str, layout: Layout) -> None:
    """GET and HEAD /v2/<repo>/blobs/<digest> serve every config and layer of ``layout``."""
    blobs = [blob for image in layout.images for blob in [image.config, *image.layers]]
    with httpx.Client(base_url=url, timeout=60) as http:
        for digest, data in ((blob.digest, blob.data) for blob in blobs):
            response = http.get(f"/v2/{repo}/blobs/{digest}")
            assert response.status_code == 200, (repo, digest, response.status_code)
            assert response.content == data, f"{repo}: blob {digest} bytes differ"
            head = http.head(f"/v2/{repo}/blobs/{digest}")
            assert head.status_code == 200, (repo, digest, head.status_code)
            assert head.headers["content-length"] == str(len(data))
            assert head.headers["docker-content-digest"] == digest


# --------------------------------------------------------------------------------------------
# A three-layer single-platform image pushed to team/app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, skopeo: Skopeo, registry) -> Pushed:
    """The multi-layer image, pushed once as team/app:1.0 (one layer carries 2 MiB)."""
    layout = build_image_layout(
        tmp_path_factory.mktemp("app") / "src", "1.0", seed="team-app", payload_bytes=2 << 20
    )
    return push(skopeo, layout, registry, "team/app", "1.0")


def test_push_multilayer_image(app: Pushed) -> None:
    assert app.pushed_digest == app.layout.digest
    assert_manifest_served(app.url, app.repo, "1.0", app.layout.root.data, MEDIA_TYPE_MANIFEST)
    assert_manifest_served(
        app.url, app.repo, app.layout.digest, app.layout.root.data, MEDIA_TYPE_MANIFEST
    )
    assert_blobs_served(app.url, app.repo, app.layout)


def test_pull_multilayer_image_round_trip(app: Pushed, skopeo: Skopeo, tmp_path: Path) -> None:
    out = tmp_path / "out"
    skopeo.copy(app.ref(), f"oci:{out}:1.0", PULL, "--preserve-digests")

    pulled = read_layout(out, "1.0")
    image = app.layout.images[0]
    assert pulled.digest == app.layout.digest
    assert pulled.root["mediaType"] == MEDIA_TYPE_MANIFEST
    manifest = json.loads(pulled.blobs[pulled.digest])
    assert manifest["config"]["digest"] == image.config.digest
    assert [layer["digest"] for layer in manifest["layers"]] == image.layer_digests
    assert compare_layouts(app.layout, pulled) == []


def test_pull_by_digest_round_trip(app: Pushed, skopeo: Skopeo, tmp_path: Path) -> None:
    out = tmp_path / "out"
    skopeo.copy(app.ref(app.layout.digest), f"oci:{out}:bydigest", PULL, "--preserve-digests")
    assert compare_layouts(app.layout, read_layout(out, "bydigest")) == []


def test_pulled_manifest_bytes_are_the_pushed_bytes(app: Pushed, skopeo: Skopeo) -> None:
    image = app.layout.images[0]
    assert skopeo.inspect(app.ref(), NO_TLS, "--raw").stdout == app.layout.root.data
    assert skopeo.inspect(app.ref(app.layout.digest), NO_TLS, "--raw").stdout == (
        app.layout.root.data
    )
    assert skopeo.inspect(app.ref(), NO_TLS, "--config", "--raw").stdout == image.config.data


def test_inspect(app: Pushed, skopeo: Skopeo) -> None:
    info = skopeo.inspect(app.ref(), NO_TLS).json()
    image = app.layout.images[0]
    assert info["Digest"] == app.layout.digest
    assert info["Layers"] == image.layer_digests
    assert info["Architecture"] == "amd64"
    assert info["Os"] == "linux"
    assert info["Labels"] == {"org.example.seed": "team-app"}
    assert "1.0" in info["RepoTags"]
    assert info["Name"] == f"{app.host}/team/app"


def test_list_tags(app: Pushed, skopeo: Skopeo, registry) -> None:
    # Pushing the same image again only uploads the manifest: the blobs already exist.
    for tag in ("1.1", "latest"):
        again = skopeo.copy(app.layout.reference, app.ref(tag), PUSH)
        uploads = [r for r in again.requests if r.startswith(("PATCH", "PUT")) and "/blobs/" in r]
        assert uploads == [], f"re-push of existing blobs uploaded them again: {uploads}"

    listing = skopeo.run("list-tags", NO_TLS, f"docker://{registry.host}/team/app").json()
    assert listing["Repository"] == f"{registry.host}/team/app"
    assert {"1.0", "1.1", "latest"} <= set(listing["Tags"])
    assert len(listing["Tags"]) == len(set(listing["Tags"]))


def test_list_tags_of_fresh_repository(skopeo: Skopeo, registry, tmp_path: Path) -> None:
    layout = build_image_layout(tmp_path / "src", "v1", seed="list-tags", layers=1)
    repo = unique("team/tags/nested/deep")
    tags = ["v1", "v1.0.0", "2024-01-01", "latest", "a_b", "Z9"]
    for tag in tags:
        push(skopeo, layout, registry, repo, tag)
    listing = skopeo.run("list-tags", NO_TLS, f"docker://{registry.host}/{repo}").json()
    assert sorted(listing["Tags"]) == sorted(tags)


def test_delete_by_digest(skopeo: Skopeo, registry, tmp_path: Path) -> None:
    layout = build_image_layout(tmp_path / "src", "1.0", seed="delete")
    pushed = push(skopeo, layout, registry, unique("team/delete"), "1.0")
    assert skopeo.inspect(pushed.ref(layout.digest), NO_TLS).json()["Digest"] == layout.digest

    skopeo.run("delete", NO_TLS, pushed.ref(layout.digest))

    for reference in (layout.digest, "1.0"):
        gone = skopeo.inspect(pushed.ref(reference), NO_TLS, check=False)
        assert gone.returncode != 0, f"inspect of deleted {reference} succeeded: {gone.text}"
        assert "manifest unknown" in gone.stderr.lower(), gone.describe()
        response = get_manifest(registry.url, pushed.repo, reference)
        assert response.status_code == 404, (reference, response.status_code, response.text)
        assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"

    # The same image can be pushed again after the delete, and is whole again.
    again = push(skopeo, layout, registry, pushed.repo, "1.0")
    assert again.pushed_digest == layout.digest
    out = tmp_path / "out"
    skopeo.copy(pushed.ref(), f"oci:{out}:1.0", PULL, "--preserve-digests")
    assert compare_layouts(layout, read_layout(out, "1.0")) == []


def test_unknown_repository_and_tag_errors(skopeo: Skopeo, registry, app: Pushed) -> None:
    repo = unique("team/missing")
    missing_repo = f"docker://{registry.host}/{repo}"
    listing = skopeo.run("list-tags", NO_TLS, missing_repo, check=False)
    assert listing.returncode != 0
    # skopeo 1.9 reports only the status here; the error code is checked over HTTP.
    assert "404" in listing.stderr, listing.describe()
    response = httpx.get(f"{registry.url}/v2/{repo}/tags/list")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"

    # An unknown repository may be reported as NAME_UNKNOWN or MANIFEST_UNKNOWN.
    expected = {
        f"{missing_repo}:1.0": ("name unknown", "manifest unknown"),
        app.ref("no-such-tag"): ("manifest unknown",),
    }
    for ref, messages in expected.items():
        result = skopeo.inspect(ref, NO_TLS, check=False)
        assert result.returncode != 0, result.text
        assert any(m in result.stderr.lower() for m in messages), result.describe()


# --------------------------------------------------------------------------------------------
# A two-platform image index (linux/amd64 + linux/arm64)


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory, skopeo: Skopeo, registry) -> Pushed:
    layout = build_index_layout(tmp_path_factory.mktemp("multi") / "src", "1.0", seed="multi")
    return push(skopeo, layout, registry, unique("team/multi"), "1.0", "--all")


def test_push_index_all_platforms(multi: Pushed) -> None:
    assert multi.pushed_digest == multi.layout.digest
    assert_manifest_served(multi.url, multi.repo, "1.0", multi.layout.root.data, MEDIA_TYPE_INDEX)
    # Each platform manifest is pullable by digest over plain HTTP.
    for image in multi.layout.images:
        assert_manifest_served(
            multi.url, multi.repo, image.digest, image.manifest.data, MEDIA_TYPE_MANIFEST
        )
    assert_blobs_served(multi.url, multi.repo, multi.layout)


def test_pull_index_all_platforms_round_trip(multi: Pushed, skopeo: Skopeo, tmp_path: Path) -> None:
    out = tmp_path / "out"
    skopeo.copy(multi.ref(), f"oci:{out}:1.0", PULL, "--all", "--preserve-digests")

    pulled = read_layout(out, "1.0")
    assert pulled.digest == multi.layout.digest
    assert pulled.root["mediaType"] == MEDIA_TYPE_INDEX
    index = json.loads(pulled.blobs[pulled.digest])
    assert [m["digest"] for m in index["manifests"]] == [i.digest for i in multi.layout.images]
    for image in multi.layout.images:
        manifest = json.loads(pulled.blobs[image.digest])
        assert manifest["config"]["digest"] == image.config.digest
        assert [layer["digest"] for layer in manifest["layers"]] == image.layer_digests
    assert compare_layouts(multi.layout, pulled) == []


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_inspect_index_per_platform(multi: Pushed, skopeo: Skopeo, arch: str) -> None:
    image = multi.layout.image(arch)
    info = skopeo.run(
        "--override-os", "linux", "--override-arch", arch, "inspect", NO_TLS, multi.ref()
    ).json()
    assert info["Digest"] == multi.layout.digest
    assert info["Architecture"] == arch
    assert info["Layers"] == image.layer_digests

    by_digest = skopeo.inspect(multi.ref(image.digest), NO_TLS).json()
    assert by_digest["Digest"] == image.digest
    assert by_digest["Architecture"] == arch
    assert skopeo.inspect(multi.ref(image.digest), NO_TLS, "--raw").stdout == image.manifest.data


def test_inspect_raw_index(multi: Pushed, skopeo: Skopeo) -> None:
    assert skopeo.inspect(multi.ref(), NO_TLS, "--raw").stdout == multi.layout.root.data


def test_pull_one_platform_of_index(multi: Pushed, skopeo: Skopeo, tmp_path: Path) -> None:
    arm64 = multi.layout.image("arm64")
    out = tmp_path / "out"
    skopeo.run(
        "--override-os",
        "linux",
        "--override-arch",
        "arm64",
        "copy",
        PULL,
        "--preserve-digests",
        multi.ref(),
        f"oci:{out}:arm64",
    )
    pulled = read_layout(out, "arm64")
    assert pulled.digest == arm64.digest
    assert pulled.blobs == {blob.digest: blob.data for blob in arm64.blobs}


# --------------------------------------------------------------------------------------------
# Registry to registry: cross-repository blob mount


def test_copy_between_repositories_mounts_blobs(skopeo: Skopeo, registry, tmp_path: Path) -> None:
    layout = build_image_layout(tmp_path / "src", "1.0", seed="mount", payload_bytes=512 << 10)
    image = layout.images[0]
    source = push(skopeo, layout, registry, unique("team/mount-src"), "1.0")
    dest_repo = unique("other/mount-dst")
    digest_file = tmp_path / "copy.digest"

    result = skopeo.copy(
        source.ref(),
        f"docker://{registry.host}/{dest_repo}:1.0",
        PULL,
        PUSH,
        "--preserve-digests",
        "--digestfile",
        digest_file,
    )

    assert digest_file.read_text().strip() == layout.digest
    # skopeo remembers where it pushed the blobs (its blob info cache) and asks the registry to
    # mount them from the source repository: POST /v2/<dest>/blobs/uploads/?mount=D&from=SRC.
    # The registry must answer 201 ("... mount OK"), not start an upload (202) or fail.
    mounts = {}
    for request in result.requests:
        method, _, url = request.partition(" ")
        parsed = urlsplit(url)
        query = parse_qs(parsed.query)
        if method == "POST" and "mount" in query:
            assert parsed.path == f"/v2/{dest_repo}/blobs/uploads/", request
            mounts[query["mount"][0]] = query["from"][0]
    assert set(image.layer_digests) <= set(mounts), result.describe()
    assert set(mounts.values()) == {source.repo}, mounts
    assert result.stderr.count("... mount OK") == len(mounts), result.describe()
    uploaded = [
        digest
        for request in result.requests
        if request.startswith("PUT ")
        for digest in parse_qs(urlsplit(request[4:]).query).get("digest", [])
    ]
    assert not set(uploaded) & set(image.layer_digests), f"layers uploaded, not mounted: {uploaded}"

    assert_manifest_served(registry.url, dest_repo, "1.0", layout.root.data, MEDIA_TYPE_MANIFEST)
    assert_blobs_served(registry.url, dest_repo, layout)
    info = skopeo.inspect(f"docker://{registry.host}/{dest_repo}:1.0", NO_TLS).json()
    assert info["Digest"] == layout.digest
    assert info["Layers"] == image.layer_digests

    out = tmp_path / "out"
    skopeo.copy(f"docker://{registry.host}/{dest_repo}:1.0", f"oci:{out}:1.0", PULL)
    assert compare_layouts(layout, read_layout(out, "1.0")) == []


def test_copy_index_between_repositories(multi: Pushed, skopeo: Skopeo, tmp_path: Path) -> None:
    dest = f"docker://{multi.host}/{unique('other/multi-copy')}:copied"
    skopeo.copy(multi.ref(), dest, PULL, PUSH, "--all", "--preserve-digests")
    assert skopeo.inspect(dest, NO_TLS, "--raw").stdout == multi.layout.root.data

    out = tmp_path / "out"
    skopeo.copy(dest, f"oci:{out}:copied", PULL, "--all", "--preserve-digests")
    assert compare_layouts(multi.layout, read_layout(out, "copied")) == []


# --------------------------------------------------------------------------------------------
# Docker schema 2 manifests (skopeo converts the OCI manifest on push)


def test_push_docker_schema2(skopeo: Skopeo, registry, tmp_path: Path) -> None:
    layout = build_image_layout(tmp_path / "src", "1.0", seed="schema2")
    image = layout.images[0]
    pushed = push(skopeo, layout, registry, unique("team/schema2"), "1.0", "--format", "v2s2")

    raw = skopeo.inspect(pushed.ref(), NO_TLS, "--raw").stdout
    assert sha256_digest(raw) == pushed.pushed_digest
    manifest = json.loads(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST_V2
    assert manifest["config"] == {
        "mediaType": DOCKER_CONFIG,
        "size": image.config.size,
        "digest": image.config.digest,
    }
    assert [layer["digest"] for layer in manifest["layers"]] == image.layer_digests
    assert {layer["mediaType"] for layer in manifest["layers"]} == {DOCKER_LAYER_GZIP}
    assert_manifest_served(registry.url, pushed.repo, "1.0", raw, DOCKER_MANIFEST_V2)

    # Pull it back unchanged with the dir: transport and compare every file.
    out = tmp_path / "dir"
    skopeo.copy(pushed.ref(), f"dir:{out}", PULL, "--preserve-digests")
    assert (out / "manifest.json").read_bytes() == raw
    for blob in [image.config, *image.layers]:
        assert (out / blob.digest.removeprefix("sha256:")).read_bytes() == blob.data


# --------------------------------------------------------------------------------------------
# zstd layers (skopeo recompresses on push; the manifest is re-serialised by skopeo)

MEDIA_TYPE_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def test_push_zstd_layers(skopeo: Skopeo, registry, tmp_path: Path) -> None:
    layout = build_image_layout(tmp_path / "src", "1.0", seed="zstd")
    image = layout.images[0]
    pushed = push(
        skopeo, layout, registry, unique("team/zstd"), "1.0", "--dest-compress-format", "zstd"
    )

    raw = skopeo.inspect(pushed.ref(), NO_TLS, "--raw").stdout
    assert sha256_digest(raw) == pushed.pushed_digest
    manifest = json.loads(raw)
    assert manifest["config"]["digest"] == image.config.digest
    assert [layer["mediaType"] for layer in manifest["layers"]] == [MEDIA_TYPE_LAYER_ZSTD] * 3
    assert_manifest_served(registry.url, pushed.repo, "1.0", raw, MEDIA_TYPE_MANIFEST)
    with httpx.Client(base_url=registry.url, timeout=60) as http:
        for layer in manifest["layers"]:
            blob = http.get(f"/v2/{pushed.repo}/blobs/{layer['digest']}")
            assert blob.status_code == 200
            assert blob.content.startswith(ZSTD_MAGIC)
            assert sha256_digest(blob.content) == layer["digest"]

    # Pulled back as gzip, the uncompressed layers still match the config's diff_ids.
    out = tmp_path / "out"
    skopeo.copy(pushed.ref(), f"oci:{out}:1.0", PULL, "--dest-compress-format", "gzip")
    pulled = read_layout(out, "1.0")
    pulled_manifest = json.loads(pulled.blobs[pulled.digest])
    assert pulled.blobs[pulled_manifest["config"]["digest"]] == image.config.data
    diff_ids = [
        sha256_digest(gzip.decompress(pulled.blobs[layer["digest"]]))
        for layer in pulled_manifest["layers"]
    ]
    assert diff_ids == list(image.diff_ids)


# --------------------------------------------------------------------------------------------
# Several clients at once


def test_concurrent_pushes_of_the_same_blobs(skopeo: Skopeo, registry, tmp_path: Path) -> None:
    """Six skopeo processes push one image at once: four repositories, two tags of a fifth."""
    layout = build_image_layout(tmp_path / "src", "1.0", seed="concurrent", payload_bytes=1 << 20)
    shared = unique("team/concurrent-shared")
    targets = [(unique("team/concurrent"), "1.0") for _ in range(4)]
    targets += [(shared, "a"), (shared, "b")]

    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        futures = [pool.submit(push, skopeo, layout, registry, repo, tag) for repo, tag in targets]
        results = [future.result() for future in futures]

    assert {result.pushed_digest for result in results} == {layout.digest}
    for repo, tag in targets:
        assert_manifest_served(registry.url, repo, tag, layout.root.data, MEDIA_TYPE_MANIFEST)
        assert_blobs_served(registry.url, repo, layout)
    listing = skopeo.run("list-tags", NO_TLS, f"docker://{registry.host}/{shared}").json()
    assert sorted(listing["Tags"]) == ["a", "b"]

"""The OCI layout builder makes layouts that skopeo accepts (no registry needed)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from .oci_layout import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_MANIFEST,
    REF_NAME,
    build_image_layout,
    build_index_layout,
    compare_layouts,
    read_layout,
)
from .skopeo import Skopeo


def test_image_layout_structure(tmp_path: Path) -> None:
    layout = build_image_layout(tmp_path / "img", "1.0", seed="structure")

    assert json.loads((layout.path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout.path / "index.json").read_text())
    assert index["schemaVersion"] == 2
    [entry] = index["manifests"]
    assert entry["mediaType"] == MEDIA_TYPE_MANIFEST
    assert entry["digest"] == layout.digest
    assert entry["annotations"] == {REF_NAME: "1.0"}

    # Every blob file is named by the sha256 of its content.
    files = sorted((layout.path / "blobs" / "sha256").iterdir())
    assert {f"sha256:{f.name}" for f in files} == set(layout.blobs)
    for f in files:
        assert hashlib.sha256(f.read_bytes()).hexdigest() == f.name

    manifest = json.loads(layout.root.data)
    assert manifest["mediaType"] == MEDIA_TYPE_MANIFEST
    assert manifest["config"]["mediaType"] == MEDIA_TYPE_CONFIG
    assert len(manifest["layers"]) == 3
    config = json.loads(layout.blob_path(manifest["config"]["digest"]).read_bytes())
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["rootfs"]["type"] == "layers"
    for descriptor, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        assert descriptor["mediaType"] == MEDIA_TYPE_LAYER_GZIP
        compressed = layout.blob_path(descriptor["digest"]).read_bytes()
        assert len(compressed) == descriptor["size"]
        uncompressed = gzip.decompress(compressed)
        assert "sha256:" + hashlib.sha256(uncompressed).hexdigest() == diff_id
        with tarfile.open(fileobj=io.BytesIO(uncompressed)) as tar:
            names = tar.getnames()
        assert sum(name.startswith(("etc/", "usr/", "bin/")) for name in names) >= 3


def test_layouts_are_deterministic_and_seeded(tmp_path: Path) -> None:
    first = build_image_layout(tmp_path / "a", seed="same")
    again = build_image_layout(tmp_path / "b", seed="same")
    other = build_image_layout(tmp_path / "c", seed="different")
    assert first.blobs == again.blobs
    assert not set(first.blobs) & set(other.blobs)


def test_index_layout_structure(tmp_path: Path) -> None:
    layout = build_index_layout(tmp_path / "idx", "multi", seed="structure")
    assert layout.is_index
    index = json.loads(layout.root.data)
    assert index["mediaType"] == MEDIA_TYPE_INDEX
    platforms = [(d["platform"]["os"], d["platform"]["architecture"]) for d in index["manifests"]]
    assert platforms == [("linux", "amd64"), ("linux", "arm64")]
    amd64, arm64 = layout.image("amd64"), layout.image("arm64")
    assert amd64.digest != arm64.digest
    assert not set(amd64.layer_digests) & set(arm64.layer_digests)
    assert compare_layouts(layout, read_layout(layout.path, "multi")) == []


def test_skopeo_inspects_image_layout(tmp_path: Path, skopeo: Skopeo) -> None:
    layout = build_image_layout(tmp_path / "img", "1.0", seed="inspect")
    info = skopeo.inspect(layout.reference).json()
    image = layout.images[0]
    assert info["Digest"] == layout.digest
    assert info["Layers"] == image.layer_digests
    assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
    assert skopeo.inspect(layout.reference, "--raw").stdout == layout.root.data
    assert skopeo.inspect(layout.reference, "--config", "--raw").stdout == image.config.data


def test_skopeo_copies_image_layout(tmp_path: Path, skopeo: Skopeo) -> None:
    layout = build_image_layout(tmp_path / "img", "1.0", seed="copy", payload_bytes=256 * 1024)
    skopeo.copy(layout.reference, f"oci:{tmp_path / 'out'}:copied", "--preserve-digests")
    assert compare_layouts(layout, read_layout(tmp_path / "out", "copied")) == []


def test_skopeo_copies_index_layout_with_all(tmp_path: Path, skopeo: Skopeo) -> None:
    layout = build_index_layout(tmp_path / "idx", "multi", seed="copy-all")
    skopeo.copy(layout.reference, f"oci:{tmp_path / 'out'}:multi", "--all", "--preserve-digests")
    assert compare_layouts(layout, read_layout(tmp_path / "out", "multi")) == []


def test_skopeo_picks_one_platform_of_index_layout(tmp_path: Path, skopeo: Skopeo) -> None:
    layout = build_index_layout(tmp_path / "idx", "multi", seed="one-platform")
    arm64 = layout.image("arm64")
    info = skopeo.run("--override-arch", "arm64", "inspect", layout.reference).json()
    assert info["Digest"] == layout.digest  # skopeo reports the digest of the index itself
    assert info["Architecture"] == "arm64"
    assert info["Layers"] == arm64.layer_digests

    out = tmp_path / "out"
    skopeo.run("--override-arch", "arm64", "copy", layout.reference, f"oci:{out}:arm")
    copied = read_layout(out, "arm")
    assert copied.digest == arm64.digest
    assert copied.blobs == {blob.digest: blob.data for blob in arm64.blobs}

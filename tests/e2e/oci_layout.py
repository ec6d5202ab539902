"""Build and read OCI image layouts on disk, for the end-to-end tests with real clients.

Everything here follows the OCI image spec (image-layout.md, manifest.md, image-index.md,
config.md, layer.md): layers are real gzip-compressed tar archives made with :mod:`tarfile`,
each config lists the ``rootfs.diff_ids`` (sha256 of the uncompressed tars), and the layout's
``index.json`` names the top-level manifest or index with the
``org.opencontainers.image.ref.name`` annotation (the "tag" of ``oci:DIR:TAG``).

All content is deterministic: building the same image twice gives byte-identical blobs, and a
``seed`` string is mixed into every file so that different tests push different blobs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"

#: Fixed timestamp for tar entries and config history, so that builds are reproducible.
EPOCH = 1_700_000_000
CREATED = "2023-11-14T22:13:20Z"

DEFAULT_PLATFORMS: tuple[tuple[str, str], ...] = (("linux", "amd64"), ("linux", "arm64"))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """A content-addressed blob and the media type its descriptors give it."""

    media_type: str
    data: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Image:
    """One single-platform image: its manifest, config and layers (base layer first)."""

    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    diff_ids: tuple[str, ...]
    os: str
    architecture: str

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def platform(self) -> dict[str, str]:
        return {"architecture": self.architecture, "os": self.os}

    @property
    def layer_digests(self) -> list[str]:
        return [layer.digest for layer in self.layers]

    @property
    def blobs(self) -> list[Blob]:
        return [self.manifest, self.config, *self.layers]


@dataclass(frozen=True)
class Layout:
    """An OCI image layout written to ``path`` whose ``index.json`` tags ``root`` as ``tag``."""

    path: Path
    tag: str
    root: Blob
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return self.root.digest

    @property
    def media_type(self) -> str:
        return self.root.media_type

    @property
    def is_index(self) -> bool:
        return self.root.media_type == MEDIA_TYPE_INDEX

    @property
    def reference(self) -> str:
        """The skopeo image name of this layout, ``oci:DIR:TAG``."""
        return f"oci:{self.path}:{self.tag}"

    @property
    def blobs(self) -> dict[str, bytes]:
        """Every blob reachable from the tag, by digest (the root included)."""
        out = {self.root.digest: self.root.data}
        for image in self.images:
            out.update((blob.digest, blob.data) for blob in image.blobs)
        return out

    def image(self, architecture: str) -> Image:
        for image in self.images:
            if image.architecture == architecture:
                return image
        raise KeyError(architecture)

    def blob_path(self, digest: str) -> Path:
        return blob_path(self.path, digest)


# --------------------------------------------------------------------------------------------
# Building


def make_tar(files: Mapping[str, bytes]) -> bytes:
    """A deterministic tar archive holding ``files`` (and their parent directories)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs: set[str] = set()
        for name in sorted(files):
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                directory = "/".join(parts[:i])
                if directory not in dirs:
                    dirs.add(directory)
                    tar.addfile(_tar_info(directory + "/", tarfile.DIRTYPE, 0o755, 0))
            data = files[name]
            mode = 0o755 if name.startswith(("bin/", "usr/bin/")) else 0o644
            tar.addfile(_tar_info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
    return buf.getvalue()


def _tar_info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def make_layer(files: Mapping[str, bytes]) -> tuple[Blob, str]:
    """A gzip-compressed tar layer and its diff_id (the digest of the uncompressed tar)."""
    tar = make_tar(files)
    compressed = gzip.compress(tar, compresslevel=6, mtime=0)
    return Blob(MEDIA_TYPE_LAYER_GZIP, compressed), sha256_digest(tar)


def _layer_files(seed: str, platform: str, index: int, payload_bytes: int) -> dict[str, bytes]:
    """A few small text files per layer; optionally one big incompressible file."""
    tag = f"{seed} {platform} layer {index}"
    files = {
        f"etc/cargohold/layer{index}.conf": f"# {tag}\nlayer = {index}\nseed = {seed!r}\n".encode(),
        f"usr/share/doc/layer{index}/README": (f"{tag}: " + "lorem ipsum dolor " * 40).encode(),
        f"bin/hello{index}": f"#!/bin/sh\necho 'hello from {tag}'\n".encode(),
    }
    if index == 0:
        files["etc/os-release"] = f'NAME="cargohold test"\nID=cargohold\nSEED="{seed}"\n'.encode()
    if payload_bytes:
        rng = random.Random(f"{tag} payload")
        files[f"var/lib/payload{index}.bin"] = rng.randbytes(payload_bytes)
    return files


def make_image(
    seed: str,
    *,
    os: str = "linux",
    architecture: str = "amd64",
    layers: int = 3,
    payload_bytes: int = 0,
) -> Image:
    """A single-platform image with ``layers`` gzip layers; the last one gets the payload."""
    platform = f"{os}/{architecture}"
    built = [
        make_layer(_layer_files(seed, platform, i, payload_bytes if i == layers - 1 else 0))
        for i in range(layers)
    ]
    layer_blobs = tuple(blob for blob, _ in built)
    diff_ids = tuple(diff_id for _, diff_id in built)
    config = {
        "created": CREATED,
        "author": "cargohold e2e tests",
        "architecture": architecture,
        "os": os,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": ["/bin/hello0"],
            "WorkingDir": "/",
            "Labels": {"org.example.seed": seed},
        },
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [
            {"created": CREATED, "created_by": f"cargohold e2e layer {i}"} for i in range(layers)
        ],
    }
    # Compact JSON for the config, pretty-printed JSON for the manifest: a registry must keep
    # the exact bytes either way (digests are computed over them).
    config_blob = Blob(MEDIA_TYPE_CONFIG, json.dumps(config, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [blob.descriptor() for blob in layer_blobs],
        "annotations": {
            "org.opencontainers.image.created": CREATED,
            "org.opencontainers.image.title": f"cargohold-e2e-{seed}",
        },
    }
    manifest_blob = Blob(MEDIA_TYPE_MANIFEST, (json.dumps(manifest, indent=3) + "\n").encode())
    return Image(manifest_blob, config_blob, layer_blobs, diff_ids, os, architecture)


def make_index(images: Iterable[Image], seed: str) -> Blob:
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [image.manifest.descriptor(platform=image.platform) for image in images],
        "annotations": {"org.opencontainers.image.title": f"cargohold-e2e-{seed}"},
    }
    return Blob(MEDIA_TYPE_INDEX, json.dumps(index, indent=2).encode())


def write_layout(path: Path, tag: str, root: Blob, images: Iterable[Image]) -> Layout:
    """Write an image layout whose index.json tags ``root`` (a manifest or index) as ``tag``."""
    images = tuple(images)
    layout = Layout(Path(path), tag, root, images)
    layout.path.mkdir(parents=True, exist_ok=True)
    (layout.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for digest, data in layout.blobs.items():
        blob_path(layout.path, digest).write_bytes(data)
    (layout.path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index_json = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [root.descriptor(annotations={REF_NAME: tag})],
    }
    (layout.path / "index.json").write_text(json.dumps(index_json, indent=2))
    return layout


def build_image_layout(
    path: Path,
    tag: str = "1.0",
    *,
    seed: str = "app",
    layers: int = 3,
    os: str = "linux",
    architecture: str = "amd64",
    payload_bytes: int = 0,
) -> Layout:
    """A layout holding one single-platform image with ``layers`` (default 3) layers."""
    image = make_image(
        seed, os=os, architecture=architecture, layers=layers, payload_bytes=payload_bytes
    )
    return write_layout(path, tag, image.manifest, [image])


def build_index_layout(
    path: Path,
    tag: str = "1.0",
    *,
    seed: str = "multi",
    platforms: Iterable[tuple[str, str]] = DEFAULT_PLATFORMS,
    layers: int = 2,
) -> Layout:
    """A layout whose tag names an image index with one manifest per (os, architecture)."""
    images = [make_image(seed, os=os, architecture=arch, layers=layers) for os, arch in platforms]
    return write_layout(path, tag, make_index(images, seed), images)


# --------------------------------------------------------------------------------------------
# Reading (e.g. what a client wrote after pulling)


def blob_path(root: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return Path(root) / "blobs" / algorithm / encoded


@dataclass
class LayoutContents:
    """What a tag of an on-disk layout points at, and every blob reachable from it."""

    root: dict[str, Any]
    blobs: dict[str, bytes]
    media_types: dict[str, str]

    @property
    def digest(self) -> str:
        return str(self.root["digest"])


def read_layout(path: Path, tag: str) -> LayoutContents:
    """Resolve ``tag`` in the layout's index.json and read everything reachable from it.

    Checks the layout along the way: ``oci-layout`` exists, exactly one descriptor carries the
    tag, and each blob's bytes match its digest and its descriptor's size.
    """
    path = Path(path)
    header = json.loads((path / "oci-layout").read_text())
    assert "imageLayoutVersion" in header, header
    index = json.loads((path / "index.json").read_text())
    tagged = [
        d for d in index.get("manifests", []) if d.get("annotations", {}).get(REF_NAME) == tag
    ]
    assert len(tagged) == 1, f"{path}/index.json: expected one descriptor for {tag!r}: {index}"
    contents = LayoutContents(root=tagged[0], blobs={}, media_types={})

    def visit(descriptor: Mapping[str, Any]) -> None:
        digest = descriptor["digest"]
        data = blob_path(path, digest).read_bytes()
        assert sha256_digest(data) == digest, f"{path}: blob {digest} does not match its digest"
        assert len(data) == descriptor["size"], f"{path}: blob {digest} size != descriptor size"
        contents.blobs[digest] = data
        contents.media_types[digest] = descriptor["mediaType"]
        if descriptor["mediaType"] == MEDIA_TYPE_INDEX:
            for child in json.loads(data)["manifests"]:
                visit(child)
        elif descriptor["mediaType"] == MEDIA_TYPE_MANIFEST:
            manifest = json.loads(data)
            visit(manifest["config"])
            for layer in manifest["layers"]:
                visit(layer)

    visit(contents.root)
    return contents


def compare_layouts(expected: Layout, actual: LayoutContents) -> list[str]:
    """Differences between a built layout and what was read back (empty when identical)."""
    problems = []
    if actual.digest != expected.digest:
        problems.append(f"root digest {actual.digest} != expected {expected.digest}")
    if actual.root.get("mediaType") != expected.media_type:
        problems.append(f"root mediaType {actual.root.get('mediaType')} != {expected.media_type}")
    want = expected.blobs
    for digest in sorted(set(want) - set(actual.blobs)):
        problems.append(f"missing blob {digest}")
    for digest in sorted(set(actual.blobs) - set(want)):
        problems.append(f"unexpected blob {digest} ({actual.media_types[digest]})")
    for digest in sorted(set(want) & set(actual.blobs)):
        if actual.blobs[digest] != want[digest]:
            problems.append(f"blob {digest} bytes differ")
    return problems

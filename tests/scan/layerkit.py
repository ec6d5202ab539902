"""Build real image layers (tar, gzip, zstd) and OCI layouts for the scan tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from cargohold.scan import LayerSource

OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


class Layer:
    """A tar layer written member by member, in the order given."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._tar = tarfile.open(  # noqa: SIM115 - closed by tar()
            fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT
        )
        self._closed: bytes | None = None

    def dir(self, name: str, mode: int = 0o755) -> Layer:
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE
        ti.mode = mode
        self._tar.addfile(ti)
        return self

    def file(self, name: str, data: bytes | str, mode: int = 0o644) -> Layer:
        if isinstance(data, str):
            data = data.encode()
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mode = mode
        self._tar.addfile(ti, io.BytesIO(data))
        return self

    def host_file(self, name: str, path: str | Path, mode: int | None = None) -> Layer:
        p = Path(path)
        ti = tarfile.TarInfo(name)
        ti.size = p.stat().st_size
        ti.mode = mode if mode is not None else p.stat().st_mode & 0o7777
        with p.open("rb") as f:
            self._tar.addfile(ti, f)
        return self

    def symlink(self, name: str, target: str) -> Layer:
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.SYMTYPE
        ti.linkname = target
        self._tar.addfile(ti)
        return self

    def hardlink(self, name: str, target: str) -> Layer:
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.LNKTYPE
        ti.linkname = target
        self._tar.addfile(ti)
        return self

    def whiteout(self, name: str) -> Layer:
        parent, _, base = name.rpartition("/")
        return self.file(f"{parent}/.wh.{base}" if parent else f".wh.{base}", b"")

    def opaque(self, dirname: str) -> Layer:
        return self.file(f"{dirname}/.wh..wh..opq", b"")

    def tar(self) -> bytes:
        if self._closed is None:
            self._tar.close()
            self._closed = self._buf.getvalue()
        return self._closed

    def gzip(self) -> bytes:
        return gzip.compress(self.tar(), compresslevel=1, mtime=0)

    def zstd(self) -> bytes:
        return zstandard.ZstdCompressor(level=3).compress(self.tar())


@dataclass
class Blob:
    data: bytes
    media_type: str = OCI_LAYER_GZIP
    opens: int = 0
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.digest = "sha256:" + hashlib.sha256(self.data).hexdigest()

    def source(self) -> LayerSource:
        def opener() -> io.BytesIO:
            self.opens += 1
            return io.BytesIO(self.data)

        return LayerSource(self.digest, self.media_type, opener)


def raw_member(name: str, data: bytes = b"", size: int | None = None, **attrs: object) -> bytes:
    """The bytes of one tar member (GNU format, so any size fits the header) with
    ``data`` padded to a block; ``size`` may claim more than ``data`` holds."""
    ti = tarfile.TarInfo(name)
    ti.size = len(data) if size is None else size
    ti.mode = 0o644
    for k, v in attrs.items():
        setattr(ti, k, v)
    pad = (-len(data)) % tarfile.BLOCKSIZE
    return ti.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + data + b"\0" * pad


TAR_END = b"\0" * (2 * tarfile.BLOCKSIZE)


def gz(layer: Layer) -> Blob:
    return Blob(layer.gzip(), OCI_LAYER_GZIP)


def sources(*blobs: Blob) -> list[LayerSource]:
    return [b.source() for b in blobs]


def _write_blob(root: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return "sha256:" + digest, len(data)


def write_oci_layout(root: Path, layers: list[Layer | tuple[Layer, str]]) -> list[LayerSource]:
    """Write an OCI image layout (index.json, blobs) of an image made of ``layers``
    (gzip-compressed, or ``(layer, "tar")`` for an uncompressed one) and return
    LayerSources reading its layer blobs from disk."""
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    descriptors = []
    diff_ids = []
    out: list[LayerSource] = []
    for item in layers:
        layer, compress = item if isinstance(item, tuple) else (item, "gzip")
        tar = layer.tar()
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        if compress == "gzip":
            data, media_type = layer.gzip(), OCI_LAYER_GZIP
        else:
            data, media_type = tar, OCI_LAYER_TAR
        digest, size = _write_blob(root, data)
        descriptors.append({"mediaType": media_type, "digest": digest, "size": size})
        path = root / "blobs" / "sha256" / digest.split(":", 1)[1]
        out.append(LayerSource(digest, media_type, lambda p=path: p.open("rb")))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "cargohold test"} for _ in layers],
    }
    config_digest, config_size = _write_blob(root, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": descriptors,
    }
    manifest_digest, manifest_size = _write_blob(root, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    return out

"""Real stores in a fresh data dir, images pushed through the core, and helpers that
break them the way disks, operators and crashes do."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cargohold.config import Settings
from cargohold.core.registry import Registry
from cargohold.setup import prepare_storage
from cargohold.stores import Stores, open_stores

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def stores(data_dir: Path) -> Iterator[Stores]:
    settings = Settings(data_dir=data_dir)
    prepare_storage(settings)
    opened = open_stores(settings)
    yield opened
    opened.close()


@pytest.fixture
def registry(stores: Stores) -> Registry:
    return Registry(stores.blobs, stores.meta, 4 << 20)


def push_blob(registry: Registry, repository: str, data: bytes, media_type: str = LAYER) -> dict:
    """Upload and commit one blob through the stores, as the upload endpoint does."""
    upload_id = str(uuid.uuid4())
    store = registry.blob_store
    store.start_upload(upload_id)
    with store.open_upload(upload_id, 0) as writer:
        writer.write(data)
    digest = sha256(data)
    registry.meta.commit_blob(
        repository, digest, len(data), lambda: store.commit_upload(upload_id, digest)
    )
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def push_manifest(registry: Registry, repository: str, tag: str | None, doc: dict) -> str:
    body = json.dumps(doc).encode()
    return registry.manifests.put(repository, tag or sha256(body), body, doc["mediaType"]).digest


@dataclass
class Image:
    repository: str
    digest: str
    config: str
    layers: list[str] = field(default_factory=list)
    layer_bytes: list[bytes] = field(default_factory=list)


def push_image(registry: Registry, repository: str, tag: str | None, layers: int = 2) -> Image:
    config = json.dumps({"architecture": "amd64", "os": "linux", "repo": repository}).encode()
    config_ref = push_blob(registry, repository, config, IMAGE_CONFIG)
    contents = [os.urandom(2048 + i) for i in range(layers)]
    refs = [push_blob(registry, repository, data) for data in contents]
    digest = push_manifest(
        registry,
        repository,
        tag,
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_ref, "layers": refs},
    )
    return Image(repository, digest, config_ref["digest"], [r["digest"] for r in refs], contents)


def push_index(registry: Registry, repository: str, tag: str, children: list[str]) -> str:
    manifests = []
    for child in children:
        size = len(registry.meta.get_manifest(repository, child).content)
        manifests.append({"mediaType": OCI_MANIFEST, "digest": child, "size": size})
    return push_manifest(
        registry,
        repository,
        tag,
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests},
    )


def push_referrer(registry: Registry, repository: str, subject: str) -> str:
    """An artifact pointing at `subject`, which need not exist (the spec allows it)."""
    empty = push_blob(registry, repository, b"{}", EMPTY_CONFIG)
    return push_manifest(
        registry,
        repository,
        None,
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": empty,
            "layers": [push_blob(registry, repository, os.urandom(100))],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 10},
        },
    )


def blob_file(data_dir: Path, digest: str) -> Path:
    """Where the filesystem store keeps a blob (its own scheme: blobs/<alg>/<2 hex>/<hex>)."""
    algorithm, _, encoded = digest.partition(":")
    return data_dir / "blobs" / algorithm / encoded[:2] / encoded


def cargohold(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )

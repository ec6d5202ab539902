"""Scan time of a Debian image: this machine's own dpkg database as an image layer.

The layer carries /var/lib/dpkg/status and os-release of the machine running the bench (a
real Debian package set), plus the Python packages of this virtualenv's site-packages
metadata (*.dist-info/METADATA), pushed into a fresh embedded registry through the core.
Advisories: the OSV records of ../shared/vulndb when that folder exists (else none, and
only the inventory is timed). Prints the median of --runs scans (inventory + matching,
without the CLI's start), the package counts and the findings.

    .venv/bin/python bench/scan_bench.py --runs 5
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import statistics
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from cargohold.config import Settings  # noqa: E402
from cargohold.core.registry import Registry  # noqa: E402
from cargohold.scan.service import ScanService  # noqa: E402
from cargohold.setup import prepare_storage  # noqa: E402
from cargohold.stores import open_stores  # noqa: E402
from cargohold.vulndb.importer import import_path, open_source  # noqa: E402
from cargohold.vulndb.store import AdvisoryStore  # noqa: E402

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def layer_bytes() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for host, inside in (
            ("/var/lib/dpkg/status", "var/lib/dpkg/status"),
            ("/etc/os-release", "etc/os-release"),
        ):
            tar.add(str(Path(host).resolve()), arcname=inside)  # os-release is a link
        site = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        for metadata in (site / "site-packages").glob("*.dist-info/METADATA"):
            inside = "usr/lib/python3/dist-packages/" + "/".join(metadata.parts[-2:])
            tar.add(str(metadata), arcname=inside)
    return gzip.compress(out.getvalue(), compresslevel=6)


def push(registry: Registry, data: bytes, media_type: str) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    upload = str(uuid.uuid4())
    registry.blob_store.start_upload(upload)
    with registry.blob_store.open_upload(upload, 0) as writer:
        writer.write(data)
    registry.meta.commit_blob(
        "bench/debian",
        digest,
        len(data),
        lambda: registry.blob_store.commit_upload(upload, digest),
    )
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", scan_on_push=False)
        prepare_storage(settings)
        stores = open_stores(settings)
        registry = Registry(stores.blobs, stores.meta, 4 << 20)
        vulndb = REPO.parent / "shared" / "vulndb"
        if vulndb.is_dir():
            started = time.perf_counter()
            report = import_path(AdvisoryStore(stores.engine), open_source(vulndb), lambda *_: None)
            print(
                f"imported {report.to_dict().get('records')} advisories in "
                f"{time.perf_counter() - started:.1f} s"
            )
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": push(registry, config, "application/vnd.oci.image.config.v1+json"),
            "layers": [push(registry, layer_bytes(), LAYER)],
        }
        body = json.dumps(manifest).encode()
        registry.manifests.put("bench/debian", "host", body, manifest["mediaType"])
        service = ScanService(registry, AdvisoryStore(stores.engine))
        seconds = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = service.scan("bench/debian", "host")
            seconds.append(time.perf_counter() - started)
        [image] = result.images
        print(f"os: {(image.os or {}).get('pretty_name')}")
        print(f"packages: {image.package_total} {image.packages}")
        print(f"findings: {result.severity_counts}")
        print(
            f"scan: median {statistics.median(seconds):.3f} s of {args.runs} runs "
            f"(min {min(seconds):.3f}, max {max(seconds):.3f})"
        )
        stores.close()


if __name__ == "__main__":
    main()

"""Scanning stored images: `cargohold scan run` / `scan report` over real stores, and the
ScanService on indexes, artifacts and streamed blobs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from cargohold.core.registry import Registry
from cargohold.scan.results import ScanResultStore
from cargohold.scan.service import ScanReport, ScanService, chunk_stream
from cargohold.stores import Stores
from cargohold.vulndb.osv import parse_record
from cargohold.vulndb.store import AdvisoryStore

from .fixtures import add_files, dist_info
from .layerkit import OCI_LAYER_GZIP, OCI_LAYER_ZSTD, Layer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
SITE = "usr/lib/python3.11/site-packages"

DEBIAN_OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""


def _deb(name: str, version: str, source: str | None = None) -> str:
    lines = [
        f"Package: {name}",
        "Status: install ok installed",
        "Priority: optional",
        "Architecture: amd64",
    ]
    if source:
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", f"Description: {name}", " long description", ""]
    return "\n".join(lines)


DPKG_STATUS = "\n".join(
    [
        _deb("openssl", "3.0.11-1~deb12u2"),  # affected by TEST-DEB12-SSL
        _deb("libssl3", "3.0.11-1~deb12u2", "openssl"),  # same source: affected too
        _deb("libc6", "2.36-9+deb12u7", "glibc"),  # at the fix of TEST-DEB12-GLIBC
        _deb("bash", "5.2.15-2+b2"),  # no advisory
    ]
)


def osv(ident: str, ecosystem: str, package: str, fixed: str, **extra: object) -> dict:
    return {
        "schema_version": "1.6.0",
        "id": ident,
        "modified": "2025-01-10T00:00:00Z",
        "aliases": [f"CVE-2099-{ident[-4:]}"],
        "summary": f"{package} test advisory",
        "references": [{"type": "ADVISORY", "url": f"https://example.invalid/{ident}"}],
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": package},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
                **extra,
            }
        ],
    }


ADVISORIES = [
    osv(
        "TEST-DEB12-SSL1",
        "Debian:12",
        "openssl",
        "3.0.15-1~deb12u1",
        ecosystem_specific={"urgency": "high"},
    ),
    osv(
        "TEST-DEB12-GLC1",
        "Debian:12",
        "glibc",
        "2.36-9+deb12u7",
        ecosystem_specific={"urgency": "medium"},
    ),
    osv("TEST-PYPI-REQ1", "PyPI", "requests", "2.20.0", database_specific={"severity": "CRITICAL"}),
    osv("TEST-PYPI-JIN1", "PyPI", "jinja2", "3.1.3", database_specific={"severity": "MODERATE"}),
    osv("TEST-PYPI-URL1", "PyPI", "urllib3", "1.24.2", database_specific={"severity": "HIGH"}),
]


def debian_layer() -> Layer:
    return (
        Layer()
        .dir("etc")
        .dir("usr/lib")
        .file("usr/lib/os-release", DEBIAN_OS_RELEASE)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", DPKG_STATUS)
    )


def python_layer() -> Layer:
    layer = Layer()
    add_files(layer, dist_info(SITE, "requests", "2.19.0"))  # affected
    add_files(layer, dist_info(SITE, "Jinja2", "3.1.4", dirname="jinja2"))  # fixed
    add_files(layer, dist_info(SITE, "urllib3", "1.24.1"))  # affected, deleted above
    return layer


def cleanup_layer() -> Layer:
    return Layer().whiteout(f"{SITE}/urllib3-1.24.1.dist-info")


# -- pushing into real stores


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(registry: Registry, repository: str, data: bytes, media_type: str) -> dict:
    upload_id = str(uuid.uuid4())
    store = registry.blob_store
    store.start_upload(upload_id)
    with store.open_upload(upload_id, 0) as writer:
        writer.write(data)
    digest = _digest(data)
    registry.meta.commit_blob(
        repository, digest, len(data), lambda: store.commit_upload(upload_id, digest)
    )
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def push_manifest(registry: Registry, repository: str, tag: str | None, doc: dict) -> str:
    body = json.dumps(doc).encode()
    media_type = doc["mediaType"]
    return registry.manifests.put(repository, tag or _digest(body), body, media_type).digest


def push_image(
    registry: Registry,
    repository: str,
    tag: str | None,
    layers: list[tuple[bytes, str]],
    arch: str = "amd64",
) -> str:
    config = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers"}}
    return push_manifest(
        registry,
        repository,
        tag,
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": push_blob(registry, repository, json.dumps(config).encode(), IMAGE_CONFIG),
            "layers": [push_blob(registry, repository, data, mt) for data, mt in layers],
        },
    )


def app_layers() -> list[tuple[bytes, str]]:
    return [
        (debian_layer().gzip(), OCI_LAYER_GZIP),
        (python_layer().zstd(), OCI_LAYER_ZSTD),
        (cleanup_layer().gzip(), OCI_LAYER_GZIP),
    ]


def cargohold(data_dir: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == code, (result.stdout, result.stderr)
    return result


def write_advisories(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for record in ADVISORIES:
        (folder / f"{record['id']}.json").write_text(json.dumps(record))
    return folder


EXPECTED = [
    # (severity, package, installed, fixed, advisory): severity order, then package
    ("critical", "requests", "2.19.0", ["2.20.0"], "TEST-PYPI-REQ1"),
    ("high", "libssl3", "3.0.11-1~deb12u2", ["3.0.15-1~deb12u1"], "TEST-DEB12-SSL1"),
    ("high", "openssl", "3.0.11-1~deb12u2", ["3.0.15-1~deb12u1"], "TEST-DEB12-SSL1"),
]


def _summary(findings: list[dict]) -> list[tuple]:
    return [
        (
            f["severity"],
            f["package"],
            f["installed_version"],
            f["fixed_versions"],
            f["advisory"],
        )
        for f in findings
    ]


def test_scan_run_then_report_from_the_cli(registry: Registry, stores: Stores, data_dir, tmp_path):
    digest = push_image(registry, "team/app", "1.0", app_layers())
    stores.close()

    missing = cargohold(data_dir, "scan", "report", "team/app:1.0", code=1)
    assert "cargohold scan run team/app:1.0" in missing.stderr

    cargohold(data_dir, "vulndb", "import", str(write_advisories(tmp_path / "osv")), "--json")
    run = cargohold(data_dir, "scan", "run", "team/app:1.0", "--json")
    ran = json.loads(run.stdout)
    assert "result stored" in run.stderr
    assert (ran["repository"], ran["reference"], ran["digest"]) == ("team/app", "1.0", digest)
    assert ran["status"] == "scanned"
    assert ran["advisory_db"]["import_id"] == 1
    [image] = ran["images"]
    assert image["digest"] == digest and image["platform"] == "linux/amd64"
    assert image["os"]["id"] == "debian" and image["os"]["version_id"] == "12"
    assert image["packages"] == {"Debian:12": 4, "PyPI": 2}  # urllib3 was whited out
    assert image["layers"] == 3
    assert _summary(image["findings"]) == EXPECTED
    ssl = next(f for f in image["findings"] if f["package"] == "openssl")
    assert ssl["aliases"] == ["CVE-2099-SSL1"]
    assert ssl["link"] == "https://example.invalid/TEST-DEB12-SSL1"
    assert ran["severity_counts"] == {
        "critical": 1,
        "high": 2,
        "medium": 0,
        "low": 0,
        "unknown": 0,
    }
    assert not {"jinja2", "Jinja2", "urllib3", "libc6", "bash"} & {
        f["package"] for f in image["findings"]
    }

    by_tag = json.loads(
        cargohold(data_dir, "scan", "report", "team/app:1.0", "--format", "json").stdout
    )
    by_digest = json.loads(
        cargohold(data_dir, "scan", "report", f"team/app@{digest}", "--format", "json").stdout
    )
    assert by_tag == ran == by_digest

    table = cargohold(data_dir, "scan", "report", "team/app:1.0").stdout
    assert "TEST-PYPI-REQ1" in table and "3.0.15-1~deb12u1" in table
    assert "TEST-PYPI-JIN1" not in table

    unknown = cargohold(data_dir, "scan", "run", "team/app:2.0", code=1)
    assert "2.0" in unknown.stderr and "Traceback" not in unknown.stderr


def test_index_is_scanned_per_platform_and_stored(registry: Registry, stores: Stores, tmp_path):
    store = AdvisoryStore(stores.engine)
    store.save([(parse_record(r), json.dumps(r)) for r in ADVISORIES])
    amd = push_image(registry, "team/multi", None, app_layers(), arch="amd64")
    arm = push_image(
        registry, "team/multi", None, [(python_layer().gzip(), OCI_LAYER_GZIP)], "arm64"
    )
    sizes = {d: len(registry.manifests.get("team/multi", d).content) for d in (amd, arm)}
    attestation = push_manifest(
        registry,
        "team/multi",
        None,
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": push_blob(registry, "team/multi", b"{}", IMAGE_CONFIG),
            "layers": [
                push_blob(registry, "team/multi", b'{"_type":"x"}', "application/vnd.in-toto+json")
            ],
        },
    )

    def child(digest: str, size: int, os: str, arch: str, **extra: object) -> dict:
        return {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": size,
            "platform": {"os": os, "architecture": arch},
            **extra,
        }

    att_size = len(registry.manifests.get("team/multi", attestation).content)
    index = push_manifest(
        registry,
        "team/multi",
        "1.0",
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                child(amd, sizes[amd], "linux", "amd64"),
                child(arm, sizes[arm], "linux", "arm64"),
                child(
                    attestation,
                    att_size,
                    "unknown",
                    "unknown",
                    annotations={"vnd.docker.reference.type": "attestation-manifest"},
                ),
            ],
        },
    )
    report = ScanService(registry, store).scan("team/multi", "1.0")
    assert report.digest == index and report.status == "scanned"
    assert [(i.platform, i.status) for i in report.images] == [
        ("linux/amd64", "scanned"),
        ("linux/arm64", "scanned"),
        ("unknown/unknown", "skipped"),
    ]
    amd_image, arm_image, _ = report.images
    assert _summary(amd_image.findings) == EXPECTED
    # Without the cleanup layer, urllib3 is there and affected.
    assert [f["advisory"] for f in arm_image.findings] == ["TEST-PYPI-REQ1", "TEST-PYPI-URL1"]
    assert arm_image.os is None and arm_image.packages == {"PyPI": 3}
    assert report.severity_counts["critical"] == 2 and report.severity_counts["high"] == 3

    results = ScanResultStore(stores.engine)
    assert results.latest("team/multi", index) is None
    report.advisory_db = results.advisory_db_version()
    results.save(report)
    stored = results.latest("team/multi", index)
    assert stored is not None and stored.report.to_dict() == report.to_dict()
    assert stored.vulndb_import_id is None  # advisories saved directly, no import recorded
    assert results.latest("other/repo", index) is None


def test_an_artifact_is_not_an_image(registry: Registry, stores: Stores):
    image = push_image(registry, "team/app", "1.0", [(debian_layer().gzip(), OCI_LAYER_GZIP)])
    size = len(registry.manifests.get("team/app", image).content)
    signature = push_manifest(
        registry,
        "team/app",
        None,
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "config": push_blob(registry, "team/app", b"{}", "application/vnd.oci.empty.v1+json"),
            "layers": [
                push_blob(
                    registry,
                    "team/app",
                    b'{"critical":{}}',
                    "application/vnd.dev.cosign.simplesigning.v1+json",
                )
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": image, "size": size},
        },
    )
    report = ScanService(registry, AdvisoryStore(stores.engine)).scan("team/app", signature)
    assert report.status == "not-an-image"
    assert "application/vnd.dev.cosign.artifact.sig.v1+json" in (report.message or "")
    assert report.findings == [] and report.images[0].status == "not-an-image"
    assert ScanReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_chunk_stream_reads_across_chunk_boundaries():
    chunks = [b"", b"ab", b"", b"cdefg", b"h" * 100_000, b"i"]
    closed = []

    def gen():
        try:
            yield from chunks
        finally:
            closed.append(True)

    stream = chunk_stream(gen(), buffer_size=7)
    assert stream.read(3) == b"abc"
    assert stream.read(4) == b"defg"
    rest = io.BytesIO()
    while block := stream.read(999):
        rest.write(block)
    assert rest.getvalue() == b"h" * 100_000 + b"i"
    assert stream.read() == b""
    stream.close()
    assert closed == [True]

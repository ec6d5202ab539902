"""Scan on push against a live server, with a real client: skopeo pushes an image, and with
no network the server's scanner stores a report (admin API and CLI) and attaches an SBOM
referrer. Jobs queued while no scanner runs survive a restart and are run afterwards."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveRegistry, scaleout_environment
from tests.e2e.oci_layout import MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER_GZIP, Blob, Image, write_layout
from tests.e2e.skopeo import Skopeo, find_skopeo

from cargohold.scan.sbom import CYCLONEDX_JSON

from .test_service import cleanup_layer, debian_layer, python_layer, write_advisories

SCANNING = {"CARGOHOLD_SCAN_WORKERS": "1", "CARGOHOLD_SCAN_POLL_SECONDS": "0.2"}
ADMIN = ("admin", "scan-admin-pw")


def _blob_of(layer_tar: bytes) -> tuple[Blob, str]:
    return (
        Blob(MEDIA_TYPE_LAYER_GZIP, gzip.compress(layer_tar, mtime=0)),
        "sha256:" + hashlib.sha256(layer_tar).hexdigest(),
    )


def app_layout(path: Path, tag: str = "1.0") -> Image:
    """An OCI layout with the scanning tests' app image: Debian 12 packages (openssl
    affected), Python packages (requests affected) and a whiteout."""
    built = [_blob_of(layer.tar()) for layer in (debian_layer(), python_layer(), cleanup_layer())]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in built]},
    }
    config_blob = Blob(MEDIA_TYPE_CONFIG, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_blob.descriptor(),
        "layers": [blob.descriptor() for blob, _ in built],
    }
    image = Image(
        Blob("application/vnd.oci.image.manifest.v1+json", json.dumps(manifest).encode()),
        config_blob,
        tuple(blob for blob, _ in built),
        tuple(diff for _, diff in built),
        "linux",
        "amd64",
    )
    write_layout(path, tag, image.manifest, [image])
    return image


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    (tmp_path / "skopeo-tmp").mkdir()
    return Skopeo(find_skopeo(), tmp_path / "skopeo-tmp")


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s")


def push(skopeo: Skopeo, layout: Path, server: LiveRegistry, target: str) -> None:
    skopeo.copy(
        f"oci:{layout}:1.0",
        f"docker://{server.host}/{target}",
        "--dest-tls-verify=false",
        "--dest-creds",
        ":".join(ADMIN),
    )


def scan_of(server: LiveRegistry, repository: str, reference: str) -> dict | None:
    response = httpx.get(
        f"{server.url}/api/v1/repositories/{repository}/scans/{reference}", auth=ADMIN
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.json()


def referrers(server: LiveRegistry, repository: str, digest: str) -> list[dict]:
    response = httpx.get(
        f"{server.url}/v2/{repository}/referrers/{digest}",
        params={"artifactType": CYCLONEDX_JSON},
        auth=ADMIN,
    )
    assert response.status_code == 200, response.text
    return response.json()["manifests"]


def cli(data_dir: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, **env, "COLUMNS": "200"},
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def bootstrap(data_dir: Path, tmp_path: Path, env: dict[str, str] | None = None) -> None:
    env = env or {}
    cli(data_dir, env, "db", "upgrade")
    cli(data_dir, env, "user", "add", ADMIN[0], "--admin", "--password-stdin", stdin=ADMIN[1])
    cli(data_dir, env, "vulndb", "import", str(write_advisories(tmp_path / "osv")))


@pytest.mark.parametrize("mode", ["embedded", "scaleout"])
def test_a_pushed_image_gets_a_report_and_an_sbom_referrer(
    tmp_path: Path, skopeo: Skopeo, mode: str
):
    data_dir = tmp_path / "data"
    with ExitStack() as stack:
        env = scaleout_environment(stack) if mode == "scaleout" else {}
        bootstrap(data_dir, tmp_path, env)
        image = app_layout(tmp_path / "layout")
        server = LiveRegistry(data_dir, {**env, **SCANNING})
        check_scan_on_push(server, skopeo, tmp_path, image, env)


def check_scan_on_push(
    server: LiveRegistry, skopeo: Skopeo, tmp_path: Path, image: Image, env: dict[str, str]
) -> None:
    data_dir = server.data_dir
    try:
        push(skopeo, tmp_path / "layout", server, "team/app:1.0")
        report = wait_for(lambda: scan_of(server, "team/app", "1.0"))
        assert report["digest"] == image.digest
        assert report["severity_counts"]["critical"] == 1  # requests
        assert report["severity_counts"]["high"] == 2  # openssl, libssl3
        found = sorted((f["advisory"], f["package"]) for f in report["images"][0]["findings"])
        assert found == [
            ("TEST-DEB12-SSL1", "libssl3"),
            ("TEST-DEB12-SSL1", "openssl"),
            ("TEST-PYPI-REQ1", "requests"),
        ]
        [sbom] = wait_for(lambda: referrers(server, "team/app", image.digest))
        assert sbom["annotations"]["dev.cargohold.sbom.format"] == "CycloneDX 1.5"
        doc = httpx.get(
            f"{server.url}/v2/team/app/manifests/{sbom['digest']}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            auth=ADMIN,
        ).json()
        bom = httpx.get(
            f"{server.url}/v2/team/app/blobs/{doc['layers'][0]['digest']}",
            auth=ADMIN,
            follow_redirects=True,
        ).json()
        names = {c["name"] for c in bom["components"]}
        assert {"openssl", "libssl3", "requests", "Jinja2"} <= names
        assert "urllib3" not in names  # deleted by the whiteout layer

        # The tag listing carries the summary; the CLI shows the same stored report.
        tags = httpx.get(f"{server.url}/api/v1/repositories/team/app/tags", auth=ADMIN).json()
        [tag] = [t for t in tags["tags"] if t["name"] == "1.0"]
        assert tag["scan"]["status"] == "scanned"
        assert tag["scan"]["severity_counts"]["critical"] == 1
        printed = cli(data_dir, env, "scan", "report", "team/app:1.0", "--format", "json")
        assert json.loads(printed)["digest"] == image.digest

        # A pushed copy under a new repository is queued and scanned on its own.
        push(skopeo, tmp_path / "layout", server, "team/copy:1.0")
        assert wait_for(lambda: scan_of(server, "team/copy", "1.0"))["digest"] == image.digest
    finally:
        server.stop()


def test_jobs_queued_while_no_scanner_runs_survive_a_restart(tmp_path: Path, skopeo: Skopeo):
    data_dir = tmp_path / "data"
    bootstrap(data_dir, tmp_path)
    image = app_layout(tmp_path / "layout")
    quiet = LiveRegistry(data_dir, {"CARGOHOLD_SCAN_WORKERS": "0"})
    try:
        push(skopeo, tmp_path / "layout", quiet, "team/app:1.0")
        time.sleep(1.0)
        assert scan_of(quiet, "team/app", "1.0") is None
        queue = httpx.get(f"{quiet.url}/api/v1/scan-queue", auth=ADMIN).json()
        assert queue["counts"]["queued"] >= 1
    finally:
        quiet.kill()  # a crash, not a shutdown
    server = LiveRegistry(data_dir, SCANNING)
    try:
        report = wait_for(lambda: scan_of(server, "team/app", "1.0"))
        assert report["digest"] == image.digest
        assert report["severity_counts"]["critical"] == 1
        wait_for(lambda: referrers(server, "team/app", image.digest))
        queue = wait_for(
            lambda: (
                (q := httpx.get(f"{server.url}/api/v1/scan-queue", auth=ADMIN).json())["counts"][
                    "queued"
                ]
                == 0
                and q
            )
        )
        assert queue["counts"]["failed"] == 0
    finally:
        server.stop()

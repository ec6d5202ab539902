"""A full disk (ENOSPC) under the embedded registry: the data directory is a small tmpfs
mounted by the test, filled up by a filler file. Pushes that do not fit get 507 with the
OCI-style JSON error; nothing half-written becomes visible; what was stored before stays
pullable byte for byte; a chunked upload keeps what was acknowledged and resumes once
space is freed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveRegistry

VOLUME_MIB = 24
MIB = 1024 * 1024


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def mount_tmpfs(path: Path, size_mib: int) -> None:
    path.mkdir(parents=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            "this test mounts a small tmpfs to fill it and needs root (CI runs as root): "
            f"{result.stderr.strip()}", pytrace=False,
        )


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    data_dir = tmp_path / "data"  # the mount point: the server log lives beside it
    mount_tmpfs(data_dir, VOLUME_MIB)
    try:
        yield data_dir
    finally:
        subprocess.run(["umount", "-l", str(data_dir)], check=False)


def fill(volume: Path, leave: int) -> Path:
    """Write a filler file until only about `leave` bytes are free on the volume."""
    filler = volume / "filler"
    free = os.statvfs(volume).f_bavail * os.statvfs(volume).f_frsize
    with filler.open("ab") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


def fill_completely(volume: Path) -> None:
    with (volume / "filler-rest").open("ab") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass


def assert_full(response: httpx.Response) -> None:
    assert response.status_code == 507, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "UNAVAILABLE"
    assert "storage is full" in error["message"] and "retry" in error["message"]


def push_blob(http: httpx.Client, repo: str, data: bytes) -> httpx.Response:
    return http.post(
        f"/v2/{repo}/blobs/uploads/", params={"digest": digest_of(data)}, content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def push_image(http: httpx.Client, repo: str, tag: str, layer: bytes) -> str:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [digest_of(layer)]}}).encode()
    for blob in (layer, config):
        assert push_blob(http, repo, blob).status_code == 201
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_of(layer), "size": len(layer)}],
    }).encode()
    response = http.put(
        f"/v2/{repo}/manifests/{tag}", content=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 201, response.text
    return digest_of(manifest)


def test_a_full_disk_refuses_pushes_cleanly_and_keeps_serving(volume: Path) -> None:
    server = LiveRegistry(volume, {"CARGOHOLD_TEST_WORKERS": "1"})
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            layer = os.urandom(256 * 1024)
            manifest_digest = push_image(http, "full/app", "1.0", layer)

            fill(volume, leave=2 * MIB)
            big = os.urandom(4 * MIB)
            assert_full(push_blob(http, "full/app", big))
            assert http.head(f"/v2/full/app/blobs/{digest_of(big)}").status_code == 404

            # A chunked upload: the chunk that fits is kept, the one that doesn't is refused
            # and rolled back, so the acknowledged offset stays true.
            start = http.post("/v2/full/app/blobs/uploads/")
            assert start.status_code == 202
            location = start.headers["location"]
            first, second = big[: MIB // 2], big[MIB // 2 :]
            patched = http.patch(location, content=first, headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"0-{len(first) - 1}"})
            assert patched.status_code == 202, patched.text
            location = patched.headers["location"]
            refused = http.patch(location, content=second, headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{len(first)}-{len(big) - 1}"})
            assert_full(refused)
            status = http.get(location)
            assert status.status_code == 204
            assert status.headers["range"] == f"0-{len(first) - 1}"

            # Reads go on: the image pushed before is served byte for byte.
            got = http.get("/v2/full/app/manifests/1.0",
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            assert got.status_code == 200 and digest_of(got.content) == manifest_digest
            blob = http.get(f"/v2/full/app/blobs/{digest_of(layer)}")
            assert blob.status_code == 200 and blob.content == layer

            # Not a byte left: metadata writes fail cleanly too (or fit in the database's
            # free pages); either way the answer is not a 500 and matches what is stored.
            fill_completely(volume)
            tagged = http.put(
                "/v2/full/app/manifests/1.1", content=got.content,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert tagged.status_code in (201, 507), tagged.text
            if tagged.status_code == 507:
                assert_full(tagged)
            after = http.head("/v2/full/app/manifests/1.1",
                              headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            assert after.status_code == (200 if tagged.status_code == 201 else 404)

            # Space freed: the chunked upload resumes where it was, and the blob is whole.
            for name in ("filler", "filler-rest"):
                (volume / name).unlink()
            finished = http.put(location, params={"digest": digest_of(big)}, content=second,
                                headers={"Content-Type": "application/octet-stream",
                                         "Content-Range": f"{len(first)}-{len(big) - 1}"})
            assert finished.status_code == 201, finished.text
            assert http.get(f"/v2/full/app/blobs/{digest_of(big)}").content == big
            assert push_blob(http, "full/other", os.urandom(3 * MIB)).status_code == 201
        assert "Traceback" not in server.log_path.read_text()
    finally:
        server.stop()

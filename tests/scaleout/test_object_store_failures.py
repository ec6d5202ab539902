"""The object store failing under a scale-out registry (PostgreSQL + S3 + Redis): the S3
endpoint is reached through a proxy the test cuts mid-upload and restores. Requests that
need S3 get 503 UNAVAILABLE with Retry-After (never a 500); nothing half-written becomes
visible; manifests keep being served from the database; after the store is back, a chunked
upload resumes at its acknowledged offset and everything stored before is intact."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.conftest import LiveRegistry, scaleout_environment
from tests.hardening.test_disk_full import digest_of, push_blob, push_image

from .faultproxy import FaultProxy

MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[LiveRegistry, FaultProxy]]:
    with ExitStack() as resources:
        env = scaleout_environment(resources)
        url = env["CARGOHOLD_STORAGE_URL"]
        endpoint = url.split("endpoint=", 1)[1].split("&", 1)[0]
        moto = urlsplit(endpoint)
        proxy = FaultProxy(moto.hostname or "127.0.0.1", moto.port or 80)
        resources.callback(proxy.close)
        env["CARGOHOLD_STORAGE_URL"] = url.replace(endpoint, proxy.endpoint)
        env["CARGOHOLD_TEST_WORKERS"] = "1"
        server = LiveRegistry(tmp_path / "data", env)
        resources.callback(server.stop)
        yield server, proxy


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    error = response.json()["errors"][0]
    assert error["code"] == "UNAVAILABLE"
    assert "object store" in error["message"] and "Retry" in error["message"]


def test_an_object_store_outage_fails_cleanly_and_loses_nothing(
    stack: tuple[LiveRegistry, FaultProxy],
) -> None:
    server, proxy = stack
    with httpx.Client(base_url=server.url, timeout=120) as http:
        layer = os.urandom(300 * 1024)
        manifest_digest = push_image(http, "s3fail/app", "1.0", layer)

        # A chunked upload with its first chunk stored before the outage.
        data = os.urandom(3 * MIB)
        first, second = data[: MIB], data[MIB:]
        start = http.post("/v2/s3fail/app/blobs/uploads/")
        assert start.status_code == 202
        patched = http.patch(start.headers["location"], content=first, headers={
            "Content-Type": "application/octet-stream", "Content-Range": f"0-{len(first) - 1}"})
        assert patched.status_code == 202, patched.text
        location = patched.headers["location"]

        proxy.cut()
        lost = os.urandom(MIB)
        assert_unavailable(push_blob(http, "s3fail/app", lost))
        assert_unavailable(http.patch(location, content=second, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{len(first)}-{len(data) - 1}"}))
        assert_unavailable(http.get(f"/v2/s3fail/app/blobs/{digest_of(layer)}"))
        # Manifests live in the database: pulls of them go on.
        got = http.get("/v2/s3fail/app/manifests/1.0", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200 and digest_of(got.content) == manifest_digest

        proxy.restore()
        assert http.head(f"/v2/s3fail/app/blobs/{digest_of(lost)}").status_code == 404
        status = http.get(location)
        assert status.status_code == 204, status.text
        assert status.headers["range"] == f"0-{len(first) - 1}"
        finished = http.put(location, params={"digest": digest_of(data)}, content=second,
                            headers={"Content-Type": "application/octet-stream",
                                     "Content-Range": f"{len(first)}-{len(data) - 1}"})
        assert finished.status_code == 201, finished.text
        assert http.get(f"/v2/s3fail/app/blobs/{digest_of(data)}").content == data
        assert http.get(f"/v2/s3fail/app/blobs/{digest_of(layer)}").content == layer
        assert push_blob(http, "s3fail/app", lost).status_code == 201
    assert "Traceback" not in server.log_path.read_text()

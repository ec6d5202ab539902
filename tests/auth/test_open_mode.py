"""Open mode: a registry with no users lets anyone do anything, but only on loopback.

As soon as the first user exists, access control is enforced (the running server notices).
Serving an open registry on a non-loopback address is refused unless
``CARGOHOLD_OPEN_REGISTRY=true``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.oci import OCI_MANIFEST, error_codes, manifest_path, push_image
from tests.conftest import free_port

from .realm import Realm

STARTUP_TIMEOUT = 30


@pytest.fixture(scope="module")
def open_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    realm = Realm(tmp_path_factory.mktemp("auth-open"))
    realm.start()
    yield realm
    realm.stop()


def test_anonymous_push_and_pull_with_no_users(open_realm: Realm) -> None:
    with open_realm.client() as http:
        assert http.get("/v2/").status_code == 200
        pushed = push_image(http, "anyone/app", "v1")
        resp = http.get(manifest_path("anyone/app", "v1"), headers={"Accept": OCI_MANIFEST})
        assert resp.status_code == 200
        assert resp.content == pushed.body
        assert http.delete(manifest_path("anyone/app", pushed.digest)).status_code == 202
        assert "anyone/app" in http.get("/v2/_catalog").json()["repositories"]


def test_first_user_ends_open_mode(open_realm: Realm) -> None:
    with open_realm.client() as http:
        push_image(http, "early/app", "v1")
    admin = open_realm.add_user("firstadmin", admin=True)
    open_realm.sync()
    with open_realm.client() as anon, open_realm.client(admin) as root:
        resp = anon.get("/v2/")
        assert resp.status_code == 401
        assert "UNAUTHORIZED" in error_codes(resp)
        resp = anon.post("/v2/early/app/blobs/uploads/", headers={"Content-Length": "0"})
        assert resp.status_code == 401
        resp = anon.get(manifest_path("early/app", "v1"), headers={"Accept": OCI_MANIFEST})
        assert resp.status_code == 401  # "early" is no namespace: private
        assert root.get(manifest_path("early/app", "v1")).status_code == 200


def serve_any_host(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "cargohold", "serve", "--host", "0.0.0.0", "--port",
           str(port), "--data-dir", str(data_dir), "--workers", "1"]
    return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def test_open_registry_refuses_non_loopback_host(tmp_path: Path) -> None:
    proc = serve_any_host(tmp_path / "data", free_port(), {})
    try:
        out, _ = proc.communicate(timeout=STARTUP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("serve --host 0.0.0.0 with no users kept running; expected a refusal")
    assert proc.returncode != 0, out
    assert "open_registry" in out.decode(errors="replace").lower(), out


def test_open_registry_allowed_on_any_host_when_configured(tmp_path: Path) -> None:
    port = free_port()
    proc = serve_any_host(tmp_path / "data", port, {"CARGOHOLD_OPEN_REGISTRY": "true"})
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0]
        assert ready, "server did not become ready"
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()

"""First run: the admin from the environment, and invalid names under access control."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

import httpx
from tests.conftest import LiveRegistry


def test_admin_bootstrapped_from_environment(tmp_path: Path) -> None:
    env = {"CARGOHOLD_ADMIN_USER": "boss", "CARGOHOLD_ADMIN_PASSWORD": "bootstrap-pw"}
    server = LiveRegistry(tmp_path / "data", env)
    try:
        assert httpx.get(f"{server.url}/v2/").status_code == 401  # no longer open
        assert httpx.get(f"{server.url}/v2/", auth=("boss", "bootstrap-pw")).status_code == 200
        me = httpx.get(f"{server.url}/api/v1/users/me", auth=("boss", "bootstrap-pw"))
        assert me.json()["admin"] is True
    finally:
        server.stop()
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cargohold",
            "user",
            "list",
            "--json",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert '"name": "boss"' in listed.stdout


def test_short_bootstrap_password_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", "serve", "--data-dir", str(tmp_path / "d")],
        env={
            "PATH": "/usr/bin:/bin",
            "CARGOHOLD_ADMIN_USER": "boss",
            "CARGOHOLD_ADMIN_PASSWORD": "short",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "admin_password" in result.stderr


def test_invalid_names_are_name_invalid_under_access_control(tmp_path: Path) -> None:
    env = {"CARGOHOLD_ADMIN_USER": "boss", "CARGOHOLD_ADMIN_PASSWORD": "bootstrap-pw"}
    server = LiveRegistry(tmp_path / "data", env)
    try:
        for path in (
            "/v2/Upper/app/tags/list",
            "/v2/a/../b/tags/list",
            f"/v2/{'x' * 300}/tags/list",
            "/v2/a/%2e%2e/b/manifests/latest",
        ):
            # http.client sends the path as written; httpx would normalise the dots away.
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = json.loads(resp.read())
            conn.close()
            assert resp.status == 400, (path, resp.status, body)
            assert body["errors"][0]["code"] == "NAME_INVALID"
    finally:
        server.stop()


def test_readyz_reports_a_broken_blob_store(tmp_path: Path) -> None:
    # One worker: a second one still starting up would create the folder again.
    server = LiveRegistry(tmp_path / "data", {"CARGOHOLD_TEST_WORKERS": "1"})
    try:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        (tmp_path / "data" / "uploads").rename(tmp_path / "moved-away")
        # A file in its place: the background process, whose start on a slow machine may
        # come after this, would otherwise create the folder again (CI saw 200).
        (tmp_path / "data" / "uploads").write_bytes(b"not a folder")
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # alive, not ready
    finally:
        server.stop()

"""`cargohold gc` from a shell, and the schedule that runs it while serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.api.oci import manifest_path, push_image
from tests.conftest import LiveRegistry

from cargohold.config import Settings
from cargohold.stores import open_stores


def cargohold(data_dir: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def garbage(
    server: LiveRegistry, auth: tuple[str, str] | None = None
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Two images pushed; the second deleted. Its own blobs are garbage, the first's not."""
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as http:
        kept = push_image(http, "team/app", "keep")
        gone = push_image(http, "team/app", "gone")
        assert http.delete(manifest_path("team/app", gone.digest)).status_code == 202
    return kept.blobs, {d: b for d, b in gone.blobs.items() if d not in kept.blobs}


def test_gc_dry_run_then_real_run_with_a_summary(tmp_path: Path) -> None:
    server = LiveRegistry(tmp_path / "data")
    try:
        kept, unique = garbage(server)
        dry = cargohold(tmp_path / "data", "gc", "--dry-run", "--grace-hours", "0", "--json")
        assert dry.returncode == 0, dry.stderr
        real = cargohold(tmp_path / "data", "gc", "--grace-hours", "0")
        assert real.returncode == 0, real.stderr
        again = cargohold(tmp_path / "data", "gc", "--grace-hours", "0", "--json")
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for digest in unique:
                assert http.get(f"/v2/team/app/blobs/{digest}").status_code == 404
            for digest, data in kept.items():
                assert http.get(f"/v2/team/app/blobs/{digest}").content == data
    finally:
        server.stop()
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and report["blobs_deleted"] == len(unique)
    assert report["bytes_freed"] == sum(len(b) for b in unique.values())
    assert "blobs deleted" in real.stdout and f"{report['bytes_freed']:,}" in real.stdout
    assert json.loads(again.stdout)["blobs_deleted"] == 0


def test_a_second_collection_at_once_is_refused(tmp_path: Path) -> None:
    assert cargohold(tmp_path / "data", "gc").returncode == 0  # creates the store
    stores = open_stores(Settings(data_dir=tmp_path / "data"))
    try:
        with stores.meta.gc_exclusive() as alone:
            assert alone
            busy = cargohold(tmp_path / "data", "gc")
    finally:
        stores.close()
    assert busy.returncode == 3
    assert "another garbage collection is running" in busy.stderr


def test_scheduled_collection_runs_while_serving(tmp_path: Path) -> None:
    schedule = {"CARGOHOLD_GC_INTERVAL_MINUTES": "0.02", "CARGOHOLD_GC_GRACE_HOURS": "0"}
    server = LiveRegistry(tmp_path / "data", schedule)
    try:
        _, unique = garbage(server)
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while time.monotonic() < deadline:
                statuses = {http.head(f"/v2/team/app/blobs/{d}").status_code for d in unique}
                # The run is recorded when it ends, moments after its blobs went.
                metrics = http.get("/metrics").text
                if statuses == {404} and "cargohold_gc_last_run_timestamp_seconds" in metrics:
                    break
                time.sleep(0.5)
            assert statuses == {404}, "the schedule never collected the deleted image's blobs"
            assert "cargohold_gc_last_run_timestamp_seconds" in metrics, "no run was recorded"
    finally:
        server.stop()
    stores = open_stores(Settings(data_dir=tmp_path / "data"))
    try:
        assert stores.meta.gc_runs(1)[0]["trigger"] == "schedule"
    finally:
        stores.close()


def remote_gc(*args: str, password: str | None = None, cwd: Path) -> subprocess.CompletedProcess:
    """`cargohold gc --server ...` from a folder with no registry data in it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOHOLD_")}
    if password is not None:
        env["CARGOHOLD_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "cargohold", "gc", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def test_gc_asks_a_running_server_to_collect(tmp_path: Path) -> None:
    password = f"pw-{os.urandom(6).hex()}"
    admin = {"CARGOHOLD_ADMIN_USER": "root", "CARGOHOLD_ADMIN_PASSWORD": password}
    server = LiveRegistry(tmp_path / "data", admin)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        kept, unique = garbage(server, ("root", password))
        login = ("--server", server.url, "--username", "root")
        dry = remote_gc(
            *login, "--dry-run", "--grace-hours", "0", "--json", password=password, cwd=elsewhere
        )
        assert dry.returncode == 0, dry.stderr
        real = remote_gc(*login, "--grace-hours", "0", password=password, cwd=elsewhere)
        assert real.returncode == 0, real.stderr
        with httpx.Client(base_url=server.url, auth=("root", password), timeout=30) as http:
            for digest in unique:
                assert http.get(f"/v2/team/app/blobs/{digest}").status_code == 404
            for digest, data in kept.items():
                assert http.get(f"/v2/team/app/blobs/{digest}").content == data
            runs = http.get("/api/v1/gc/runs").json()["runs"]
        wrong = remote_gc(*login, password="not-it", cwd=elsewhere)
        nobody = remote_gc("--server", server.url, password=password, cwd=elsewhere)
        no_password = remote_gc(*login, cwd=elsewhere)
        stores = open_stores(Settings(data_dir=tmp_path / "data"))
        try:
            with stores.meta.gc_exclusive() as alone:
                assert alone
                busy = remote_gc(*login, password=password, cwd=elsewhere)
        finally:
            stores.close()
    finally:
        server.stop()
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and report["blobs_deleted"] == len(unique)
    assert "blobs deleted" in real.stdout and f"{report['bytes_freed']:,}" in real.stdout
    assert [r["trigger"] for r in runs[:2]] == ["api", "api"]
    assert not list(elsewhere.iterdir())  # the command opened no stores where it ran
    assert wrong.returncode == 1 and "CARGOHOLD_PASSWORD" in wrong.stderr
    assert nobody.returncode == 2 and "--username" in nobody.stderr
    assert no_password.returncode == 1 and "set CARGOHOLD_PASSWORD" in no_password.stderr
    assert busy.returncode == 3 and "another garbage collection is running" in busy.stderr
    gone = remote_gc(*login, password=password, cwd=elsewhere)
    assert gone.returncode == 1 and "is the server running there?" in gone.stderr

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


def garbage(server: LiveRegistry) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Two images pushed; the second deleted. Its own blobs are garbage, the first's not."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
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
                if statuses == {404}:
                    break
                time.sleep(0.5)
            assert statuses == {404}, "the schedule never collected the deleted image's blobs"
            metrics = http.get("/metrics").text
    finally:
        server.stop()
    assert "cargohold_gc_last_run_timestamp_seconds" in metrics
    stores = open_stores(Settings(data_dir=tmp_path / "data"))
    try:
        assert stores.meta.gc_runs(1)[0]["trigger"] == "schedule"
    finally:
        stores.close()

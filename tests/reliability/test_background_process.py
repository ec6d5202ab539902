"""`cargohold serve` runs its background work (scanner, webhooks, replication, schedule)
in one child process: at a lower CPU priority, in the server's process group, restarted
when it dies, gone when the server stops, and gone when the server is SIGKILLed alone."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import signal
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from tests.api.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    encode,
    put_manifest,
    upload_blob,
)
from tests.conftest import LiveRegistry, add_user

from cargohold.background import NICENESS

ADMIN = ("admin", "background-admin-pw")
SCANNING = {
    "CARGOHOLD_SCAN_WORKERS": "1",
    "CARGOHOLD_SCAN_POLL_SECONDS": "0.2",
    "CARGOHOLD_SCAN_QUIET_SECONDS": "0",
}
T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 30.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(p) for p in text.split()]
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def background_pids(server_pid: int) -> list[int]:
    return [
        p for p in children(server_pid) if "cargohold.background_process" in cmdline(p) and alive(p)
    ]


def stat_fields(pid: int) -> list[str]:
    # fields after the command name: [0] is field 3 (state) of proc(5)
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tar_gz_layer() -> tuple[bytes, str]:
    """A gzipped tar with one unique file, and its diff ID."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        body = uuid.uuid4().hex.encode()
        info = tarfile.TarInfo("etc/unique")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    data = raw.getvalue()
    return gzip.compress(data, mtime=0), "sha256:" + hashlib.sha256(data).hexdigest()


def push_scannable_image(client: httpx.Client, repo: str, tag: str) -> str:
    layer, diff_id = tar_gz_layer()
    config = encode(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    )
    upload_blob(client, repo, layer)
    upload_blob(client, repo, config)
    manifest = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )
    put_manifest(client, repo, tag, manifest, OCI_MANIFEST)
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def scanned(client: httpx.Client, repo: str, digest: str) -> bool:
    response = client.get(f"/api/v1/repositories/{repo}/scans/{digest}")
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveRegistry]:
    data_dir = tmp_path / "data"
    add_user(data_dir, *ADMIN, admin=True)
    registry = LiveRegistry(data_dir, SCANNING)
    try:
        yield registry
    finally:
        # the whole group: a test may have killed the supervisor alone, leaving its workers
        registry.kill()


def test_background_work_runs_in_one_nice_child_that_restarts_and_scans(
    server: LiveRegistry,
) -> None:
    first = wait_for(lambda: background_pids(server.process.pid), what="the background process")
    assert len(first) == 1
    fields = stat_fields(first[0])
    assert int(fields[2]) == server.process.pid  # pgrp: the server's process group
    assert int(fields[16]) == NICENESS  # nice, for every thread it starts

    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30) as client:
        digest = push_scannable_image(client, "team/app", "1.0")
        wait_for(lambda: scanned(client, "team/app", digest), what="the first scan")

        os.kill(first[0], signal.SIGKILL)
        second = wait_for(
            lambda: [p for p in background_pids(server.process.pid) if p != first[0]],
            what="a restarted background process",
        )
        assert len(second) == 1
        digest = push_scannable_image(client, "team/app", "2.0")
        wait_for(lambda: scanned(client, "team/app", digest), what="a scan after the restart")

        # SIGTERM (what the supervisor sends at shutdown) ends it promptly, however often
        # it comes; each time a new one takes over
        current = second[0]
        for _ in range(3):
            os.kill(current, signal.SIGTERM)
            wait_for(lambda pid=current: not alive(pid), timeout=8, what="exit on SIGTERM")
            (current,) = wait_for(
                lambda pid=current: [p for p in background_pids(server.process.pid) if p != pid],
                what="the next background process",
            )

    server.stop()
    wait_for(lambda: not alive(current), timeout=15, what="the background process to stop")


def test_a_killed_supervisor_takes_the_background_process_with_it(
    server: LiveRegistry,
) -> None:
    (child,) = wait_for(lambda: background_pids(server.process.pid), what="the background process")
    os.kill(server.process.pid, signal.SIGKILL)  # the supervisor alone, not its group
    server.process.wait()
    # it must not go on holding the database (or scanning) with no server around it
    wait_for(lambda: not alive(child), timeout=15, what="the orphaned background process to exit")

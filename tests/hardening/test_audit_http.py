"""Requests on /v2 and /token reach the audit log: pushes, pulls, deletions, logins."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.conftest import LiveRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
AUTH = ("boss", "audit-password")


def audit(data_dir: Path, *filters: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cargohold",
            "audit",
            "--json",
            "--data-dir",
            str(data_dir),
            *filters,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def wait_for(data_dir: Path, count: int, *filters: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10  # events are written in batches, twice a second
    while True:
        events = audit(data_dir, *filters)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.3)


def test_v2_and_token_events_are_audited(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"CARGOHOLD_ADMIN_USER": AUTH[0], "CARGOHOLD_ADMIN_PASSWORD": AUTH[1]}
    server = LiveRegistry(data_dir, env)
    try:
        config = b"{}"
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        url = f"{server.url}/v2/boss/app"
        pushed = httpx.post(
            f"{url}/blobs/uploads/", params={"digest": digest}, content=config, auth=AUTH
        )
        assert pushed.status_code == 201
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": digest,
                    "size": 2,
                },
                "layers": [],
            }
        ).encode()
        put = httpx.put(
            f"{url}/manifests/v1", content=body, auth=AUTH, headers={"Content-Type": OCI_MANIFEST}
        )
        manifest_digest = put.headers["docker-content-digest"]
        assert httpx.get(f"{url}/manifests/v1", auth=AUTH).status_code == 200
        assert httpx.delete(f"{url}/manifests/v1", auth=AUTH).status_code == 202
        assert httpx.get(f"{server.url}/v2/", auth=("boss", "wrong")).status_code == 401
        assert httpx.get(f"{server.url}/token", auth=AUTH).status_code == 200
    finally:
        server.stop()

    events = wait_for(data_dir, 3, "--target", "boss/app")
    by_action = {event["action"]: event for event in events}
    assert set(by_action) == {"push", "pull", "delete"}
    for event in events:
        assert event["actor"] == "boss" and event["address"] == "127.0.0.1"
    assert by_action["push"]["detail"] == {"reference": "v1", "digest": manifest_digest}
    assert by_action["pull"]["detail"] == {"reference": "v1", "digest": manifest_digest}
    failed = audit(data_dir, "--action", "login_failed")
    assert [(e["actor"], e["outcome"]) for e in failed] == [("boss", "failed")]
    assert audit(data_dir, "--action", "login", "--actor", "boss")

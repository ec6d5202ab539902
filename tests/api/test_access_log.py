"""Every request leaves one structured (JSON) access-log line."""

from __future__ import annotations

import json
import time
import uuid

import httpx
from tests.conftest import LiveRegistry


def test_access_log_line_per_request(registry: LiveRegistry, client: httpx.Client) -> None:
    marker = f"logcheck{uuid.uuid4().hex[:12]}"
    resp = client.get(f"/v2/{marker}/tags/list", headers={"X-Request-ID": f"req-{marker}"})
    assert resp.status_code == 404
    assert resp.headers["x-request-id"] == f"req-{marker}"
    generated = client.get("/v2/").headers["x-request-id"]
    assert len(generated) == 32 and generated != f"req-{marker}"
    deadline = time.monotonic() + 5
    entries: list[dict[str, object]] = []
    while not entries and time.monotonic() < deadline:
        for line in registry.log_path.read_text().splitlines():
            if marker in line and line.startswith("{"):
                entries.append(json.loads(line))
        time.sleep(0.05)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["id"] == f"req-{marker}"
    assert entry["method"] == "GET"
    assert entry["path"] == f"/v2/{marker}/tags/list"
    assert entry["status"] == 404
    assert isinstance(entry["ms"], float | int) and entry["bytes"] > 0


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}

"""Webhooks against a live server and a real HTTP receiver on loopback: pushes, tag moves,
deletions and completed scans arrive signed, with the documented payload; a 500 is
retried and both status codes are in the delivery log; other namespaces' and disabled
webhooks get nothing; a crash and restart neither lose nor duplicate deliveries."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.adminapi.test_diff_api import _push
from tests.api.oci import manifest_path, push_image
from tests.conftest import LiveRegistry
from tests.scan.test_service import debian_layer

from cargohold.webhooks import verify

from .receiver import Received, Receiver

ADMIN = ("admin", "webhook-admin-pw")
SECRET = "team-hook-secret"
FAST = {
    "CARGOHOLD_WEBHOOK_POLL_SECONDS": "0.1",
    "CARGOHOLD_WEBHOOK_BACKOFF_SECONDS": "0.5",
    "CARGOHOLD_WEBHOOK_TIMEOUT_SECONDS": "3",
}
PAYLOAD_KEYS = {
    "id", "event_id", "type", "occurred_at", "namespace", "repository", "digest", "tag",
    "media_type", "actor", "data", "registry",
}  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def bootstrap(data_dir: Path) -> None:
    cli(data_dir, "db", "upgrade")
    cli(data_dir, "user", "add", ADMIN[0], "--admin", "--password-stdin", stdin=ADMIN[1])


def api(server: LiveRegistry, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{server.url}/api{path}", auth=ADMIN, timeout=30, **kwargs)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def add_hook(server: LiveRegistry, ns: str, url: str, **body: Any) -> dict[str, Any]:
    return api(  # type: ignore[no-any-return]
        server, "POST", f"/v1/namespaces/{ns}/webhooks", json={"url": url, "secret": SECRET, **body}
    )


def deliveries(server: LiveRegistry, ns: str, hook: int) -> list[dict[str, Any]]:
    return api(server, "GET", f"/v1/namespaces/{ns}/webhooks/{hook}/deliveries")["deliveries"]  # type: ignore[no-any-return]


def wait_for(check: Any, timeout: float = 30.0) -> Any:
    # Deliveries take a second or two here; the generous deadline is for a loaded CI
    # machine, where one run of this test took 71 s.
    deadline = time.monotonic() + 3 * timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def delivered(received: list[Received]) -> list[dict[str, Any]]:
    """The payloads the receiver accepted (it answered 200), checked for their signature."""
    accepted = []
    for request in received:
        assert verify(SECRET, request.body, request.headers["x-cargohold-signature-256"])
        assert request.headers["content-type"] == "application/json"
        body = request.json
        assert set(body) == PAYLOAD_KEYS
        assert request.headers["x-cargohold-event"] == body["type"]
        assert request.headers["x-cargohold-delivery"] == str(body["id"])
        accepted.append(body)
    return accepted


def test_events_reach_the_namespaces_webhooks_signed_and_retried(
    tmp_path: Path, receiver: Receiver
) -> None:
    data_dir = tmp_path / "data"
    bootstrap(data_dir)
    scanning = {"CARGOHOLD_SCAN_WORKERS": "1", "CARGOHOLD_SCAN_POLL_SECONDS": "0.2"}
    server = LiveRegistry(data_dir, {**FAST, **scanning})
    try:
        for org in ("team", "other"):
            api(server, "POST", "/v1/orgs", json={"name": org})
        team = add_hook(server, "team", receiver.url("/team"))
        add_hook(server, "other", receiver.url("/other"))
        add_hook(server, "team", receiver.url("/disabled"), enabled=False)
        receiver.statuses = [500]  # the first delivery fails once

        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30) as http:
            first = push_image(http, "team/app", "1.0")
            second = push_image(http, "team/app", "1.0")  # 1.0 moves
            deleted = http.delete(manifest_path("team/app", second.digest))
            assert deleted.status_code == 202, deleted.text
            scanned = _push(http, "team/scanned", "v1", [debian_layer().tar()])

        def team_payloads() -> list[dict[str, Any]]:
            return delivered(receiver.on("/team"))

        expected = {
            ("push", first.digest, "1.0"),
            ("tag_created", first.digest, "1.0"),
            ("push", second.digest, "1.0"),
            ("tag_moved", second.digest, "1.0"),
            ("delete", second.digest, None),
            ("scan_completed", scanned, None),
        }
        wait_for(
            lambda: expected <= {(p["type"], p["digest"], p["tag"]) for p in team_payloads()},
            60,
        )
        payloads = team_payloads()
        by_type = {p["type"]: p for p in payloads}
        push = next(p for p in payloads if p["type"] == "push" and p["digest"] == first.digest)
        assert push["namespace"] == "team" and push["repository"] == "team/app"
        assert push["actor"] == "admin" and push["registry"] == f"127.0.0.1:{server.port}"
        assert push["media_type"] == "application/vnd.oci.image.manifest.v1+json"
        assert push["data"]["tags"] == ["1.0"] and push["data"]["size"] > 0
        assert by_type["tag_moved"]["data"]["old_digest"] == first.digest
        assert by_type["delete"]["data"] == {"target": "manifest", "tags": ["1.0"], "via": "delete"}
        scan = next(p for p in payloads if p["type"] == "scan_completed" and p["digest"] == scanned)
        assert scan["repository"] == "team/scanned" and scan["actor"] == "scanner"
        assert "severity_counts" in scan["data"] and scan["data"]["status"]

        # The first request got a 500, and its retry a 200: both in the delivery log.
        log = wait_for(
            lambda: (
                (found := deliveries(server, "team", team["id"]))
                and all(d["state"] == "delivered" for d in found)
                and found
            )
        )
        retried = [d for d in log if [h["status_code"] for h in d["history"]] == [500, 200]]
        assert len(retried) == 1 and retried[0]["state"] == "delivered"
        assert retried[0]["attempts"] == 2
        assert all(d["state"] == "delivered" for d in log)
        # Each event exactly once per webhook.
        assert len({d["event_id"] for d in log}) == len(log)

        # The test-delivery API: a ping, answered now.
        ping = api(server, "POST", f"/v1/namespaces/team/webhooks/{team['id']}/test")
        assert ping["state"] == "delivered" and ping["last_status_code"] == 200
        assert receiver.on("/team")[-1].json["type"] == "ping"

        time.sleep(1.0)  # time enough to get anything they were (wrongly) sent
        assert receiver.on("/other") == []
        assert receiver.on("/disabled") == []
    finally:
        server.stop()


def test_a_crash_neither_loses_nor_duplicates_deliveries(
    tmp_path: Path, receiver: Receiver
) -> None:
    data_dir = tmp_path / "data"
    bootstrap(data_dir)
    receiver.statuses = [500] * 1000  # refuse everything until the restart
    first = LiveRegistry(data_dir, {**FAST, "CARGOHOLD_WEBHOOK_BACKOFF_SECONDS": "3"})
    try:
        api(first, "POST", "/v1/orgs", json={"name": "team"})
        hook = add_hook(first, "team", receiver.url("/team"), events=["push", "tag_created"])
        with httpx.Client(base_url=first.url, auth=ADMIN, timeout=30) as http:
            one = push_image(http, "team/app", "1.0")
        wait_for(
            lambda: (
                [d["attempts"] for d in deliveries(first, "team", hook["id"])] == [1, 1]
                and all(d["state"] == "queued" for d in deliveries(first, "team", hook["id"]))
            )
        )
    finally:
        first.kill()  # SIGKILL with two deliveries queued for a retry

    # Events recorded while no webhook worker runs are dispatched later.
    quiet = LiveRegistry(data_dir, {**FAST, "CARGOHOLD_WEBHOOK_WORKERS": "0"})
    try:
        with httpx.Client(base_url=quiet.url, auth=ADMIN, timeout=30) as http:
            two = push_image(http, "team/app", "2.0")
    finally:
        quiet.kill()

    receiver.statuses = []
    server = LiveRegistry(data_dir, FAST)
    try:
        expected = {
            ("push", one.digest),
            ("tag_created", one.digest),
            ("push", two.digest),
            ("tag_created", two.digest),
        }

        def accepted() -> list[tuple[str, str]]:
            with receiver.lock:
                seen = list(receiver.requests)
            refused = 2  # the first server's attempts
            return [(r.json["type"], r.json["digest"]) for r in seen[refused:]]

        wait_for(lambda: expected <= set(accepted()), 40)
        time.sleep(4.0)  # a duplicate would have been sent by now (retry after 3 s)
        assert Counter(accepted()) == Counter(expected)  # each exactly once
        log = deliveries(server, "team", hook["id"])
        assert len(log) == 4 and all(d["state"] == "delivered" for d in log)
        codes = sorted([h["status_code"] for h in d["history"]] for d in log)
        assert codes == [[200], [200], [500, 200], [500, 200]]
    finally:
        server.stop()

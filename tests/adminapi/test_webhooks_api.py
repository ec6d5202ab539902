"""/v1/namespaces/{ns}/webhooks: permissions, validation, secrets never echoed, the test
delivery and redelivery against a real receiver on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from tests.webhooks.receiver import Receiver

from cargohold.webhooks import verify

from .conftest import Api, expect
from .test_tags_api import crew


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def hooks(ns: str, suffix: str = "") -> str:
    return f"/v1/namespaces/{ns}/webhooks{suffix}"


def test_admins_manage_readers_read_outsiders_see_nothing(api: Api, receiver: Receiver) -> None:
    team = crew(api)
    body = {"url": receiver.url(), "secret": "a-long-secret", "events": ["delete", "push"]}
    expect(api.call("POST", hooks(team.org), team.writer, json=body), 403, "DENIED")
    expect(api.call("POST", hooks(team.org), team.outsider, json=body), 403, "DENIED")
    expect(api.call("POST", hooks(team.org), None, json=body), 401)
    made = expect(api.call("POST", hooks(team.org), team.admin, json=body), 201)
    assert made["events"] == ["push", "delete"]  # documentation order
    assert made["secret"] is None and made["created_by"] == team.admin[0]
    path = hooks(team.org, f"/{made['id']}")

    listed = expect(api.call("GET", hooks(team.org), team.reader), 200)["webhooks"]
    assert [h["id"] for h in listed] == [made["id"]]
    assert "a-long-secret" not in api.call("GET", path, team.reader).text
    assert "secret" not in listed[0]
    expect(api.call("GET", hooks(team.org), team.outsider), 404)  # private org: not there
    expect(api.call("PATCH", path, team.reader, json={"enabled": False}), 403, "DENIED")
    expect(api.call("DELETE", path, team.writer), 403, "DENIED")
    expect(api.call("POST", path + "/test", team.reader), 403, "DENIED")

    changed = expect(api.call("PATCH", path, team.admin, json={"enabled": False}), 200)
    assert changed["enabled"] is False and changed["events"] == ["push", "delete"]
    deadline = time.monotonic() + 30  # the audit log is written in the background
    while True:
        audit = expect(api.call("GET", "/v1/audit", api.admin, params={"target": team.org}), 200)
        if {"webhook_add", "webhook_update"} <= {e["action"] for e in audit}:
            break
        assert time.monotonic() < deadline, audit
        time.sleep(0.1)
    expect(api.call("DELETE", path, team.admin), 204)
    expect(api.call("GET", path, team.reader), 404)


def test_validation(api: Api) -> None:
    team = crew(api)
    for bad in (
        {"url": "ftp://example.test/hook"},
        {"url": "file:///etc/passwd"},
        {"url": "http://user:pw@example.test/"},
        {"url": "/relative"},
        {"url": "http://example.test/", "events": ["nope"]},
        {"url": "http://example.test/", "events": []},
        {"url": "http://example.test/", "secret": "short"},
        {"url": "http://example.test/", "unknown": 1},
    ):
        expect(api.call("POST", hooks(team.org), team.admin, json=bad), 400)
    made = expect(
        api.call("POST", hooks(team.org), team.admin, json={"url": "https://ci.example/hook"}), 201
    )
    assert made["events"] == [
        "push",
        "tag_created",
        "tag_moved",
        "delete",
        "scan_completed",
        "quota_exceeded",
        "replication_finished",
    ]
    assert len(made["secret"]) >= 32  # generated, shown once
    again = expect(api.call("GET", hooks(team.org, f"/{made['id']}"), team.admin), 200)
    assert "secret" not in again
    path = hooks(team.org, f"/{made['id']}")
    expect(api.call("PATCH", path, team.admin, json={"url": "gopher://x"}), 400)
    expect(api.call("GET", hooks(team.org, "/999999"), team.admin), 404)
    expect(api.call("GET", hooks("no-such-ns"), team.admin), 404)
    expect(api.call("GET", path + "/deliveries", team.admin, params={"state": "x"}), 400)


def test_test_delivery_and_redelivery(api: Api, receiver: Receiver) -> None:
    team = crew(api)
    body = {"url": receiver.url("/ci"), "secret": "s3cr3t-value"}
    made = expect(api.call("POST", hooks(team.org), team.admin, json=body), 201)
    path = hooks(team.org, f"/{made['id']}")

    receiver.statuses = [503]
    failed = expect(api.call("POST", path + "/test", team.admin), 200)
    assert failed["state"] == "failed" and failed["last_status_code"] == 503
    assert failed["event_type"] == "ping" and failed["response_excerpt"] == "receiver says no"

    ok = expect(api.call("POST", path + "/test", team.admin), 200)
    assert ok["state"] == "delivered" and ok["last_status_code"] == 200
    assert ok["history"][0]["status_code"] == 200 and ok["duration_ms"] is not None
    sent = receiver.on("/ci")[-1]
    assert sent.headers["x-cargohold-event"] == "ping"
    assert sent.headers["x-cargohold-delivery"] == str(ok["id"])
    assert verify("s3cr3t-value", sent.body, sent.headers["x-cargohold-signature-256"])
    assert sent.json["namespace"] == team.org and sent.json["type"] == "ping"
    assert sent.json["actor"] == team.admin[0]

    again = expect(
        api.call("POST", path + f"/deliveries/{failed['id']}/redeliver", team.admin), 201
    )
    assert again["id"] != failed["id"] and again["event_id"] == failed["event_id"]
    assert again["state"] == "delivered"
    log = expect(api.call("GET", path + "/deliveries", team.reader), 200)["deliveries"]
    assert [d["id"] for d in log] == [again["id"], ok["id"], failed["id"]]
    assert [d["last_status_code"] for d in log] == [200, 200, 503]
    expect(api.call("POST", path + "/deliveries/999999/redeliver", team.admin), 404)

"""Admin API changes reach the audit log; failed logins pause as they do on /v2."""

from __future__ import annotations

import time

from cargohold.auth.audit import AuditEvent, AuditStore

from .conftest import Api, expect


def events(api: Api, **query: str) -> list[AuditEvent]:
    """Events matching the query, waiting for the batched writer (about half a second)."""
    store = AuditStore(api.store.engine)
    deadline = time.monotonic() + 5
    while True:
        found = store.query(**query)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_changes_are_audited_with_actor_target_and_address(api: Api) -> None:
    org = api.add_org()
    alice = api.add_user("alice")
    api.grant(org, "writer", alice[0])
    [added] = events(api, actor="root", action="org_add", target=org)
    assert added.detail == {"public": False}
    assert added.address == "127.0.0.1"
    [granted] = events(api, action="grant", target=org)
    assert granted.actor == "root"
    assert granted.detail == {"role": "writer", "user": alice[0]}
    token = {"name": "ci"}
    expect(api.call("POST", f"/v1/users/{alice[0]}/tokens", alice, json=token), 201)
    [made] = events(api, actor=alice[0], action="token_add")
    assert made.target == alice[0]
    assert made.detail == {"token": "ci"}  # never the token itself


def test_failed_api_logins_are_audited_and_pause_the_account(api: Api) -> None:
    name, password = api.add_user("target")
    for _ in range(10):  # the default limit
        expect(api.call("GET", "/v1/users/me", (name, "wrong-password")), 401, "UNAUTHORIZED")
    blocked = api.call("GET", "/v1/users/me", (name, password))
    expect(blocked, 429, "TOOMANYREQUESTS")
    assert int(blocked.headers["retry-after"]) > 0
    failures = events(api, actor=name, action="login_failed")
    assert failures and all(e.outcome == "failed" for e in failures)
    assert failures[0].target == "/api/v1/users/me"

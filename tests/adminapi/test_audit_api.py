"""GET /api/v1/audit: filters, and who may read what."""

from __future__ import annotations

import time
from typing import Any

from .conftest import Api, expect


def read(api: Api, auth: tuple[str, str], **query: str) -> list[dict[str, Any]]:
    """Wait for the batched writer, then return what the endpoint lists."""
    deadline = time.monotonic() + 5
    while True:
        found = expect(api.call("GET", "/v1/audit", auth, params=query), 200)
        if found or time.monotonic() > deadline:
            return found  # type: ignore[no-any-return]
        time.sleep(0.1)


def test_admin_reads_filtered_events(api: Api) -> None:
    org = api.add_org()
    alice = api.add_user("alice")
    api.grant(org, "writer", alice[0])
    granted = read(api, api.admin, action="grant", target=org)
    assert [e["detail"] for e in granted] == [{"role": "writer", "user": alice[0]}]
    assert granted[0]["actor"] == api.admin[0] and granted[0]["outcome"] == "ok"
    assert read(api, api.admin, action="grant", target=org, since="2999-01-01T00:00:00") == []
    assert len(read(api, api.admin, limit="1")) == 1


def test_namespace_admins_read_their_namespace_only(api: Api) -> None:
    org, other = api.add_org(), api.add_org()
    boss = api.add_user("boss")
    api.grant(org, "admin", boss[0])
    api.grant(org, "reader", api.add_user("someone")[0])
    assert read(api, boss, target=org)
    expect(api.call("GET", "/v1/audit", boss), 403, "DENIED")
    expect(api.call("GET", "/v1/audit", boss, params={"target": other}), 403, "DENIED")
    plain = api.add_user("plain")
    expect(api.call("GET", "/v1/audit", plain, params={"target": org}), 403, "DENIED")


def test_bad_filters_are_400(api: Api) -> None:
    expect(api.call("GET", "/v1/audit", api.admin, params={"limit": "0"}), 400)
    expect(api.call("GET", "/v1/audit", api.admin, params={"since": "yesterday"}), 400)

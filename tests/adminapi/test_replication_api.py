"""/api/v1/replication: endpoints (write-only secrets), rules, runs, executions; admins only."""

from __future__ import annotations

from sqlalchemy import select

from cargohold.storage.meta import models as m

from .conftest import Api, expect, unique

BASE = "/v1/replication"


def test_endpoints_keep_secrets_write_only_and_encrypted(api: Api) -> None:
    name = unique("ep")
    body = {"name": name, "url": "https://dr.example/", "username": "bot", "secret": "hunter22"}
    created = expect(api.call("POST", f"{BASE}/endpoints", api.admin, json=body), 201)
    assert created["url"] == "https://dr.example" and created["has_secret"] is True
    assert "secret" not in created and "hunter22" not in str(created)
    listed = expect(api.call("GET", f"{BASE}/endpoints", api.admin), 200)["endpoints"]
    assert name in [e["name"] for e in listed] and "hunter22" not in str(listed)
    with api.store.engine.connect() as conn:
        sealed = conn.execute(
            select(m.replication_endpoints.c.secret_encrypted).where(
                m.replication_endpoints.c.name == name
            )
        ).scalar_one()
    assert sealed and "hunter22" not in sealed

    expect(api.call("POST", f"{BASE}/endpoints", api.admin, json=body), 409, "CONFLICT")
    bad = {**body, "name": unique("ep"), "url": "ftp://x"}
    expect(api.call("POST", f"{BASE}/endpoints", api.admin, json=bad), 400, "INVALID_REQUEST")
    cleared = expect(
        api.call("PATCH", f"{BASE}/endpoints/{name}", api.admin, json={"secret": None}), 200
    )
    assert cleared["has_secret"] is False
    expect(api.call("GET", f"{BASE}/endpoints/nope", api.admin), 404, "NAME_UNKNOWN")
    expect(api.call("DELETE", f"{BASE}/endpoints/{name}", api.admin), 204)


def test_rules_runs_and_executions(api: Api) -> None:
    endpoint = unique("ep")
    expect(
        api.call(
            "POST",
            f"{BASE}/endpoints",
            api.admin,
            json={"name": endpoint, "url": "http://127.0.0.1:9"},
        ),
        201,
    )
    rule_body = {
        "name": unique("rule"),
        "endpoint": endpoint,
        "direction": "push",
        "source": "team/*",
        "tags": "v*",
        "dest_prefix": "prod",
        "trigger": "event",
        "replicate_deletes": True,
    }
    rule = expect(api.call("POST", f"{BASE}/rules", api.admin, json=rule_body), 201)
    assert (rule["direction"], rule["trigger"], rule["dest_prefix"]) == ("push", "event", "prod")
    expect(api.call("POST", f"{BASE}/rules", api.admin, json=rule_body), 409, "CONFLICT")
    for wrong in (
        {"direction": "pull", "trigger": "event"},  # pull rules cannot run on events
        {"trigger": "schedule"},  # no interval
        {"endpoint": "missing"},
        {"source": "Team/*"},
    ):
        body = {**rule_body, "name": unique("rule"), **wrong}
        expect(api.call("POST", f"{BASE}/rules", api.admin, json=body), 400, "INVALID_REQUEST")
    expect(api.call("POST", f"{BASE}/rules", api.admin, json={**rule_body, "x": 1}), 400)

    rid = rule["id"]
    changed = expect(
        api.call(
            "PATCH",
            f"{BASE}/rules/{rid}",
            api.admin,
            json={"trigger": "schedule", "interval_minutes": 30, "enabled": False},
        ),
        200,
    )
    assert (changed["trigger"], changed["interval_minutes"], changed["enabled"]) == (
        "schedule",
        30,
        False,
    )
    assert rid in [
        r["id"] for r in expect(api.call("GET", f"{BASE}/rules", api.admin), 200)["rules"]
    ]

    queued = expect(api.call("POST", f"{BASE}/rules/{rid}/run", api.admin), 202)
    assert (queued["state"], queued["trigger"], queued["rule_id"]) == ("queued", "manual", rid)
    executions = expect(api.call("GET", f"{BASE}/rules/{rid}/executions", api.admin), 200)
    assert [x["id"] for x in executions["executions"]] == [queued["id"]]
    detail = expect(api.call("GET", f"{BASE}/executions/{queued['id']}", api.admin), 200)
    assert detail["tasks"] == [] and detail["images"] == 0

    # An endpoint in use stays; removing the rule takes its executions along.
    expect(api.call("DELETE", f"{BASE}/endpoints/{endpoint}", api.admin), 409, "CONFLICT")
    expect(api.call("DELETE", f"{BASE}/rules/{rid}", api.admin), 204)
    expect(api.call("GET", f"{BASE}/executions/{queued['id']}", api.admin), 404)
    expect(api.call("DELETE", f"{BASE}/endpoints/{endpoint}", api.admin), 204)


def test_only_registry_admins(api: Api) -> None:
    user = api.add_user("plain")
    for method, path in (
        ("GET", "/endpoints"),
        ("GET", "/rules"),
        ("POST", "/rules/1/run"),
        ("GET", "/executions/1"),
    ):
        expect(api.call(method, f"{BASE}{path}", user), 403, "DENIED")
    body = {"name": unique("ep"), "url": "https://x.example"}
    expect(api.call("POST", f"{BASE}/endpoints", user, json=body), 403, "DENIED")
    assert api.call("GET", f"{BASE}/rules").status_code == 401

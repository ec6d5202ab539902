"""/v1/namespaces/{ns}/robots and /v1/users/{name}/tokens: secrets shown once, revocation."""

from __future__ import annotations

import json

from .conftest import Api, expect


def test_namespace_admin_adds_lists_and_revokes_robots(api: Api) -> None:
    org = api.add_org()
    admin = api.add_user("nsadmin")
    api.grant(org, "admin", admin[0])
    robots = f"/v1/namespaces/{org}/robots"
    body = {
        "name": "ci",
        "actions": ["push", "pull", "push"],
        "repositories": [f"{org}/app"],
        "expires_in_days": 30,
    }
    created = expect(api.call("POST", robots, admin, json=body), 201)
    assert created["username"] == f"robot${org}+ci"
    assert created["actions"] == ["pull", "push"]
    assert created["repositories"] == [f"{org}/app"]
    assert created["expires_at"] and not created["revoked"]
    secret = created["secret"]
    assert len(secret) >= 40
    expect(api.call("GET", "/v1/users/me", (created["username"], secret)), 200)
    listed = expect(api.call("GET", robots, admin), 200)
    assert [robot["username"] for robot in listed] == [f"robot${org}+ci"]
    assert "secret" not in listed[0]
    assert secret not in json.dumps(listed) and "hash" not in json.dumps(listed)
    expect(api.call("DELETE", f"{robots}/ci", admin), 204)
    # Revocation is immediate.
    expect(api.call("GET", "/v1/users/me", (created["username"], secret)), 401, "UNAUTHORIZED")
    assert expect(api.call("GET", robots, admin), 200)[0]["revoked"] is True
    expect(api.call("DELETE", f"{robots}/nope", admin), 404, "NAME_UNKNOWN")
    expect(
        api.call("POST", robots, admin, json={"name": "ci", "actions": ["pull"]}), 409, "CONFLICT"
    )


def test_robot_validation_and_denials(api: Api) -> None:
    org = api.add_org()
    writer = api.add_user("writer")
    api.grant(org, "writer", writer[0])
    robots = f"/v1/namespaces/{org}/robots"
    good = {"name": "bot", "actions": ["pull"]}
    expect(api.call("GET", robots, writer), 403, "DENIED")
    expect(api.call("POST", robots, writer, json=good), 403, "DENIED")
    expect(api.call("DELETE", f"{robots}/bot", writer), 403, "DENIED")
    cases = [
        ({"name": "bot", "actions": []}, "INVALID_REQUEST"),
        ({"name": "bot", "actions": ["fly"]}, "INVALID_REQUEST"),
        ({"name": "bot", "actions": ["pull"], "expires_in_days": 0}, "INVALID_REQUEST"),
        ({"name": "Bot", "actions": ["pull"]}, "NAME_INVALID"),
        ({"name": "bot", "actions": ["pull"], "repositories": ["other/app"]}, "NAME_INVALID"),
    ]
    for body, code in cases:
        expect(api.call("POST", robots, api.admin, json=body), 400, code)
    expect(api.call("GET", "/v1/namespaces/no-such-org/robots", api.admin), 404, "NAME_UNKNOWN")


def test_user_manages_their_own_tokens(api: Api) -> None:
    alice = api.add_user("alice")
    tokens = f"/v1/users/{alice[0]}/tokens"
    created = expect(api.call("POST", tokens, alice, json={"name": "laptop"}), 201)
    assert created["name"] == "laptop" and created["expires_at"] is None
    token = created["token"]
    assert token.startswith("chp_")
    # The token works as the password, here and on /v2.
    assert expect(api.call("GET", "/v1/users/me", (alice[0], token)), 200)["name"] == alice[0]
    expiring = expect(
        api.call("POST", tokens, alice, json={"name": "ci", "expires_in_days": 7}), 201
    )
    assert expiring["expires_at"]
    listed = expect(api.call("GET", tokens, alice), 200)
    assert [t["name"] for t in listed] == ["ci", "laptop"]
    assert all(set(t) == {"name", "expires_at", "revoked", "created_at"} for t in listed)
    expect(api.call("POST", tokens, alice, json={"name": "laptop"}), 409, "CONFLICT")
    expect(api.call("DELETE", f"{tokens}/laptop", alice), 204)
    expect(api.call("GET", "/v1/users/me", (alice[0], token)), 401, "UNAUTHORIZED")
    assert [t["revoked"] for t in expect(api.call("GET", tokens, alice), 200)] == [False, True]
    expect(api.call("DELETE", f"{tokens}/nope", alice), 404, "NAME_UNKNOWN")


def test_tokens_of_others_need_a_registry_admin(api: Api) -> None:
    alice, bob = api.add_user("alice"), api.add_user("bob")
    tokens = f"/v1/users/{alice[0]}/tokens"
    expect(api.call("GET", tokens, bob), 403, "DENIED")
    expect(api.call("POST", tokens, bob, json={"name": "evil"}), 403, "DENIED")
    expect(api.call("DELETE", f"{tokens}/x", bob), 403, "DENIED")
    made = expect(api.call("POST", tokens, api.admin, json={"name": "by-admin"}), 201)
    expect(api.call("GET", "/v1/users/me", (alice[0], made["token"])), 200)
    expect(api.call("DELETE", f"{tokens}/by-admin", api.admin), 204)
    expect(api.call("GET", "/v1/users/no-such-user/tokens", api.admin), 404, "NAME_UNKNOWN")
    expect(api.call("POST", tokens, alice, json={"name": "a/b"}), 400, "NAME_INVALID")
    expect(
        api.call("POST", tokens, alice, json={"name": "t", "expires_in_days": -1}),
        400,
        "INVALID_REQUEST",
    )

"""/api/v1/namespaces/{ns}/immutable-tag-rules, and what a rule does to /v2 and the tag API."""

from __future__ import annotations

from typing import Any

import httpx
from tests.api.oci import manifest_path, push, push_image

from .conftest import Api, Auth, expect
from .test_tags_api import (
    crew,
    message,
    pulled,
    push_versions,
    retag,
    rollback,
    tags_path,
    v2,
)


def rules_path(ns: str, rule: int | None = None) -> str:
    return f"/v1/namespaces/{ns}/immutable-tag-rules" + (f"/{rule}" if rule else "")


def add_rule(api: Api, auth: Auth, ns: str, **body: Any) -> httpx.Response:
    return api.call("POST", rules_path(ns), auth, json=body)


def rules(api: Api, auth: Auth, ns: str) -> list[dict[str, Any]]:
    return expect(api.call("GET", rules_path(ns), auth), 200)["rules"]  # type: ignore[no-any-return]


def test_only_namespace_admins_add_rules(api: Api) -> None:
    team = crew(api)
    made = expect(add_rule(api, team.admin, team.org, pattern="v*"), 201)
    assert made["namespace"] == team.org and made["repository"] is None
    assert (made["pattern"], made["created_by"]) == ("v*", team.admin[0])
    assert isinstance(made["id"], int) and made["created_at"]
    for who in (team.maintainer, team.writer, team.reader, team.outsider):
        resp = add_rule(api, who, team.org, pattern="release-*")
        expect(resp, 403, "DENIED")
        assert team.org in message(resp)
    body = {"name": "ci", "actions": ["pull", "push", "delete"]}
    robot = expect(api.call("POST", f"/v1/namespaces/{team.org}/robots", api.admin, json=body), 201)
    expect(
        add_rule(api, (robot["username"], robot["secret"]), team.org, pattern="x"), 403, "DENIED"
    )
    by_root = expect(add_rule(api, api.admin, team.org, pattern="latest"), 201)
    assert [rule["id"] for rule in rules(api, team.admin, team.org)] == [made["id"], by_root["id"]]
    # Someone else's namespace: their own namespace's admin is not enough.
    expect(add_rule(api, team.admin, api.add_org(), pattern="v*"), 403, "DENIED")


def test_duplicates_conflict_and_invalid_rules_are_400(api: Api) -> None:
    team = crew(api)
    expect(add_rule(api, team.admin, team.org, pattern="v*"), 201)
    expect(add_rule(api, team.admin, team.org, pattern="v*"), 409, "CONFLICT")
    # The same pattern for one repository is a different rule.
    repo = f"{team.org}/app"
    expect(add_rule(api, team.admin, team.org, pattern="v*", repository=repo), 201)
    expect(add_rule(api, team.admin, team.org, pattern="v*", repository=repo), 409, "CONFLICT")
    for pattern in ("v/*", "bad pattern", "x" * 129):
        resp = add_rule(api, team.admin, team.org, pattern=pattern)
        expect(resp, 400, "TAG_INVALID")
        assert "pattern" in message(resp)
    expect(add_rule(api, team.admin, team.org, pattern=""), 400, "INVALID_REQUEST")
    expect(add_rule(api, team.admin, team.org), 400, "INVALID_REQUEST")
    other = f"{api.add_org()}/app"
    expect(add_rule(api, team.admin, team.org, pattern="v*", repository=other), 400, "NAME_INVALID")
    expect(add_rule(api, team.admin, team.org, pattern="v*", repository=team.org), 400)
    expect(add_rule(api, team.admin, team.org, pattern="v*", repository="Bad/Name"), 400)
    assert len(rules(api, team.admin, team.org)) == 2


def test_a_rule_freezes_matching_tags_everywhere_until_it_is_removed(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    one, two = push_versions(api, team.writer, repo, "v1", 2)
    (latest,) = push_versions(api, team.writer, repo, "latest", 1)
    rule = expect(add_rule(api, team.admin, team.org, pattern="v*"), 201)
    named = f"immutable-tag rule {rule['id']}"
    with v2(api, team.writer) as http:
        # A push that would move v1: refused, naming the rule; v1 still names two.
        resp = http.put(
            manifest_path(repo, "v1"),
            content=latest.body,
            headers={"Content-Type": latest.media_type},
        )
        expect(resp, 403, "DENIED")
        assert named in message(resp) and "'v*'" in message(resp)
        assert resp.json()["errors"][0]["detail"]["rule"] == rule["id"]
        assert http.get(manifest_path(repo, "v1")).content == two.body
        push(http, repo, two, "v1")  # the same manifest again moves nothing
        push_image(http, repo, "v2")  # a new matching tag may be created
        push_image(http, repo, "latest")  # other tags move as before
    with v2(api, team.maintainer) as http:
        resp = http.delete(manifest_path(repo, "v1"))
        expect(resp, 403, "DENIED")
        assert named in message(resp)
        expect(http.delete(manifest_path(repo, two.digest)), 403, "DENIED")  # v1 names it
    # The tag API cannot get round it either.
    for resp in (
        rollback(api, team.writer, repo, "v1"),
        rollback(api, api.admin, repo, "v1", to=one.digest),
        retag(api, team.writer, repo, "v1", "latest"),
        api.call("DELETE", tags_path(repo, "v1"), team.maintainer),
        api.call("DELETE", tags_path(repo, "v1"), api.admin),
    ):
        expect(resp, 403, "DENIED")
        assert named in message(resp)
    assert pulled(api, team.reader, repo, "v1").content == two.body
    assert [e["new_digest"] for e in _history(api, team.reader, repo, "v1")] == [
        two.digest,
        one.digest,
    ]
    # Everyone in the namespace sees the rule; removing it lets v1 move again.
    assert [r["id"] for r in rules(api, team.reader, team.org)] == [rule["id"]]
    expect(api.call("DELETE", rules_path(team.org, rule["id"]), team.admin), 204)
    assert rules(api, team.reader, team.org) == []
    with v2(api, team.writer) as http:
        push(http, repo, latest, "v1")
        assert http.get(manifest_path(repo, "v1")).content == latest.body
    expect(rollback(api, team.writer, repo, "v1"), 200)
    assert pulled(api, team.reader, repo, "v1").content == two.body


def test_a_repository_rule_protects_that_repository_only(api: Api) -> None:
    team = crew(api)
    app, other = f"{team.org}/app", f"{team.org}/other"
    push_versions(api, team.writer, app, "prod", 1)
    push_versions(api, team.writer, other, "prod", 1)
    rule = expect(add_rule(api, team.admin, team.org, pattern="prod", repository=app), 201)
    assert rule["repository"] == app
    with v2(api, team.writer) as http:
        image = push_image(http, app)
        resp = http.put(
            manifest_path(app, "prod"),
            content=image.body,
            headers={"Content-Type": image.media_type},
        )
        expect(resp, 403, "DENIED")
        assert app in message(resp)
        push_image(http, other, "prod")
        push_image(http, app, "production")  # the pattern is no glob here: exact


def test_removing_rules_needs_a_namespace_admin_and_an_existing_rule(api: Api) -> None:
    team = crew(api)
    other = crew(api)
    rule = expect(add_rule(api, team.admin, team.org, pattern="v*"), 201)
    theirs = expect(add_rule(api, other.admin, other.org, pattern="v*"), 201)
    for who in (team.maintainer, team.writer, team.reader, team.outsider, other.admin):
        expect(api.call("DELETE", rules_path(team.org, rule["id"]), who), 403, "DENIED")
    # A rule of another namespace is not reachable through this one.
    expect(api.call("DELETE", rules_path(team.org, theirs["id"]), team.admin), 404)
    assert [r["id"] for r in rules(api, other.admin, other.org)] == [theirs["id"]]
    expect(api.call("DELETE", rules_path(team.org, rule["id"]), team.admin), 204)
    expect(api.call("DELETE", rules_path(team.org, rule["id"]), team.admin), 404)
    expect(api.call("DELETE", rules_path(team.org, 2**63 - 1), team.admin), 404)
    expect(api.call("DELETE", f"{rules_path(team.org)}/first", team.admin), 400)
    expect(api.call("DELETE", rules_path(team.org, 2**64), team.admin), 400)


def test_who_sees_the_rules(api: Api) -> None:
    team = crew(api)
    expect(add_rule(api, team.admin, team.org, pattern="v*"), 201)
    for who in (team.admin, team.maintainer, team.writer, team.reader, api.admin):
        assert [r["pattern"] for r in rules(api, who, team.org)] == ["v*"]
    # A private namespace the caller has no part in does not exist for them.
    expect(api.call("GET", rules_path(team.org), team.outsider), 404, "NAME_UNKNOWN")
    expect(api.call("GET", rules_path("no-such-org"), team.outsider), 404, "NAME_UNKNOWN")
    expect(api.call("GET", rules_path("Bad!"), team.outsider), 400, "NAME_INVALID")
    # A robot of the namespace may read them (CI checks before pushing).
    body = {"name": "ci", "actions": ["pull"]}
    robot = expect(api.call("POST", f"/v1/namespaces/{team.org}/robots", api.admin, json=body), 201)
    assert len(rules(api, (robot["username"], robot["secret"]), team.org)) == 1
    # Anyone may read those of a public namespace.
    public = api.add_org(public=True)
    assert rules(api, team.outsider, public) == []


def _history(api: Api, auth: Auth, repo: str, tag: str) -> list[dict[str, Any]]:
    path = tags_path(repo, tag, "/history")
    return expect(api.call("GET", path, auth), 200)["events"]  # type: ignore[no-any-return]

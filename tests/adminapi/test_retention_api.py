"""/api/v1/namespaces/{ns}/retention-policies: permissions, validation, runs over real pushes.

Images are pushed and pulled over /v2; push times are moved into the past in the database
(nothing else can make a tag old), pulls are the audit log's own pull events.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from tests.api.oci import manifest_path, push_image

from cargohold.auth.audit import AuditStore
from cargohold.storage.meta import models as m

from .conftest import Api, Auth, expect
from .test_tags_api import crew, history, message, pulled, v2


def policies_path(ns: str, suffix: str = "") -> str:
    return f"/v1/namespaces/{ns}/retention-policies{suffix}"


def add_policy(api: Api, auth: Auth, ns: str, **body: Any) -> httpx.Response:
    return api.call("POST", policies_path(ns), auth, json=body)


def run(api: Api, auth: Auth, ns: str, dry_run: bool) -> httpx.Response:
    return api.call("POST", policies_path(ns, "/run"), auth, json={"dry_run": dry_run})


def set_pushed(api: Api, repository: str, tag: str, days_ago: float) -> None:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    with api.store.engine.begin() as conn:
        repo_id = conn.execute(
            select(m.repositories.c.id).where(m.repositories.c.name == repository)
        ).scalar_one()
        result = conn.execute(
            update(m.tags)
            .where(m.tags.c.repository_id == repo_id, m.tags.c.name == tag)
            .values(updated_at=when)
        )
        assert result.rowcount == 1


def wait_for_pull(api: Api, repository: str, reference: str) -> None:
    """Pulls reach the audit log in batches (every half second)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = AuditStore(api.store.engine).query(action="pull", target=repository)
        if any((e.detail or {}).get("reference") == reference for e in events):
            return
        time.sleep(0.1)
    raise AssertionError(f"the pull of {repository}:{reference} was not recorded")


def audit_events(api: Api, auth: Auth, ns: str, action: str) -> list[dict[str, Any]]:
    """The namespace's events of one kind, once there are some (changes made through the
    API reach the audit log in batches, later on a busy machine)."""
    deadline = time.monotonic() + 30
    while True:
        params = {"target": ns, "action": action}
        events = expect(api.call("GET", "/v1/audit", auth, params=params), 200)
        if events or time.monotonic() > deadline:
            return events  # type: ignore[no-any-return]
        time.sleep(0.1)


def removed_tags(report: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {
        repository: [(item["tag"], item["digest"]) for item in entry["removed"]]
        for repository, entry in report["repositories"].items()
    }


# -- permissions
def test_only_namespace_admins_change_and_run_policies(api: Api) -> None:
    team = crew(api)
    made = expect(add_policy(api, team.admin, team.org, tag_pattern="v*", keep_last=3), 201)
    assert (made["namespace"], made["repository"], made["tag_pattern"]) == (team.org, None, "v*")
    assert (made["keep_last"], made["keep_days"], made["created_by"]) == (3, None, team.admin[0])
    assert isinstance(made["id"], int) and made["created_at"]
    for who in (team.maintainer, team.writer, team.reader, team.outsider):
        resp = add_policy(api, who, team.org, tag_pattern="x*", keep_days=1)
        expect(resp, 403, "DENIED")
        assert team.org in message(resp)
        expect(run(api, who, team.org, dry_run=True), 403, "DENIED")
        expect(api.call("DELETE", policies_path(team.org, f"/{made['id']}"), who), 403, "DENIED")
    robot = expect(
        api.call(
            "POST",
            f"/v1/namespaces/{team.org}/robots",
            api.admin,
            json={"name": "ci", "actions": ["pull", "push", "delete"]},
        ),
        201,
    )
    robot_auth = (robot["username"], robot["secret"])
    expect(add_policy(api, robot_auth, team.org, tag_pattern="x", keep_last=1), 403, "DENIED")
    expect(run(api, robot_auth, team.org, dry_run=True), 403, "DENIED")
    # Someone else's namespace: being admin of one's own is not enough.
    other = api.add_org()
    expect(add_policy(api, team.admin, other, tag_pattern="v*", keep_last=1), 403, "DENIED")
    expect(run(api, team.admin, other, dry_run=False), 403, "DENIED")
    # Registry admins may; an unknown namespace is 404 for them.
    by_root = expect(add_policy(api, api.admin, team.org, tag_pattern="*", keep_days=30), 201)
    expect(add_policy(api, api.admin, "no-such-ns", tag_pattern="*", keep_days=1), 404)
    # Everyone who can see the namespace reads them, robots of it too.
    for who in (team.admin, team.reader, robot_auth, api.admin):
        listed = expect(api.call("GET", policies_path(team.org), who), 200)["policies"]
        assert [p["id"] for p in listed] == [made["id"], by_root["id"]]
    expect(api.call("GET", policies_path(team.org), team.outsider), 404, "NAME_UNKNOWN")
    public = api.add_org(public=True)
    assert expect(api.call("GET", policies_path(public), team.outsider), 200) == {"policies": []}


def test_removing_a_policy(api: Api) -> None:
    team = crew(api)
    made = expect(add_policy(api, team.admin, team.org, tag_pattern="v*", keep_last=3), 201)
    other = api.add_org()
    expect(api.call("DELETE", policies_path(other, f"/{made['id']}"), api.admin), 404)
    expect(api.call("DELETE", policies_path(team.org, f"/{made['id']}"), team.admin), 204)
    expect(api.call("DELETE", policies_path(team.org, f"/{made['id']}"), team.admin), 404)
    expect(api.call("DELETE", policies_path(team.org, "/0"), team.admin), 400)
    assert expect(api.call("GET", policies_path(team.org), team.admin), 200) == {"policies": []}
    events = audit_events(api, team.admin, team.org, "retention_policy_remove")
    assert events[0]["detail"] == {"policy": made["id"], "pattern": "v*"}


# -- validation
def test_invalid_policies_are_400_and_duplicates_409(api: Api) -> None:
    team = crew(api)
    ns = team.org
    invalid: list[tuple[dict[str, Any], str]] = [
        ({"tag_pattern": "v*"}, "INVALID_REQUEST"),  # neither keep_last nor keep_days
        ({"tag_pattern": "v*", "keep_last": None, "keep_days": None}, "INVALID_REQUEST"),
        ({"tag_pattern": "v*", "keep_last": -1}, "INVALID_REQUEST"),
        ({"tag_pattern": "v*", "keep_days": -1}, "INVALID_REQUEST"),
        ({"tag_pattern": "v*", "keep_last": 10**9}, "INVALID_REQUEST"),
        ({"tag_pattern": "v*", "keep_days": "7"}, "INVALID_REQUEST"),
        ({"tag_pattern": "v*", "keep_last": 1.5}, "INVALID_REQUEST"),
        ({"tag_pattern": "v*", "keep_last": True}, "INVALID_REQUEST"),
        ({"tag_pattern": "", "keep_last": 1}, "INVALID_REQUEST"),
        ({"keep_last": 1}, "INVALID_REQUEST"),
        ({"tag_pattern": "v*", "keep_last": 1, "extra": 1}, "INVALID_REQUEST"),
        ({"tag_pattern": "v/*", "keep_last": 1}, "TAG_INVALID"),
        ({"tag_pattern": "x" * 129, "keep_last": 1}, "TAG_INVALID"),
        ({"tag_pattern": "v*", "keep_last": 1, "repository": "other/app"}, "NAME_INVALID"),
        ({"tag_pattern": "v*", "keep_last": 1, "repository": ns}, "NAME_INVALID"),
        ({"tag_pattern": "v*", "keep_last": 1, "repository": f"{ns}/Bad"}, "NAME_INVALID"),
    ]
    for body, code in invalid:
        resp = api.call("POST", policies_path(ns), team.admin, json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert [e["code"] for e in resp.json()["errors"]] == [code], (body, resp.text)
    body = {"tag_pattern": "v*", "keep_last": 1}
    expect(api.call("POST", policies_path("Bad-NS"), api.admin, json=body), 400, "NAME_INVALID")
    assert expect(api.call("GET", policies_path(ns), team.admin), 200) == {"policies": []}

    expect(add_policy(api, team.admin, ns, tag_pattern="v*", keep_last=1), 201)
    resp = add_policy(api, team.admin, ns, tag_pattern="v*", keep_days=5)
    expect(resp, 409, "CONFLICT")
    assert "exists already" in message(resp)
    # The same pattern for one repository is another policy.
    repo_policy = add_policy(
        api, team.admin, ns, tag_pattern="v*", keep_last=0, repository=f"{ns}/app"
    )
    assert expect(repo_policy, 201)["repository"] == f"{ns}/app"
    expect(
        add_policy(api, team.admin, ns, tag_pattern="v*", keep_last=2, repository=f"{ns}/app"),
        409,
        "CONFLICT",
    )
    expect(api.call("POST", policies_path(ns, "/run"), team.admin, json={"dry": 1}), 400)


# -- running
def test_dry_run_lists_exactly_what_the_run_removes(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    with v2(api, team.writer) as http:
        images = {tag: push_image(http, repo, tag) for tag in ("v1", "v2", "v3", "v4", "dev")}
        latest = push_image(http, repo, "latest")
        web = push_image(http, f"{team.org}/web", "v1")
    for tag, days in (("v1", 100), ("v2", 90), ("v3", 80), ("v4", 1), ("dev", 200)):
        set_pushed(api, repo, tag, days)
    set_pushed(api, f"{team.org}/web", "v1", 300)
    assert pulled(api, team.reader, repo, "v2").status_code == 200  # a recent pull keeps v2
    wait_for_pull(api, repo, "v2")
    rule = {"pattern": "v1"}
    expect(
        api.call("POST", f"/v1/namespaces/{team.org}/immutable-tag-rules", team.admin, json=rule),
        201,
    )
    releases = expect(
        add_policy(
            api,
            team.admin,
            team.org,
            tag_pattern="v*",
            keep_last=1,
            keep_days=30,
            repository=repo,
        ),
        201,
    )
    dev = expect(add_policy(api, team.admin, team.org, tag_pattern="dev*", keep_days=7), 201)

    dry = expect(run(api, team.admin, team.org, dry_run=True), 200)
    assert dry["dry_run"] is True
    expected = {repo: [("dev", images["dev"].digest), ("v3", images["v3"].digest)]}
    assert removed_tags(dry) == expected
    assert (dry["removed"], dry["kept"], dry["skipped"], dry["policies"]) == (2, 3, 0, 2)
    assert dry["repositories"][repo]["kept"] == 3  # v1 (immutable), v2 (pulled), v4 (newest)
    by_tag = {item["tag"]: item for item in dry["repositories"][repo]["removed"]}
    assert by_tag["v3"]["policies"] == [releases["id"]]
    assert by_tag["dev"]["policies"] == [dev["id"]]
    assert by_tag["v3"]["pulled_at"] is None
    with v2(api, team.reader) as http:  # a dry run changes nothing
        assert http.get(manifest_path(repo, "v3"), headers={"Accept": "*/*"}).status_code == 200

    real = expect(run(api, team.admin, team.org, dry_run=False), 200)
    assert real["dry_run"] is False
    assert removed_tags(real) == expected
    assert real["repositories"] == dry["repositories"]
    with v2(api, team.reader) as http:
        for tag in ("v3", "dev"):
            resp = http.get(manifest_path(repo, tag), headers={"Accept": "*/*"})
            assert resp.status_code == 404, tag
        for tag in ("v1", "v2", "v4"):
            resp = http.get(manifest_path(repo, tag), headers={"Accept": "*/*"})
            assert resp.json() == images[tag].manifest, tag
        assert http.get(manifest_path(repo, "latest"), headers={"Accept": "*/*"}).json() == (
            latest.manifest
        )
        assert http.get(
            manifest_path(f"{team.org}/web", "v1"), headers={"Accept": "*/*"}
        ).json() == (web.manifest)
        # Only the tag went: the manifest is there by digest until garbage collection.
        by_digest = http.get(manifest_path(repo, images["v3"].digest), headers={"Accept": "*/*"})
        assert by_digest.status_code == 200
    # The tag history and the audit log say who removed what, and why.
    event = history(api, team.reader, repo, "v3")["events"][0]
    assert (event["action"], event["via"], event["actor"]) == (
        "deleted",
        "retention",
        team.admin[0],
    )
    assert event["old_digest"] == images["v3"].digest
    audit = expect(
        api.call(
            "GET",
            "/v1/audit",
            team.admin,
            params={"target": team.org, "action": "retention_delete"},
        ),
        200,
    )
    assert sorted((e["target"], e["actor"]) for e in audit) == [
        (f"{repo}:dev", team.admin[0]),
        (f"{repo}:v3", team.admin[0]),
    ]
    details = {e["target"]: e["detail"] for e in audit}
    assert details[f"{repo}:v3"] == {"digest": images["v3"].digest, "policies": [releases["id"]]}
    # Nothing is left to remove.
    again = expect(run(api, team.admin, team.org, dry_run=False), 200)
    assert (again["removed"], again["kept"]) == (0, 3)

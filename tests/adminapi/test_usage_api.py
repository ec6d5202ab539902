"""/api/v1/usage, /v1/namespaces/{ns}/usage and /quota, /v1/repositories/{name}/usage:
exact numbers, who may read and change what, and a quota set here refusing a /v2 push."""

from __future__ import annotations

import os

import httpx
from tests.api.oci import Pushed, digest_of, push_image

from .conftest import Api, expect
from .test_audit_api import read
from .test_tags_api import crew, message, v2


def quota_path(ns: str) -> str:
    return f"/v1/namespaces/{ns}/quota"


def stored(pushed: Pushed) -> int:
    return sum(len(data) for data in pushed.blobs.values())


def logical(pushed: Pushed) -> int:
    return pushed.size + stored(pushed)


def post_blob(http: httpx.Client, repository: str, data: bytes) -> httpx.Response:
    return http.post(
        f"/v2/{repository}/blobs/uploads/", params={"digest": digest_of(data)}, content=data
    )


def test_usage_numbers_and_who_may_read_them(api: Api) -> None:
    team = crew(api)
    app, web = f"{team.org}/app", f"{team.org}/web"
    with v2(api, team.writer) as http:
        first = push_image(http, app, "v1", layers=2)
        # The same image in a second repository: its blobs are stored once.
        for data in first.blobs.values():
            assert post_blob(http, web, data).status_code == 201
        assert (
            http.put(
                f"/v2/{web}/manifests/v1",
                content=first.body,
                headers={"Content-Type": first.media_type},
            ).status_code
            == 201
        )
        second = push_image(http, web, "v2", layers=1)
    someone = api.add_user("someone")
    body = {"user": someone[0], "role": "reader", "repository": app}
    expect(api.call("POST", f"/v1/namespaces/{team.org}/members", api.admin, json=body), 201)

    usage = expect(api.call("GET", f"/v1/namespaces/{team.org}/usage", team.reader), 200)
    assert usage["namespace"] == team.org and usage["repository_count"] == 2
    assert usage["stored_bytes"] == stored(first) + stored(second)
    assert usage["logical_bytes"] == 2 * logical(first) + logical(second)
    assert usage["shared_bytes"] == 0  # nothing linked outside the namespace
    assert (usage["quota_bytes"], usage["quota_used_percent"]) == (None, None)
    rows = {row["repository"]: row for row in usage["repositories"]}
    assert rows[app] == {
        "repository": app,
        "logical_bytes": logical(first),
        "stored_bytes": stored(first),
        "shared_bytes": stored(first),  # all of it is in web too
        "blobs": 3,
        "manifests": 1,
    }
    assert rows[web]["stored_bytes"] == stored(first) + stored(second)
    assert rows[web]["shared_bytes"] == stored(first)
    # Repositories are listed only where the caller may pull: `someone` may pull app only.
    limited = expect(api.call("GET", f"/v1/namespaces/{team.org}/usage", someone), 200)
    assert [row["repository"] for row in limited["repositories"]] == [app]
    assert limited["stored_bytes"] == usage["stored_bytes"]

    repo = expect(api.call("GET", f"/v1/repositories/{app}/usage", team.reader), 200)
    assert repo == rows[app]
    expect(api.call("GET", f"/v1/repositories/{web}/usage", someone), 403, "DENIED")
    expect(api.call("GET", f"/v1/repositories/{app}/usage", team.outsider), 403, "DENIED")
    expect(api.call("GET", f"/v1/repositories/{team.org}/none/usage", api.admin), 404)
    expect(api.call("GET", f"/v1/repositories/{team.org}/Bad!/usage", api.admin), 400)
    # A private namespace is hidden from outsiders.
    expect(api.call("GET", f"/v1/namespaces/{team.org}/usage", team.outsider), 404)

    registry = expect(api.call("GET", "/v1/usage", api.admin), 200)
    listed = {ns["namespace"]: ns for ns in registry["namespaces"]}
    assert {k: listed[team.org][k] for k in ("stored_bytes", "logical_bytes")} == {
        "stored_bytes": usage["stored_bytes"],
        "logical_bytes": usage["logical_bytes"],
    }
    assert registry["stored_bytes"] >= usage["stored_bytes"]
    assert "repositories" not in listed[team.org]
    expect(api.call("GET", "/v1/usage", team.admin), 403, "DENIED")


def test_only_registry_admins_set_and_remove_quotas(api: Api) -> None:
    team = crew(api)
    path = quota_path(team.org)
    expect(api.call("GET", path, team.reader), 404)  # no quota yet
    for caller in (team.admin, team.maintainer, team.reader):
        expect(api.call("PUT", path, caller, json={"limit_bytes": 10**12}), 403, "DENIED")
    made = expect(api.call("PUT", path, api.admin, json={"limit_bytes": "10GiB"}), 200)
    assert made["namespace"] == team.org and made["limit_bytes"] == 10 * 1024**3
    assert (made["usage_bytes"], made["remaining_bytes"]) == (0, 10 * 1024**3)
    assert made["updated_by"] == "root" and made["used_percent"] == 0.0
    changed = expect(api.call("PUT", path, api.admin, json={"limit_bytes": 5000}), 200)
    assert changed["limit_bytes"] == 5000
    for reader in (team.reader, team.admin, api.admin):
        assert expect(api.call("GET", path, reader), 200)["limit_bytes"] == 5000
    expect(api.call("GET", path, team.outsider), 404)  # private: hidden
    for bad in ({"limit_bytes": "ten"}, {"limit_bytes": -1}, {"limit_bytes": 1.5}, {}):
        expect(api.call("PUT", path, api.admin, json=bad), 400, "INVALID_REQUEST")
    expect(api.call("PUT", quota_path("no-such-ns"), api.admin, json={"limit_bytes": 1}), 404)
    expect(api.call("PUT", quota_path("Bad!"), api.admin, json={"limit_bytes": 1}), 400)
    expect(api.call("DELETE", path, team.admin), 403, "DENIED")
    expect(api.call("DELETE", path, api.admin), 204)
    expect(api.call("DELETE", path, api.admin), 404)
    expect(api.call("GET", path, team.reader), 404)
    removed = read(api, api.admin, action="quota_remove", target=team.org)  # batched writer
    assert [event["actor"] for event in removed] == ["root"]
    changes = read(api, api.admin, action="quota_set", target=team.org)
    assert [event["detail"] for event in changes] == [
        {"limit_bytes": 5000},
        {"limit_bytes": 10 * 1024**3},
    ]


def test_public_namespace_quota_is_for_members_and_robots(api: Api) -> None:
    team = crew(api)
    expect(
        api.call("PUT", f"/v1/namespaces/{team.org}/visibility", api.admin, json={"public": True}),
        200,
    )
    expect(api.call("PUT", quota_path(team.org), api.admin, json={"limit_bytes": 1000}), 200)
    # Anyone may see a public namespace's usage; its quota only its members.
    expect(api.call("GET", f"/v1/namespaces/{team.org}/usage", team.outsider), 200)
    expect(api.call("GET", quota_path(team.org), team.outsider), 403, "DENIED")
    body = {"name": "ci", "actions": ["pull", "push"]}
    robot = expect(
        api.call("POST", f"/v1/namespaces/{team.org}/robots", team.admin, json=body), 201
    )
    auth = (robot["username"], robot["secret"])
    assert expect(api.call("GET", quota_path(team.org), auth), 200)["limit_bytes"] == 1000
    assert expect(api.call("GET", f"/v1/namespaces/{team.org}/usage", auth), 200)
    expect(api.call("PUT", quota_path(team.org), auth, json={"limit_bytes": 10**9}), 403)


def test_a_quota_set_here_refuses_a_v2_push(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    with v2(api, team.writer) as http:
        pushed = push_image(http, repo, "v1", layers=1)
    limit = stored(pushed) + 100
    expect(api.call("PUT", quota_path(team.org), api.admin, json={"limit_bytes": limit}), 200)
    with v2(api, team.writer) as http:
        assert post_blob(http, repo, os.urandom(100)).status_code == 201  # exactly fits
        refused = post_blob(http, repo, b"one byte too many")
        # A blob the namespace holds is accepted again, in another repository too.
        again = post_blob(http, f"{team.org}/web", next(iter(pushed.blobs.values())))
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["code"] == "DENIED"
    assert f"namespace {team.org} would use" in message(refused)
    assert refused.json()["errors"][0]["detail"]["usage"] == limit
    assert again.status_code == 201, again.text
    status = expect(api.call("GET", quota_path(team.org), team.reader), 200)
    assert (status["usage_bytes"], status["remaining_bytes"], status["used_percent"]) == (
        limit,
        0,
        100.0,
    )

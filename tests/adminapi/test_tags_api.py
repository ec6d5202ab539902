"""/api/v1/repositories/{name}/tags and /history: history, rollback, retag, delete.

Manifests are pushed for real over /v2 and read back over /v2 after each change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from tests.api.oci import (
    Pushed,
    blob_path,
    digest_of,
    manifest_path,
    push,
    push_image,
    push_index,
)

from .conftest import Api, Auth, expect


@dataclass
class Crew:
    """An organization with a user in each role, and one without any."""

    org: str
    admin: Auth
    maintainer: Auth
    writer: Auth
    reader: Auth
    outsider: Auth


def crew(api: Api) -> Crew:
    org = api.add_org()
    people = {role: api.add_user(role) for role in ("admin", "maintainer", "writer", "reader")}
    for role, (name, _) in people.items():
        api.grant(org, role, name)
    return Crew(org, outsider=api.add_user("outsider"), **people)


def v2(api: Api, auth: Auth) -> httpx.Client:
    return httpx.Client(base_url=api.url, auth=auth, timeout=30)


def tags_path(repo: str, tag: str | None = None, suffix: str = "") -> str:
    return f"/v1/repositories/{repo}/tags" + (f"/{tag}" if tag else "") + suffix


def push_versions(api: Api, auth: Auth, repo: str, tag: str, count: int) -> list[Pushed]:
    """`count` different images pushed to repo:tag one after the other."""
    with v2(api, auth) as http:
        return [push_image(http, repo, tag) for _ in range(count)]


def pulled(api: Api, auth: Auth, repo: str, reference: str) -> httpx.Response:
    with v2(api, auth) as http:
        return http.get(manifest_path(repo, reference), headers={"Accept": "*/*"})


def history(api: Api, auth: Auth, repo: str, tag: str, **query: Any) -> dict[str, Any]:
    path = tags_path(repo, tag, "/history")
    return expect(api.call("GET", path, auth, params=query), 200)  # type: ignore[no-any-return]


def rollback(api: Api, auth: Auth, repo: str, tag: str, **body: Any) -> httpx.Response:
    return api.call("POST", tags_path(repo, tag, "/rollback"), auth, json=body or None)


def retag(api: Api, auth: Auth, repo: str, tag: str, source: str) -> httpx.Response:
    return api.call("PUT", tags_path(repo, tag), auth, json={"source": source})


def message(resp: httpx.Response) -> str:
    return resp.json()["errors"][0]["message"]  # type: ignore[no-any-return]


# -- reading
def test_history_lists_every_push_with_digests_and_actor(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    one, two, three = push_versions(api, team.writer, repo, "prod", 3)
    events = history(api, team.reader, repo, "prod")["events"]
    assert [(e["action"], e["old_digest"], e["new_digest"]) for e in events] == [
        ("moved", two.digest, three.digest),
        ("moved", one.digest, two.digest),
        ("created", None, one.digest),
    ]
    assert {(e["repository"], e["tag"], e["via"], e["actor"]) for e in events} == {
        (repo, "prod", "push", team.writer[0])
    }
    assert events[0]["id"] > events[1]["id"] > events[2]["id"]
    # The repository's history holds the same, and pages newest first.
    whole = expect(api.call("GET", f"/v1/repositories/{repo}/history", team.reader), 200)
    assert whole["events"] == events and whole["next_before"] is None
    first = history(api, team.reader, repo, "prod", limit=2)
    assert first["events"] == events[:2] and first["next_before"] == events[1]["id"]
    rest = history(api, team.reader, repo, "prod", limit=2, before=first["next_before"])
    assert rest == {"events": events[2:], "next_before": None}


def test_tags_list_and_resolve_to_what_they_name(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    with v2(api, team.writer) as http:
        image = push_image(http, repo, "a")
        push(http, repo, image, "b")
        other = push_image(http, repo, "c")
    page = expect(api.call("GET", tags_path(repo), team.reader, params={"n": 2}), 200)
    assert [(t["name"], t["digest"]) for t in page["tags"]] == [
        ("a", image.digest),
        ("b", image.digest),
    ]
    assert page["next"] == "b"
    assert page["tags"][0]["media_type"] == image.media_type
    assert page["tags"][0]["size"] == image.size
    rest = expect(api.call("GET", tags_path(repo), team.reader, params={"last": "b"}), 200)
    assert [t["name"] for t in rest["tags"]] == ["c"] and rest["next"] is None
    one = expect(api.call("GET", tags_path(repo, "c"), team.reader), 200)
    assert one == {**one, "name": "c", "digest": other.digest, "size": other.size}
    assert datetime.fromisoformat(one["updated_at"]).tzinfo is not None


def test_unknown_repositories_and_tags_are_404_for_those_who_may_pull(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    push_versions(api, team.writer, repo, "prod", 1)
    missing = f"{team.org}/missing"
    for path in (
        tags_path(missing),
        tags_path(missing, "x"),
        f"/v1/repositories/{missing}/history",
    ):
        expect(api.call("GET", path, team.reader), 404, "NAME_UNKNOWN")
    expect(api.call("GET", tags_path(repo, "nope"), team.reader), 404, "MANIFEST_UNKNOWN")
    expect(
        api.call("GET", tags_path(repo, "nope", "/history"), team.reader), 404, "MANIFEST_UNKNOWN"
    )
    expect(rollback(api, team.writer, repo, "nope"), 404, "MANIFEST_UNKNOWN")
    expect(api.call("DELETE", tags_path(repo, "nope"), team.maintainer), 404, "MANIFEST_UNKNOWN")


def test_private_repositories_are_not_revealed_to_callers_without_pull(api: Api) -> None:
    team = crew(api)
    repo, missing = f"{team.org}/app", f"{team.org}/missing"
    push_versions(api, team.writer, repo, "prod", 1)
    for path in (tags_path(repo), tags_path(repo, "prod"), tags_path(repo, "prod", "/history")):
        expect(api.call("GET", path, team.outsider), 403, "DENIED")
    # The same answer, whether the repository exists or not (as on /v2).
    existing = api.call("GET", tags_path(repo, "prod"), team.outsider)
    absent = api.call("GET", tags_path(missing, "prod"), team.outsider)
    assert (absent.status_code, message(absent)) == (
        existing.status_code,
        message(existing).replace(repo, missing),
    )
    with v2(api, team.outsider) as http:
        assert http.get(manifest_path(repo, "prod")).status_code == 403


# -- rollback
def test_rollback_returns_to_the_previous_manifest_byte_for_byte(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    one, two, three = push_versions(api, team.writer, repo, "prod", 3)
    back = expect(rollback(api, team.writer, repo, "prod"), 200)
    assert back["repository"] == repo and back["tag"] == "prod"
    assert back["digest"] == two.digest and back["changed"] is True
    event = back["event"]
    assert (event["action"], event["old_digest"], event["new_digest"]) == (
        "moved",
        three.digest,
        two.digest,
    )
    assert (event["via"], event["actor"]) == ("rollback", team.writer[0])
    resp = pulled(api, team.reader, repo, "prod")
    assert resp.status_code == 200 and resp.content == two.body
    assert resp.headers["docker-content-digest"] == two.digest
    assert history(api, team.reader, repo, "prod")["events"][0] == event
    # Rolling back again undoes the rollback: the previous version is three.
    again = expect(rollback(api, team.writer, repo, "prod", to=None), 200)
    assert again["digest"] == three.digest
    assert pulled(api, team.reader, repo, "prod").content == three.body
    # Rolling back to what the tag names already changes nothing.
    same = expect(rollback(api, team.writer, repo, "prod", to=three.digest), 200)
    assert same["changed"] is False and same["event"] is None
    assert len(history(api, team.reader, repo, "prod")["events"]) == 5
    assert one.digest  # the first version is not involved


def test_rollback_by_digest_history_entry_and_time(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    one, two, three = push_versions(api, team.writer, repo, "prod", 3)
    created, moved_to_two, moved_to_three = reversed(
        history(api, team.reader, repo, "prod")["events"]
    )

    def now_names() -> bytes:
        return pulled(api, team.reader, repo, "prod").content

    expect(rollback(api, team.writer, repo, "prod", to=one.digest), 200)
    assert now_names() == one.body
    by_entry = expect(rollback(api, team.writer, repo, "prod", to=str(moved_to_two["id"])), 200)
    assert by_entry["digest"] == two.digest and now_names() == two.body
    by_number = expect(rollback(api, team.writer, repo, "prod", to=moved_to_three["id"]), 200)
    assert by_number["digest"] == three.digest
    # A time: where the tag pointed then (UTC as listed, then the same instant elsewhere).
    by_time = expect(rollback(api, team.writer, repo, "prod", to=created["at"]), 200)
    assert by_time["digest"] == one.digest and now_names() == one.body
    moment = datetime.fromisoformat(moved_to_two["at"].replace("Z", "+00:00"))
    new_york = moment.astimezone(timezone(timedelta(hours=-5))).isoformat()
    by_zone = expect(rollback(api, team.writer, repo, "prod", to=new_york), 200)
    assert by_zone["digest"] == two.digest and now_names() == two.body
    tokyo = moment.astimezone(timezone(timedelta(hours=9))).isoformat()
    assert expect(rollback(api, team.writer, repo, "prod", to=tokyo), 200)["changed"] is False
    before = (moment - timedelta(days=1)).isoformat()
    gone = expect(rollback(api, team.writer, repo, "prod", to=before), 404, "MANIFEST_UNKNOWN")
    assert "did not exist" in gone["errors"][0]["message"]


def test_rollback_restores_a_deleted_tag(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    _, two = push_versions(api, team.writer, repo, "prod", 2)
    expect(api.call("DELETE", tags_path(repo, "prod"), team.maintainer), 204)
    assert pulled(api, team.reader, repo, "prod").status_code == 404
    expect(api.call("GET", tags_path(repo, "prod"), team.reader), 404, "MANIFEST_UNKNOWN")
    assert pulled(api, team.reader, repo, two.digest).content == two.body  # manifest kept
    restored = expect(rollback(api, team.writer, repo, "prod"), 200)
    assert restored["digest"] == two.digest
    assert restored["event"]["action"] == "created"
    assert pulled(api, team.reader, repo, "prod").content == two.body
    events = history(api, team.reader, repo, "prod")["events"]
    assert [(e["action"], e["via"], e["actor"]) for e in events[:2]] == [
        ("created", "rollback", team.writer[0]),
        ("deleted", "delete", team.maintainer[0]),
    ]


def test_rollback_to_a_manifest_deleted_by_digest_is_404(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    one, two = push_versions(api, team.writer, repo, "prod", 2)
    with v2(api, team.maintainer) as http:
        assert http.delete(manifest_path(repo, two.digest)).status_code == 202
    for to in (None, two.digest):
        resp = rollback(api, team.writer, repo, "prod", to=to)
        body = expect(resp, 404, "MANIFEST_UNKNOWN")
        assert two.digest in message(resp) and "deleted" in message(resp), body
    assert pulled(api, team.reader, repo, "prod").status_code == 404  # nothing changed
    expect(rollback(api, team.writer, repo, "prod", to=one.digest), 200)
    assert pulled(api, team.reader, repo, "prod").content == one.body


def test_rollback_of_a_tag_without_an_earlier_version_is_404(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    push_versions(api, team.writer, repo, "prod", 1)
    resp = rollback(api, team.writer, repo, "prod")
    expect(resp, 404, "MANIFEST_UNKNOWN")
    assert "no earlier version" in message(resp)


def test_bad_rollback_targets_are_4xx_not_500(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    push_versions(api, team.writer, repo, "prod", 2)
    expect(rollback(api, team.writer, repo, "prod", to="yesterday"), 400, "TAG_INVALID")
    expect(rollback(api, team.writer, repo, "prod", to="sha256:abc"), 400, "DIGEST_INVALID")
    expect(rollback(api, team.writer, repo, "prod", to="\u00b2"), 400, "TAG_INVALID")
    expect(rollback(api, team.writer, repo, "prod", to="9" * 30), 404, "MANIFEST_UNKNOWN")
    expect(rollback(api, team.writer, repo, "prod", to="999999999"), 404, "MANIFEST_UNKNOWN")
    expect(rollback(api, team.writer, repo, "prod", to="0001-01-01T00:00:00+05:00"), 400)
    expect(rollback(api, team.writer, repo, "prod", to=True), 400, "INVALID_REQUEST")
    expect(rollback(api, team.writer, repo, "prod", other="x"), 400, "INVALID_REQUEST")
    expect(rollback(api, team.writer, repo, "-bad"), 400, "TAG_INVALID")
    expect(rollback(api, team.writer, "Not/Valid", "prod"), 400, "NAME_INVALID")
    path = tags_path(repo, "prod", "/history")
    expect(api.call("GET", path, team.reader, params={"limit": 0}), 400, "INVALID_REQUEST")
    expect(api.call("GET", path, team.reader, params={"before": 2**70}), 400, "INVALID_REQUEST")


# -- retag
def test_retag_within_a_repository(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    (image,) = push_versions(api, team.writer, repo, "prod", 1)
    for tag, source in (
        ("stable", "prod"),
        ("v1", image.digest),
        ("v1-again", f"{repo}:prod"),
        ("v1-pinned", f"{repo}@{image.digest}"),
        ("v1-colon", ":prod"),
    ):
        done = expect(retag(api, team.writer, repo, tag, source), 200)
        assert (done["repository"], done["tag"], done["digest"]) == (repo, tag, image.digest)
        assert done["changed"] is True
        assert (done["event"]["via"], done["event"]["actor"]) == ("retag", team.writer[0])
        assert pulled(api, team.reader, repo, tag).content == image.body
    again = expect(retag(api, team.writer, repo, "stable", "prod"), 200)
    assert again["changed"] is False and again["event"] is None
    # Moving an existing tag records where it came from.
    (newer,) = push_versions(api, team.writer, repo, "next", 1)
    moved = expect(retag(api, team.writer, repo, "stable", "next"), 200)["event"]
    assert (moved["action"], moved["old_digest"], moved["new_digest"]) == (
        "moved",
        image.digest,
        newer.digest,
    )
    expect(retag(api, team.writer, repo, "x", "nope"), 404, "MANIFEST_UNKNOWN")
    expect(retag(api, team.writer, repo, "x", digest_of(b"nothing")), 404, "MANIFEST_UNKNOWN")
    expect(retag(api, team.writer, repo, "x", "sha256:nothex"), 400, "DIGEST_INVALID")
    expect(retag(api, team.writer, repo, "x", "Bad/Name:x"), 400, "NAME_INVALID")
    expect(retag(api, team.writer, repo, "x", f"{repo}:-bad"), 400, "TAG_INVALID")


def test_retag_across_repositories_links_the_content(api: Api) -> None:
    team = crew(api)
    source, target = f"{team.org}/build", f"{team.org}/deploy/live"
    with v2(api, team.writer) as http:
        amd, arm = push_image(http, source, layers=2), push_image(http, source)
        index = push_index(http, source, [amd, arm], "release")
        single = push_image(http, source, "single")
    done = expect(retag(api, team.writer, target, "v1", f"{source}:release"), 200)
    assert done["digest"] == index.digest
    pinned = expect(retag(api, team.writer, target, "one", f"{source}@{single.digest}"), 200)
    assert pinned["digest"] == single.digest
    with v2(api, team.reader) as http:
        assert http.get(manifest_path(target, "v1")).content == index.body
        assert http.get(manifest_path(target, "one")).content == single.body
        for child in (amd, arm, single):
            assert http.get(manifest_path(target, child.digest)).content == child.body
            for digest, data in child.blobs.items():
                resp = http.get(blob_path(target, digest))
                assert resp.status_code == 200 and resp.content == data, digest
    assert history(api, team.reader, target, "v1")["events"][0]["via"] == "retag"


def test_retag_across_namespaces_is_refused(api: Api) -> None:
    team, other = crew(api), api.add_org()
    source, target = f"{team.org}/app", f"{other}/app"
    (image,) = push_versions(api, api.admin, source, "prod", 1)
    resp = retag(api, api.admin, target, "prod", f"{source}:prod")
    expect(resp, 403, "DENIED")
    assert "different namespaces" in message(resp)
    assert pulled(api, api.admin, target, image.digest).status_code == 404


def test_retag_needs_pull_on_the_source(api: Api) -> None:
    team = crew(api)
    elsewhere = api.add_org()
    bob = team.writer
    (image,) = push_versions(api, api.admin, f"{elsewhere}/secret", "prod", 1)
    resp = retag(api, bob, f"{team.org}/app", "copy", f"{elsewhere}/secret:prod")
    expect(resp, 403, "DENIED")
    assert "pull" in message(resp)
    assert pulled(api, api.admin, f"{team.org}/app", image.digest).status_code == 404


# -- permissions
def test_readers_read_writers_move_maintainers_delete(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    one, _ = push_versions(api, team.writer, repo, "prod", 2)
    for resp in (
        rollback(api, team.reader, repo, "prod"),
        retag(api, team.reader, repo, "copy", "prod"),
        api.call("DELETE", tags_path(repo, "prod"), team.reader),
    ):
        expect(resp, 403, "DENIED")
        assert repo in message(resp) and "you may only pull" in message(resp)
    assert "rolling back" in message(rollback(api, team.reader, repo, "prod"))
    expect(rollback(api, team.writer, repo, "prod"), 200)
    assert pulled(api, team.reader, repo, "prod").content == one.body
    expect(retag(api, team.writer, repo, "copy", "prod"), 200)
    resp = api.call("DELETE", tags_path(repo, "copy"), team.writer)
    expect(resp, 403, "DENIED")
    assert "delete access" in message(resp)
    expect(api.call("DELETE", tags_path(repo, "copy"), team.maintainer), 204)
    expect(api.call("DELETE", tags_path(repo, "copy"), team.maintainer), 404, "MANIFEST_UNKNOWN")
    assert pulled(api, team.reader, repo, "copy").status_code == 404
    assert pulled(api, team.reader, repo, "prod").content == one.body  # the manifest stays


def test_deleting_a_tag_never_deletes_a_manifest_by_digest(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    (image,) = push_versions(api, team.writer, repo, "prod", 1)
    expect(api.call("DELETE", tags_path(repo, image.digest), team.maintainer), 400, "TAG_INVALID")
    assert pulled(api, team.reader, repo, "prod").content == image.body


def test_a_robot_uses_the_tag_endpoints_within_its_scope(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    one, _ = push_versions(api, team.writer, repo, "prod", 2)
    push_versions(api, team.writer, f"{team.org}/other", "prod", 2)
    body = {"name": "deployer", "actions": ["pull", "push"], "repositories": [repo]}
    made = expect(api.call("POST", f"/v1/namespaces/{team.org}/robots", api.admin, json=body), 201)
    robot = (made["username"], made["secret"])
    assert expect(rollback(api, robot, repo, "prod"), 200)["event"]["actor"] == robot[0]
    assert pulled(api, team.reader, repo, "prod").content == one.body
    expect(rollback(api, robot, f"{team.org}/other", "prod"), 403, "DENIED")
    expect(api.call("DELETE", tags_path(repo, "prod"), robot), 403, "DENIED")


# -- routing and the audit log
def test_deep_repository_names_and_tags_named_like_suffixes(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/a/b/c"
    one, two = push_versions(api, team.writer, repo, "history", 2)
    push_versions(api, team.writer, repo, "tags", 1)
    # .../tags/history is the tag "history", not the history of a repository ".../tags".
    assert expect(api.call("GET", tags_path(repo, "history"), team.reader), 200)["digest"] == (
        two.digest
    )
    assert len(history(api, team.reader, repo, "history")["events"]) == 2
    assert len(history(api, team.reader, repo, "tags")["events"]) == 1
    whole = expect(api.call("GET", f"/v1/repositories/{repo}/history", team.reader), 200)
    assert {e["tag"] for e in whole["events"]} == {"history", "tags"}
    listed = expect(api.call("GET", tags_path(repo), team.reader), 200)
    assert [t["name"] for t in listed["tags"]] == ["history", "tags"]
    expect(rollback(api, team.writer, repo, "history"), 200)
    assert pulled(api, team.reader, repo, "history").content == one.body


def test_changes_reach_the_audit_log(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    one, _ = push_versions(api, team.writer, repo, "prod", 2)
    expect(rollback(api, team.writer, repo, "prod"), 200)
    expect(retag(api, team.writer, repo, "copy", "prod"), 200)
    expect(api.call("DELETE", tags_path(repo, "copy"), team.maintainer), 204)
    wanted = {"tag_rollback", "retag", "tag_delete"}
    deadline = time.monotonic() + 5
    while True:
        found = expect(api.call("GET", "/v1/audit", api.admin, params={"target": repo}), 200)
        actions = {entry["action"]: entry for entry in found}
        if wanted <= set(actions) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert wanted <= set(actions), found
    assert actions["tag_rollback"]["actor"] == team.writer[0]
    assert actions["tag_rollback"]["detail"]["tag"] == "prod"
    assert actions["tag_rollback"]["detail"]["digest"] == one.digest
    assert actions["retag"]["detail"]["source"] == "prod"
    assert actions["tag_delete"]["actor"] == team.maintainer[0]
    assert actions["tag_delete"]["detail"] == {"tag": "copy", "digest": one.digest}

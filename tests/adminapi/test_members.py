"""/v1/namespaces/{ns}/members and /teams: grants, teams and team members."""

from __future__ import annotations

from .conftest import Api, Auth, expect, unique


def _org_with_admin(api: Api) -> tuple[str, Auth]:
    org = api.add_org()
    admin = api.add_user("nsadmin")
    api.grant(org, "admin", admin[0])
    return org, admin


def test_namespace_admin_grants_lists_and_revokes(api: Api) -> None:
    org, admin = _org_with_admin(api)
    bob = api.add_user("bob")
    members = f"/v1/namespaces/{org}/members"
    grant = {"user": bob[0], "role": "writer"}
    assert expect(api.call("POST", members, admin, json=grant), 201) == {
        "user": bob[0],
        "team": None,
        "role": "writer",
        "repository": None,
    }
    scoped = {"user": bob[0], "role": "maintainer", "repository": f"{org}/app"}
    expect(api.call("POST", members, admin, json=scoped), 201)
    # Granting again replaces the old role.
    expect(api.call("POST", members, admin, json={"user": bob[0], "role": "reader"}), 201)
    listed = expect(api.call("GET", members, admin), 200)
    assert {"user": bob[0], "team": None, "role": "reader", "repository": None} in listed
    assert {"user": bob[0], "team": None, "role": "maintainer", "repository": f"{org}/app"} in (
        listed
    )
    assert {"user": admin[0], "team": None, "role": "admin", "repository": None} in listed
    assert len(listed) == 3
    scoped_path = f"{members}/users/{bob[0]}"
    resp = api.call("DELETE", scoped_path, admin, params={"repository": f"{org}/app"})
    expect(resp, 204)
    expect(api.call("DELETE", f"{members}/users/{bob[0]}", admin), 204)
    assert [g["user"] for g in expect(api.call("GET", members, admin), 200)] == [admin[0]]
    expect(api.call("DELETE", f"{members}/users/{bob[0]}", admin), 404, "NAME_UNKNOWN")


def test_members_are_managed_by_namespace_admins_only(api: Api) -> None:
    org, _ = _org_with_admin(api)
    writer, outsider = api.add_user("writer"), api.add_user("outsider")
    api.grant(org, "maintainer", writer[0])
    members = f"/v1/namespaces/{org}/members"
    grant = {"user": outsider[0], "role": "admin"}
    for who in (writer, outsider):
        expect(api.call("GET", members, who), 403, "DENIED")
        expect(api.call("POST", members, who, json=grant), 403, "DENIED")
        expect(api.call("DELETE", f"{members}/users/{writer[0]}", who), 403, "DENIED")
    # The owner of a personal namespace manages its members.
    expect(api.call("POST", f"/v1/namespaces/{writer[0]}/members", writer, json=grant), 201)
    expect(api.call("GET", f"/v1/namespaces/{writer[0]}/members", outsider), 200)


def test_grant_validation(api: Api) -> None:
    org, admin = _org_with_admin(api)
    bob = api.add_user("bob")
    members = f"/v1/namespaces/{org}/members"
    cases = [
        ({"user": bob[0], "role": "owner"}, 400, "INVALID_REQUEST"),
        ({"role": "reader"}, 400, "INVALID_REQUEST"),
        ({"user": bob[0], "team": "t", "role": "reader"}, 400, "INVALID_REQUEST"),
        ({"user": bob[0], "role": "reader", "repository": "elsewhere/app"}, 400, "NAME_INVALID"),
        ({"user": bob[0], "role": "reader", "repository": f"{org}/Bad"}, 400, "NAME_INVALID"),
        ({"user": bob[0], "role": "reader", "repository": org}, 400, "NAME_INVALID"),
        ({"user": "no-such-user", "role": "reader"}, 404, "NAME_UNKNOWN"),
        ({"team": "no-such-team", "role": "reader"}, 404, "NAME_UNKNOWN"),
    ]
    for body, status, code in cases:
        expect(api.call("POST", members, admin, json=body), status, code)
    expect(api.call("GET", "/v1/namespaces/no-such-org/members", api.admin), 404, "NAME_UNKNOWN")
    expect(api.call("DELETE", f"{members}/users/no-such-user", admin), 404, "NAME_UNKNOWN")


def test_teams_members_and_team_grants(api: Api) -> None:
    org, admin = _org_with_admin(api)
    bob, carol = api.add_user("bob"), api.add_user("carol")
    teams = f"/v1/namespaces/{org}/teams"
    assert expect(api.call("POST", teams, admin, json={"name": "devs"}), 201) == {
        "name": "devs",
        "members": [],
    }
    expect(api.call("POST", teams, admin, json={"name": "devs"}), 409, "CONFLICT")
    expect(api.call("POST", teams, admin, json={"name": "Devs!"}), 400, "NAME_INVALID")
    for user in (bob, carol, bob):  # adding twice is harmless
        team = expect(api.call("POST", f"{teams}/devs/members", admin, json={"user": user[0]}), 200)
    assert team == {"name": "devs", "members": sorted([bob[0], carol[0]])}
    assert expect(api.call("GET", teams, admin), 200) == [team]
    assert expect(api.call("GET", f"{teams}/devs", admin), 200) == team
    grant = {"team": "devs", "role": "writer"}
    expect(api.call("POST", f"/v1/namespaces/{org}/members", admin, json=grant), 201)
    # Team members now see the org; and revoking the team's grant works.
    assert expect(api.call("GET", f"/v1/namespaces/{org}", bob), 200)["name"] == org
    expect(api.call("DELETE", f"/v1/namespaces/{org}/members/teams/devs", admin), 204)
    expect(api.call("DELETE", f"{teams}/devs/members/{carol[0]}", admin), 204)
    assert expect(api.call("GET", f"{teams}/devs", admin), 200)["members"] == [bob[0]]
    expect(api.call("DELETE", f"{teams}/devs/members/{carol[0]}", admin), 404, "NAME_UNKNOWN")


def test_team_errors_and_denials(api: Api) -> None:
    org, admin = _org_with_admin(api)
    bob = api.add_user("bob")
    teams = f"/v1/namespaces/{org}/teams"
    expect(api.call("POST", teams, admin, json={"name": "ops"}), 201)
    expect(
        api.call("POST", f"{teams}/nope/members", admin, json={"user": bob[0]}), 404, "NAME_UNKNOWN"
    )
    expect(
        api.call("POST", f"{teams}/ops/members", admin, json={"user": "no-such-user"}),
        404,
        "NAME_UNKNOWN",
    )
    expect(api.call("GET", f"{teams}/nope", admin), 404, "NAME_UNKNOWN")
    expect(api.call("GET", teams, bob), 403, "DENIED")
    expect(api.call("POST", teams, bob, json={"name": unique("t")}), 403, "DENIED")
    expect(api.call("POST", f"{teams}/ops/members", bob, json={"user": bob[0]}), 403, "DENIED")
    expect(api.call("DELETE", f"{teams}/ops/members/{bob[0]}", bob), 403, "DENIED")

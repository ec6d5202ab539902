"""/v1/orgs, /v1/namespaces/{ns} and the visibility of namespaces and repositories."""

from __future__ import annotations

from .conftest import Api, expect, unique


def test_admin_adds_orgs_and_users_cannot(api: Api) -> None:
    name = unique("acme")
    body = {"name": name, "public": True}
    assert expect(api.call("POST", "/v1/orgs", api.admin, json=body), 201) == {
        "name": name,
        "kind": "org",
        "public": True,
    }
    expect(api.call("POST", "/v1/orgs", api.admin, json=body), 409, "CONFLICT")
    expect(api.call("POST", "/v1/orgs", api.admin, json={"name": "Bad_"}), 400, "NAME_INVALID")
    expect(api.call("POST", "/v1/orgs", api.admin, json={"name": "a/b"}), 400, "NAME_INVALID")
    alice = api.add_user("alice")
    expect(api.call("POST", "/v1/orgs", alice, json={"name": unique("x")}), 403, "DENIED")
    # A user's name is taken by their namespace.
    expect(api.call("POST", "/v1/orgs", api.admin, json={"name": alice[0]}), 409, "CONFLICT")


def test_org_listing_shows_users_public_orgs_and_their_own(api: Api) -> None:
    public, private, mine = api.add_org(public=True), api.add_org(), api.add_org()
    alice = api.add_user("alice")
    api.grant(mine, "reader", alice[0])
    seen = {org["name"] for org in expect(api.call("GET", "/v1/orgs", alice), 200)}
    assert {public, mine} <= seen
    assert private not in seen
    every = {org["name"] for org in expect(api.call("GET", "/v1/orgs", api.admin), 200)}
    assert {public, private, mine} <= every


def test_get_namespace_hides_private_ones_from_outsiders(api: Api) -> None:
    private, public = api.add_org(), api.add_org(public=True)
    alice, bob = api.add_user("alice"), api.add_user("bob")
    api.grant(private, "reader", alice[0])
    expect(api.call("GET", f"/v1/namespaces/{private}", alice), 200)
    expect(api.call("GET", f"/v1/namespaces/{private}", bob), 404, "NAME_UNKNOWN")
    assert expect(api.call("GET", f"/v1/namespaces/{public}", bob), 200)["public"] is True
    assert expect(api.call("GET", f"/v1/namespaces/{bob[0]}", bob), 200)["kind"] == "user"
    expect(api.call("GET", f"/v1/namespaces/{bob[0]}", alice), 404, "NAME_UNKNOWN")
    expect(api.call("GET", "/v1/namespaces/no-such-ns", api.admin), 404, "NAME_UNKNOWN")
    expect(api.call("GET", "/v1/namespaces/NOPE", api.admin), 400, "NAME_INVALID")


def test_namespace_visibility_by_admins_only(api: Api) -> None:
    org = api.add_org()
    admin, writer = api.add_user("nsadmin"), api.add_user("writer")
    api.grant(org, "admin", admin[0])
    api.grant(org, "writer", writer[0])
    path = f"/v1/namespaces/{org}/visibility"
    assert expect(api.call("PUT", path, admin, json={"public": True}), 200)["public"] is True
    assert expect(api.call("GET", f"/v1/namespaces/{org}", writer), 200)["public"] is True
    expect(api.call("PUT", path, writer, json={"public": False}), 403, "DENIED")
    assert expect(api.call("PUT", path, api.admin, json={"public": False}), 200)["public"] is False
    expect(api.call("PUT", path, api.admin, json={"public": "maybe"}), 400, "INVALID_REQUEST")
    expect(api.call("PUT", path, api.admin, json={}), 400, "INVALID_REQUEST")


def test_owner_sets_their_personal_namespace_visibility(api: Api) -> None:
    alice, bob = api.add_user("alice"), api.add_user("bob")
    path = f"/v1/namespaces/{alice[0]}/visibility"
    assert expect(api.call("PUT", path, alice, json={"public": True}), 200) == {
        "name": alice[0],
        "kind": "user",
        "public": True,
    }
    expect(api.call("PUT", path, bob, json={"public": False}), 403, "DENIED")


def test_missing_namespace_is_403_for_users_and_404_for_admins(api: Api) -> None:
    alice = api.add_user("alice")
    path = "/v1/namespaces/not-there/visibility"
    expect(api.call("PUT", path, alice, json={"public": True}), 403, "DENIED")
    expect(api.call("PUT", path, api.admin, json={"public": True}), 404, "NAME_UNKNOWN")


def test_repository_visibility_override_and_inherit(api: Api) -> None:
    org = api.add_org()
    admin, writer = api.add_user("nsadmin"), api.add_user("writer")
    api.grant(org, "admin", admin[0])
    api.grant(org, "writer", writer[0])
    path = f"/v1/repositories/{org}/team/app/visibility"
    assert expect(api.call("PUT", path, admin, json={"public": True}), 200) == {
        "repository": f"{org}/team/app",
        "public": True,
        "effective": True,
    }
    assert expect(api.call("PUT", path, api.admin, json={"public": None}), 200) == {
        "repository": f"{org}/team/app",
        "public": None,
        "effective": False,
    }
    expect(api.call("PUT", path, writer, json={"public": True}), 403, "DENIED")
    expect(
        api.call("PUT", f"/v1/repositories/{org}/visibility", admin, json={"public": True}),
        400,
        "NAME_INVALID",
    )
    expect(
        api.call("PUT", f"/v1/repositories/{org}/Bad/visibility", admin, json={"public": True}),
        400,
        "NAME_INVALID",
    )
    expect(api.call("PUT", path, admin, json={}), 400, "INVALID_REQUEST")


def test_repository_admin_grant_covers_only_that_repository(api: Api) -> None:
    org = api.add_org()
    alice = api.add_user("alice")
    body = {"user": alice[0], "role": "admin", "repository": f"{org}/app"}
    expect(api.call("POST", f"/v1/namespaces/{org}/members", api.admin, json=body), 201)
    ok = api.call("PUT", f"/v1/repositories/{org}/app/visibility", alice, json={"public": True})
    assert expect(ok, 200)["effective"] is True
    other = api.call(
        "PUT", f"/v1/repositories/{org}/other/visibility", alice, json={"public": True}
    )
    expect(other, 403, "DENIED")
    # Repository admins do not manage the namespace.
    expect(api.call("GET", f"/v1/namespaces/{org}/members", alice), 403, "DENIED")

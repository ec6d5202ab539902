"""/v1/users: the caller, listing, adding and changing users."""

from __future__ import annotations

from .conftest import Api, expect, unique


def test_me_for_a_user_and_an_admin(api: Api) -> None:
    alice = api.add_user("alice")
    assert expect(api.call("GET", "/v1/users/me", alice), 200) == {
        "name": alice[0],
        "kind": "user",
        "admin": False,
    }
    assert expect(api.call("GET", "/v1/users/me", api.admin), 200)["admin"] is True


def test_me_for_a_robot(api: Api) -> None:
    org = api.add_org()
    body = {"name": "bot", "actions": ["pull"]}
    robot = expect(api.call("POST", f"/v1/namespaces/{org}/robots", api.admin, json=body), 201)
    auth = (robot["username"], robot["secret"])
    assert expect(api.call("GET", "/v1/users/me", auth), 200) == {
        "name": f"robot${org}+bot",
        "kind": "robot",
        "admin": False,
    }
    # Robots manage nothing, not even their own namespace.
    expect(api.call("GET", f"/v1/namespaces/{org}/robots", auth), 403, "DENIED")


def test_admin_lists_and_adds_users(api: Api) -> None:
    name = unique("new")
    body = {"name": name, "password": "a-good-password", "admin": False}
    created = expect(api.call("POST", "/v1/users", api.admin, json=body), 201)
    assert created == {"name": name, "admin": False, "disabled": False}
    users = expect(api.call("GET", "/v1/users", api.admin), 200)
    assert {"name": name, "admin": False, "disabled": False} in users
    assert all(set(user) == {"name", "admin", "disabled"} for user in users)
    # The password works at once, and the personal namespace exists (private).
    assert expect(api.call("GET", "/v1/users/me", (name, "a-good-password")), 200)["name"] == name
    namespace = expect(api.call("GET", f"/v1/namespaces/{name}", api.admin), 200)
    assert namespace == {"name": name, "kind": "user", "public": False}


def test_users_cannot_list_add_or_see_other_users(api: Api) -> None:
    alice = api.add_user("alice")
    expect(api.call("GET", "/v1/users", alice), 403, "DENIED")
    body = {"name": unique("x"), "password": "a-good-password"}
    expect(api.call("POST", "/v1/users", alice, json=body), 403, "DENIED")
    expect(api.call("GET", "/v1/users/root", alice), 403, "DENIED")
    assert expect(api.call("GET", f"/v1/users/{alice[0]}", alice), 200)["name"] == alice[0]


def test_add_user_rejects_bad_names_passwords_and_duplicates(api: Api) -> None:
    for bad in ("Upper", "a/b", "-dash", "x" * 65):
        resp = api.call("POST", "/v1/users", api.admin, json={"name": bad, "password": "12345678"})
        code = "INVALID_REQUEST" if len(bad) > 64 else "NAME_INVALID"
        expect(resp, 400, code)
    short = api.call("POST", "/v1/users", api.admin, json={"name": "shorty", "password": "1234"})
    expect(short, 400, "INVALID_REQUEST")
    assert "1234" not in short.text  # the rejected password is never echoed
    extra = {"name": unique("x"), "password": "12345678", "role": "admin"}
    expect(api.call("POST", "/v1/users", api.admin, json=extra), 400, "INVALID_REQUEST")
    alice = api.add_user("alice")
    taken = {"name": alice[0], "password": "12345678"}
    expect(api.call("POST", "/v1/users", api.admin, json=taken), 409, "CONFLICT")
    org = api.add_org()
    taken_by_org = {"name": org, "password": "12345678"}
    expect(api.call("POST", "/v1/users", api.admin, json=taken_by_org), 409, "CONFLICT")


def test_patch_disables_and_enables_a_user(api: Api) -> None:
    name, _ = api.add_user("victim")
    # A token is checked on every request, so disabling shows at once.
    token = expect(
        api.call("POST", f"/v1/users/{name}/tokens", api.admin, json={"name": "t"}), 201
    )["token"]
    expect(api.call("GET", "/v1/users/me", (name, token)), 200)
    changed = expect(
        api.call("PATCH", f"/v1/users/{name}", api.admin, json={"disabled": True}), 200
    )
    assert changed == {"name": name, "admin": False, "disabled": True}
    expect(api.call("GET", "/v1/users/me", (name, token)), 401, "UNAUTHORIZED")
    expect(api.call("PATCH", f"/v1/users/{name}", api.admin, json={"disabled": False}), 200)
    expect(api.call("GET", "/v1/users/me", (name, token)), 200)
    assert expect(api.call("GET", f"/v1/users/{name}", api.admin), 200)["disabled"] is False


def test_patch_makes_an_admin_and_sets_a_password(api: Api) -> None:
    name, _ = api.add_user("promoted")
    body = {"admin": True, "password": "brand-new-password"}
    assert expect(api.call("PATCH", f"/v1/users/{name}", api.admin, json=body), 200)["admin"]
    me = expect(api.call("GET", "/v1/users/me", (name, "brand-new-password")), 200)
    assert me == {"name": name, "kind": "user", "admin": True}
    expect(api.call("GET", "/v1/users", (name, "brand-new-password")), 200)


def test_patch_denials_and_errors(api: Api) -> None:
    alice = api.add_user("alice")
    expect(api.call("PATCH", f"/v1/users/{alice[0]}", alice, json={"admin": True}), 403, "DENIED")
    expect(api.call("PATCH", "/v1/users/root", alice, json={"disabled": True}), 403, "DENIED")
    expect(
        api.call("PATCH", "/v1/users/nobody-here", api.admin, json={"admin": True}),
        404,
        "NAME_UNKNOWN",
    )
    expect(
        api.call("PATCH", f"/v1/users/{alice[0]}", api.admin, json={"password": "short"}),
        400,
        "INVALID_REQUEST",
    )
    # An admin cannot lock themselves out.
    expect(api.call("PATCH", "/v1/users/root", api.admin, json={"disabled": True}), 409, "CONFLICT")
    expect(api.call("PATCH", "/v1/users/root", api.admin, json={"admin": False}), 409, "CONFLICT")
    expect(api.call("GET", "/v1/users/nobody-here", api.admin), 404, "NAME_UNKNOWN")

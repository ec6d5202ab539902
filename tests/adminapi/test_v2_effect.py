"""Changes made through the admin API take effect on /v2 of the same registry.

Grants and visibility are cached by the registry for about two seconds, so those checks poll;
robots and tokens are checked on every request, so their effects are immediate.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from tests.api.oci import manifest_path, push_image, uploads_path

from .conftest import Api, Auth, expect

SETTLE_SECONDS = 5.0


def eventually(status: int, request: Callable[[], httpx.Response]) -> httpx.Response:
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        resp = request()
        if resp.status_code == status or time.monotonic() > deadline:
            assert resp.status_code == status, f"{resp.status_code} {resp.text}"
            return resp
        time.sleep(0.1)


def registry(api: Api, auth: Auth | None = None) -> httpx.Client:
    return httpx.Client(base_url=api.url, auth=auth, timeout=30)


def test_granting_writer_lets_a_user_push_and_revoking_stops_it(api: Api) -> None:
    org = api.add_org()
    bob = api.add_user("bob")
    repo = f"{org}/app"
    with registry(api, bob) as http:
        expect(http.post(uploads_path(repo)), 403, "DENIED")
        api.grant(org, "writer", bob[0])
        eventually(202, lambda: http.post(uploads_path(repo)))
        pushed = push_image(http, repo, "v1")
        assert http.get(manifest_path(repo, "v1")).content == pushed.body
        expect(api.call("DELETE", f"/v1/namespaces/{org}/members/users/{bob[0]}", api.admin), 204)
        eventually(403, lambda: http.post(uploads_path(repo)))


def test_a_robot_made_through_the_api_pushes_within_its_scope(api: Api) -> None:
    org = api.add_org()
    body = {"name": "ci", "actions": ["pull", "push"], "repositories": [f"{org}/app"]}
    robot = expect(api.call("POST", f"/v1/namespaces/{org}/robots", api.admin, json=body), 201)
    with registry(api, (robot["username"], robot["secret"])) as http:
        push_image(http, f"{org}/app", "v1")
        expect(http.post(uploads_path(f"{org}/other")), 403, "DENIED")
        expect(api.call("DELETE", f"/v1/namespaces/{org}/robots/ci", api.admin), 204)
        expect(http.get(manifest_path(f"{org}/app", "v1")), 401, "UNAUTHORIZED")


def test_a_token_made_through_the_api_is_a_password_on_v2(api: Api) -> None:
    alice = api.add_user("alice")
    made = api.call("POST", f"/v1/users/{alice[0]}/tokens", alice, json={"name": "ci"})
    token = expect(made, 201)["token"]
    with registry(api, (alice[0], token)) as http:
        push_image(http, f"{alice[0]}/app", "v1")  # her own namespace
        expect(api.call("DELETE", f"/v1/users/{alice[0]}/tokens/ci", alice), 204)
        expect(http.get(manifest_path(f"{alice[0]}/app", "v1")), 401, "UNAUTHORIZED")


def test_making_a_namespace_public_opens_anonymous_pulls(api: Api) -> None:
    org = api.add_org()
    repo, hidden = f"{org}/app", f"{org}/hidden"
    with registry(api, api.admin) as http:
        push_image(http, repo, "v1")
        push_image(http, hidden, "v1")
    with registry(api) as anonymous:
        expect(anonymous.get(manifest_path(repo, "v1")), 401, "UNAUTHORIZED")
        # A repository's own setting beats its namespace's.
        hidden_path = f"/v1/repositories/{hidden}/visibility"
        expect(api.call("PUT", hidden_path, api.admin, json={"public": False}), 200)
        path = f"/v1/namespaces/{org}/visibility"
        expect(api.call("PUT", path, api.admin, json={"public": True}), 200)
        eventually(200, lambda: anonymous.get(manifest_path(repo, "v1")))
        expect(anonymous.get(manifest_path(hidden, "v1")), 401, "UNAUTHORIZED")

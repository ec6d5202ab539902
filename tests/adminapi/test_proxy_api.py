"""/api/v1/proxies: registry admins manage pull-through caches; the password is write-only."""

from __future__ import annotations

import os

from .conftest import Api, expect


def test_proxy_rules_lifecycle(api: Api) -> None:
    namespace = f"cache{os.urandom(3).hex()}"
    body = {
        "namespace": namespace,
        "upstream_url": "https://registry-1.docker.io/",
        "remote_prefix": "library",
        "username": "someone",
        "password": "s3cret-value",
        "tag_ttl_seconds": 60,
    }
    created = expect(api.call("POST", "/v1/proxies", api.admin, json=body), 201)
    assert created["upstream_url"] == "https://registry-1.docker.io"
    assert created["mirror_of"] == "docker.io"
    assert created["has_password"] is True
    assert created["mode"] == "local-first"
    assert created["serve_stale_on_error"] is True
    assert created["serve_stale_on_404"] is False
    assert "password" not in created and "s3cret-value" not in str(created)
    expect(api.call("POST", "/v1/proxies", api.admin, json=body), 409, "CONFLICT")

    listed = expect(api.call("GET", "/v1/proxies", api.admin), 200)
    assert namespace in [p["namespace"] for p in listed["proxies"]]
    assert "s3cret-value" not in str(listed)

    changed = expect(
        api.call(
            "PATCH",
            f"/v1/proxies/{namespace}",
            api.admin,
            json={"mode": "upstream-first", "password": None, "serve_stale_on_404": True},
        ),
        200,
    )
    assert changed["mode"] == "upstream-first"
    assert changed["has_password"] is False
    assert changed["serve_stale_on_404"] is True
    assert changed["tag_ttl_seconds"] == 60
    shown = expect(api.call("GET", f"/v1/proxies/{namespace}", api.admin), 200)
    assert shown == changed

    expect(api.call("DELETE", f"/v1/proxies/{namespace}", api.admin), 204)
    expect(api.call("GET", f"/v1/proxies/{namespace}", api.admin), 404, "NAME_UNKNOWN")
    expect(api.call("DELETE", f"/v1/proxies/{namespace}", api.admin), 404, "NAME_UNKNOWN")


def test_invalid_rules_are_refused(api: Api) -> None:
    bad_url = {"namespace": "cachebad", "upstream_url": "ftp://example.com"}
    expect(api.call("POST", "/v1/proxies", api.admin, json=bad_url), 400, "INVALID_REQUEST")
    bad_name = {"namespace": "a/b", "upstream_url": "https://example.com"}
    expect(api.call("POST", "/v1/proxies", api.admin, json=bad_name), 400, "NAME_INVALID")
    bad_mode = {"namespace": "cachebad", "upstream_url": "https://x.io", "mode": "sometimes"}
    assert api.call("POST", "/v1/proxies", api.admin, json=bad_mode).status_code in (400, 422)


def test_only_registry_admins_manage_proxies(api: Api) -> None:
    user = api.add_user()
    body = {"namespace": f"cache{os.urandom(3).hex()}", "upstream_url": "https://x.io"}
    expect(api.call("POST", "/v1/proxies", user, json=body), 403, "DENIED")
    expect(api.call("GET", "/v1/proxies", user), 403, "DENIED")
    expect(api.call("GET", "/v1/proxies"), 401, "UNAUTHORIZED")

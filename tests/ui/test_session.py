"""Cookie sessions of the admin API, for the web UI: signing in with basic credentials,
cookie flags, CSRF tokens on changes, idle timeout, sign-out, and who may not sign in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveRegistry

from cargohold.http.api.session import COOKIE, Session, Sessions

ADMIN = ("root", "root-password-1")
USER = ("uma", "uma-password-1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    data_dir = tmp_path_factory.mktemp("session") / "data"
    first_admin = {"CARGOHOLD_ADMIN_USER": ADMIN[0], "CARGOHOLD_ADMIN_PASSWORD": ADMIN[1]}
    live = LiveRegistry(data_dir, extra_env=first_admin)
    with httpx.Client(base_url=f"{live.url}/api/v1", auth=ADMIN) as api:
        for path, body in (
            ("/users", {"name": USER[0], "password": USER[1]}),
            ("/users", {"name": "dan", "password": "dan-password-1"}),
            ("/orgs", {"name": "team"}),
        ):
            assert api.post(path, json=body).status_code == 201
    try:
        yield live
    finally:
        live.stop()


def sign_in(server: LiveRegistry, user: tuple[str, str]) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url)
    response = client.post("/api/v1/session", auth=user)
    assert response.status_code == 200, response.text
    return client, response.json()["csrf_token"]


def test_sign_in_sets_a_strict_http_only_cookie(server: LiveRegistry):
    response = httpx.post(f"{server.url}/api/v1/session", auth=USER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["username"] == USER[0] and body["is_admin"] is False
    assert body["idle_timeout_seconds"] == 30 * 60
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert "max-age=1800" in lowered


def test_the_cookie_authenticates_reads(server: LiveRegistry):
    client, csrf = sign_in(server, USER)
    with closing(client):
        me = client.get("/api/v1/users/me")
        assert me.status_code == 200 and me.json()["name"] == USER[0]
        # A fresh cookie is not renewed (a request sent before signing out must not bring
        # the session back); one a minute old is.
        assert COOKIE not in me.headers.get("set-cookie", "")
        session = client.get("/api/v1/session")
        assert session.json()["csrf_token"] == csrf


def test_changes_by_cookie_need_the_csrf_token(server: LiveRegistry):
    client, csrf = sign_in(server, USER)
    with closing(client):
        body = {"name": "t1"}
        refused = client.post(f"/api/v1/users/{USER[0]}/tokens", json=body)
        assert refused.status_code == 403, refused.text
        assert "X-CSRF-Token" in refused.json()["errors"][0]["message"]
        wrong = client.post(
            f"/api/v1/users/{USER[0]}/tokens", json=body, headers={"X-CSRF-Token": "nope"}
        )
        assert wrong.status_code == 403
        made = client.post(
            f"/api/v1/users/{USER[0]}/tokens", json=body, headers={"X-CSRF-Token": csrf}
        )
        assert made.status_code == 201, made.text


def test_a_forged_or_missing_cookie_is_401_without_a_dialog_for_the_ui(server: LiveRegistry):
    forged = httpx.get(f"{server.url}/api/v1/users/me", cookies={COOKIE: "gAAAAAforged"})
    assert forged.status_code == 401
    assert forged.headers["www-authenticate"] == 'Basic realm="cargohold"'
    ui = httpx.get(f"{server.url}/api/v1/session", headers={"X-Cargohold-UI": "1"})
    assert ui.status_code == 401
    assert "www-authenticate" not in ui.headers
    bad = httpx.post(
        f"{server.url}/api/v1/session", auth=(USER[0], "wrong"), headers={"X-Cargohold-UI": "1"}
    )
    assert bad.status_code == 401 and "www-authenticate" not in bad.headers


def test_sign_out_needs_the_token_and_clears_the_cookie(server: LiveRegistry):
    client, csrf = sign_in(server, USER)
    with closing(client):
        assert client.delete("/api/v1/session").status_code == 403
        out = client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert "max-age=0" in out.headers["set-cookie"].lower()
        assert client.get("/api/v1/users/me").status_code == 401


def test_a_disabled_users_session_ends(server: LiveRegistry):
    client, _ = sign_in(server, ("dan", "dan-password-1"))
    with closing(client):
        assert client.get("/api/v1/users/me").status_code == 200
        disabled = httpx.patch(
            f"{server.url}/api/v1/users/dan", json={"disabled": True}, auth=ADMIN
        )
        assert disabled.status_code == 200, disabled.text
        assert client.get("/api/v1/users/me").status_code == 401


def test_robots_cannot_sign_in(server: LiveRegistry):
    made = httpx.post(
        f"{server.url}/api/v1/namespaces/team/robots",
        json={"name": "ci", "actions": ["pull"]},
        auth=ADMIN,
    )
    assert made.status_code == 201, made.text
    robot = (made.json()["username"], made.json()["secret"])
    response = httpx.post(f"{server.url}/api/v1/session", auth=robot)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_sessions_expire_when_idle(tmp_path: Path):
    sessions = Sessions(b"k" * 32, idle_seconds=60)
    cookie = sessions.seal(Session("uma", "csrf"))
    now = time.time()
    assert sessions.open(cookie, now + 30) == Session("uma", "csrf")
    assert sessions.open(cookie, now + 120) is None
    assert not sessions.stale(cookie, now + 1)
    assert sessions.stale(cookie, now + 7)  # a tenth of the idle timeout
    assert not sessions.stale("not a token")
    other = Sessions(b"x" * 32, idle_seconds=60)
    assert other.open(cookie) is None  # another key: forged
    assert sessions.open("not a token") is None


def test_an_old_cookie_is_renewed(server: LiveRegistry):
    key = (server.data_dir / "keys" / "secrets.key").read_bytes().strip()
    sessions = Sessions(key, idle_seconds=30 * 60)
    # Sealed two minutes ago (Fernet tokens carry their time): still valid, due a renewal.
    old = sessions._fernet.encrypt_at_time(
        b'{"u": "uma", "c": "csrf"}', int(time.time()) - 120
    ).decode()
    assert sessions.open(old) == Session("uma", "csrf")
    response = httpx.get(f"{server.url}/api/v1/users/me", cookies={COOKIE: old})
    assert response.status_code == 200
    renewed = response.headers["set-cookie"]
    assert renewed.startswith(f"{COOKIE}=") and "max-age=1800" in renewed.lower()
    assert renewed.split(";")[0] != f"{COOKIE}={old}"

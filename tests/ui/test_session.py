"""Cookie sessions of the admin API, for the web UI: signing in with basic credentials,
cookie flags, CSRF tokens on changes, idle timeout, sign-out, and who may not sign in."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine, update
from tests.conftest import LiveRegistry, scaleout_environment

from cargohold.http.api.session import COOKIE, Session, Sessions
from cargohold.storage.meta.models import ui_sessions
from cargohold.storage.meta.sql_sessions import id_hash

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
            ("/users", {"name": "dan2", "password": "dan2-password-1"}),
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


def test_cookies_expire_when_idle():
    sessions = Sessions(b"k" * 32, idle_seconds=60)
    cookie = sessions.seal(Session("id", "uma", "csrf"))
    now = time.time()
    assert sessions.unseal(cookie, now + 30) == Session("id", "uma", "csrf")
    assert sessions.unseal(cookie, now + 120) is None
    assert not sessions.stale(cookie, now + 1)
    assert sessions.stale(cookie, now + 7)  # a tenth of the idle timeout
    assert not sessions.stale("not a token")
    other = Sessions(b"x" * 32, idle_seconds=60)
    assert other.unseal(cookie) is None  # another key: forged
    assert sessions.unseal("not a token") is None


def test_an_old_cookie_is_renewed(server: LiveRegistry):
    client, csrf = sign_in(server, USER)
    with closing(client):
        key = (server.data_dir / "keys" / "secrets.key").read_bytes().strip()
        sessions = Sessions(key, idle_seconds=30 * 60)
        session = sessions.unseal(client.cookies[COOKIE])
        assert session is not None and session.csrf == csrf
        # The same session sealed two minutes ago (Fernet tokens carry their time): still
        # valid, due a renewal.
        payload = json.dumps({"s": session.id, "u": session.user, "c": session.csrf})
        old = sessions._fernet.encrypt_at_time(payload.encode(), int(time.time()) - 120).decode()
        response = httpx.get(f"{server.url}/api/v1/users/me", cookies={COOKIE: old})
        assert response.status_code == 200
        renewed = response.headers["set-cookie"]
        assert renewed.startswith(f"{COOKIE}=") and "max-age=1800" in renewed.lower()
        assert renewed.split(";")[0] != f"{COOKIE}={old}"


def test_a_cookie_of_an_unknown_session_is_refused(server: LiveRegistry):
    """A well-sealed cookie is not enough: the session must exist in the database."""
    key = (server.data_dir / "keys" / "secrets.key").read_bytes().strip()
    made_up = Sessions(key, idle_seconds=30 * 60).seal(Session("no-such-id", USER[0], "c"))
    response = httpx.get(f"{server.url}/api/v1/users/me", cookies={COOKIE: made_up})
    assert response.status_code == 401


def test_a_copied_cookie_stops_working_after_sign_out(server: LiveRegistry):
    client, csrf = sign_in(server, USER)
    with closing(client):
        copied = client.cookies[COOKIE]
        assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    # The browser dropped the cookie; whoever copied it gets nothing with it either.
    again = httpx.get(f"{server.url}/api/v1/users/me", cookies={COOKIE: copied})
    assert again.status_code == 401
    changes = httpx.post(
        f"{server.url}/api/v1/users/{USER[0]}/tokens",
        json={"name": "after-sign-out"},
        cookies={COOKIE: copied},
        headers={"X-CSRF-Token": csrf},
    )
    assert changes.status_code == 401


def test_list_and_end_sessions(server: LiveRegistry):
    laptop, laptop_csrf = sign_in(server, USER)
    phone, _ = sign_in(server, USER)
    with closing(laptop), closing(phone):
        listed = laptop.get(f"/api/v1/users/{USER[0]}/sessions")
        assert listed.status_code == 200, listed.text
        rows = listed.json()
        assert len(rows) >= 2
        current = [row for row in rows if row["current"]]
        assert len(current) == 1 and current[0]["address"] == "127.0.0.1"
        assert "python-httpx" in current[0]["user_agent"]
        others = [row["id"] for row in rows if not row["current"]]
        # Someone else's sessions are not theirs to see or end.
        assert laptop.get("/api/v1/users/dan/sessions").status_code == 403
        # Ending needs the CSRF token like every change.
        url = f"/api/v1/users/{USER[0]}/sessions"
        assert laptop.delete(f"{url}/{others[0]}").status_code == 403
        headers = {"X-CSRF-Token": laptop_csrf}
        for session_id in others:
            assert laptop.delete(f"{url}/{session_id}", headers=headers).status_code == 204
        assert laptop.delete(f"{url}/{others[0]}", headers=headers).status_code == 404
        assert phone.get("/api/v1/users/me").status_code == 401
        assert laptop.get("/api/v1/users/me").status_code == 200
        remaining = laptop.get(url).json()
        assert [row["current"] for row in remaining] == [True]


def test_signing_in_again_replaces_the_browsers_session(server: LiveRegistry):
    client, _ = sign_in(server, ("dan2", "dan2-password-1"))
    with closing(client):
        first = client.cookies[COOKIE]
        again = client.post("/api/v1/session", auth=("dan2", "dan2-password-1"))
        assert again.status_code == 200
        assert client.cookies[COOKIE] != first
        assert len(client.get("/api/v1/users/dan2/sessions").json()) == 1
        assert (
            httpx.get(f"{server.url}/api/v1/users/me", cookies={COOKIE: first}).status_code == 401
        )


def test_sign_out_everywhere_else(server: LiveRegistry):
    first, first_csrf = sign_in(server, USER)
    second, _ = sign_in(server, USER)
    with closing(first), closing(second):
        ended = first.delete(
            f"/api/v1/users/{USER[0]}/sessions", headers={"X-CSRF-Token": first_csrf}
        )
        assert ended.status_code == 200 and ended.json()["ended"] >= 1
        assert second.get("/api/v1/users/me").status_code == 401
        assert first.get("/api/v1/users/me").status_code == 200


def test_an_admin_ends_a_users_sessions(server: LiveRegistry):
    client, _ = sign_in(server, USER)
    with closing(client):
        api = httpx.Client(base_url=f"{server.url}/api/v1", auth=ADMIN)
        with closing(api):
            rows = api.get(f"/users/{USER[0]}/sessions").json()
            assert rows and not any(row["current"] for row in rows)
            for row in rows:
                assert api.delete(f"/users/{USER[0]}/sessions/{row['id']}").status_code == 204
        assert client.get("/api/v1/users/me").status_code == 401


def test_a_new_password_ends_the_users_sessions(server: LiveRegistry):
    api = httpx.Client(base_url=f"{server.url}/api/v1", auth=ADMIN)
    with closing(api):
        assert (
            api.post("/users", json={"name": "pat", "password": "pat-password-1"}).status_code
            == 201
        )
        client, _ = sign_in(server, ("pat", "pat-password-1"))
        with closing(client):
            assert client.get("/api/v1/users/me").status_code == 200
            changed = api.patch("/users/pat", json={"password": "pat-password-2"})
            assert changed.status_code == 200, changed.text
            assert client.get("/api/v1/users/me").status_code == 401
        again, _ = sign_in(server, ("pat", "pat-password-2"))
        again.close()


def test_a_disabled_user_stays_signed_out_when_enabled_again(server: LiveRegistry):
    api = httpx.Client(base_url=f"{server.url}/api/v1", auth=ADMIN)
    with closing(api):
        assert (
            api.post("/users", json={"name": "eve", "password": "eve-password-1"}).status_code
            == 201
        )
        client, _ = sign_in(server, ("eve", "eve-password-1"))
        with closing(client):
            assert api.patch("/users/eve", json={"disabled": True}).status_code == 200
            assert api.patch("/users/eve", json={"disabled": False}).status_code == 200
            assert client.get("/api/v1/users/me").status_code == 401


def test_the_server_ends_idle_sessions(server: LiveRegistry):
    """The database's last use decides too: a session unused for longer than the idle
    timeout is refused even with a fresh cookie."""
    client, _ = sign_in(server, USER)
    with closing(client):
        key = (server.data_dir / "keys" / "secrets.key").read_bytes().strip()
        session = Sessions(key, idle_seconds=30 * 60).unseal(client.cookies[COOKIE])
        assert session is not None
        engine = create_engine(f"sqlite:///{server.data_dir / 'meta.db'}")
        try:
            with engine.begin() as conn:
                conn.execute(
                    update(ui_sessions)
                    .where(ui_sessions.c.id_hash == id_hash(session.id))
                    .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=31))
                )
        finally:
            engine.dispose()
        assert client.get("/api/v1/users/me").status_code == 401


def test_replicas_share_sessions(tmp_path_factory: pytest.TempPathFactory):
    """Scale-out: a session started on one replica works on another, and signing out on
    either ends it on both."""
    with ExitStack() as stack:
        env = {
            **scaleout_environment(stack),
            "CARGOHOLD_SECRETS_KEY_FILE": str(tmp_path_factory.mktemp("keys") / "secrets.key"),
            "CARGOHOLD_SIGNING_KEYS_DIR": str(tmp_path_factory.mktemp("signing")),
            "CARGOHOLD_TEST_WORKERS": "1",
            "CARGOHOLD_ADMIN_USER": ADMIN[0],
            "CARGOHOLD_ADMIN_PASSWORD": ADMIN[1],
        }
        a = LiveRegistry(tmp_path_factory.mktemp("replica-a") / "data", env)
        stack.callback(a.stop)
        b = LiveRegistry(tmp_path_factory.mktemp("replica-b") / "data", env)
        stack.callback(b.stop)
        client, csrf = sign_in(a, ADMIN)
        with closing(client):
            cookie = client.cookies[COOKIE]
            on_b = httpx.get(f"{b.url}/api/v1/users/me", cookies={COOKIE: cookie})
            assert on_b.status_code == 200, on_b.text
            out = httpx.delete(
                f"{b.url}/api/v1/session", cookies={COOKIE: cookie}, headers={"X-CSRF-Token": csrf}
            )
            assert out.status_code == 204
            assert client.get("/api/v1/users/me").status_code == 401

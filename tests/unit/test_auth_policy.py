"""Access decisions on a real store: roles, teams, visibility, robots, admins."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conftest import scratch_postgres_database

from cargohold.auth.authenticate import Authenticator
from cargohold.auth.policy import AccessPolicy
from cargohold.auth.principal import ANONYMOUS, Principal
from cargohold.auth.roles import Role
from cargohold.auth.secrets import TOKEN_PREFIX, hash_password, hash_secret, new_secret
from cargohold.auth.store import AuthError, AuthStore
from cargohold.storage.meta import schema
from cargohold.storage.meta.sqlbase import create_sql_engine, now

PULL, PUSH, DELETE = "pull", "push", "delete"
USERS = ("owner", "reader", "writer", "maint", "teamuser", "outsider", "root")
# argon2 is slow on purpose: hash each test password once per module, not per test.
HASHES = {name: hash_password("password-" + name) for name in USERS}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuthStore]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'auth.db'}"
        else:
            url = stack.enter_context(scratch_postgres_database())
        yield from _populated(url)


def _populated(url: str) -> Iterator[AuthStore]:
    engine = create_sql_engine(url)
    schema.upgrade(engine)
    auth = AuthStore(engine)
    for name in USERS:
        auth.add_user(name, HASHES[name], is_admin=name == "root")
    auth.add_org("acme", public=False)
    auth.add_org("open", public=True)
    auth.grant("acme", Role.READER, user="reader")
    auth.grant("acme", Role.WRITER, user="writer")
    auth.grant("acme", Role.MAINTAINER, user="maint")
    auth.add_team("acme", "devs")
    auth.add_team_member("acme", "devs", "teamuser")
    auth.grant("acme", Role.WRITER, team="devs", repository="acme/app")
    yield auth
    auth.close()


def user(store: AuthStore, name: str) -> Principal:
    record = store.get_user(name)
    assert record is not None
    return Principal("user", name, user_id=record.id, is_admin=record.is_admin)


@pytest.mark.parametrize(
    ("who", "repository", "expected"),
    [
        ("reader", "acme/app", {PULL}),
        ("writer", "acme/app", {PULL, PUSH}),
        ("maint", "acme/app", {PULL, PUSH, DELETE}),
        ("teamuser", "acme/app", {PULL, PUSH}),
        ("teamuser", "acme/other", set()),
        ("outsider", "acme/app", set()),
        ("outsider", "open/app", {PULL}),
        ("owner", "owner/app", {PULL, PUSH, DELETE}),
        ("outsider", "owner/app", set()),
        ("root", "acme/app", {PULL, PUSH, DELETE}),
        ("root", "nobody/app", {PULL, PUSH, DELETE}),
        ("writer", "nobody/app", set()),
    ],
)
def test_user_decisions(store: AuthStore, who: str, repository: str, expected: set[str]) -> None:
    policy = AccessPolicy(store, anonymous_pull=True)
    assert policy.allowed(user(store, who), repository) == expected


def test_anonymous_pull_follows_setting_and_visibility(store: AuthStore) -> None:
    assert AccessPolicy(store, anonymous_pull=True).allowed(ANONYMOUS, "open/x") == {PULL}
    assert AccessPolicy(store, anonymous_pull=False).allowed(ANONYMOUS, "open/x") == set()
    assert AccessPolicy(store, anonymous_pull=True).allowed(ANONYMOUS, "acme/x") == set()


def test_repository_override_beats_namespace(store: AuthStore) -> None:
    store.set_repository_public("acme/shared", True)
    store.set_repository_public("open/secret", False)
    policy = AccessPolicy(store, anonymous_pull=True)
    assert policy.allowed(ANONYMOUS, "acme/shared") == {PULL}
    assert policy.allowed(ANONYMOUS, "open/secret") == set()
    store.set_repository_public("acme/shared", None)
    assert AccessPolicy(store, anonymous_pull=True).allowed(ANONYMOUS, "acme/shared") == set()


def test_robot_scope(store: AuthStore) -> None:
    secret = new_secret()
    store.add_robot("acme", "ci", hash_secret(secret), {PULL, PUSH}, ["acme/app"], None)
    robot = Authenticator(store).login("robot$acme+ci", secret)
    assert robot is not None and robot.kind == "robot"
    policy = AccessPolicy(store, anonymous_pull=True)
    assert policy.allowed(robot, "acme/app") == {PULL, PUSH}
    assert policy.allowed(robot, "acme/other") == set()
    assert policy.allowed(robot, "open/app") == {PULL}


def test_credentials(store: AuthStore) -> None:
    auth = Authenticator(store)
    assert auth.login("reader", "password-reader") is not None
    assert auth.login("reader", "wrong") is None
    assert auth.login("ghost", "password-reader") is None
    token = new_secret(TOKEN_PREFIX)
    store.add_token("reader", "laptop", hash_secret(token), now() + timedelta(days=1))
    assert auth.login("reader", token) == user(store, "reader")
    assert auth.login("writer", token) is None  # a token belongs to its user only
    store.revoke_token("reader", "laptop")
    assert auth.login("reader", token) is None


def test_expired_and_revoked_robots(store: AuthStore) -> None:
    auth = Authenticator(store)
    old, live = new_secret(), new_secret()
    store.add_robot("acme", "old", hash_secret(old), {PULL}, [], now() - timedelta(seconds=1))
    store.add_robot("acme", "live", hash_secret(live), {PULL}, [], None)
    assert auth.login("robot$acme+old", old) is None
    assert auth.login("robot$acme+live", live) is not None
    assert auth.login("robot$acme+live", old) is None
    store.revoke_robot("acme", "live")
    assert auth.login("robot$acme+live", live) is None


def test_management_errors_are_explained(store: AuthStore) -> None:
    with pytest.raises(AuthError, match="taken"):
        store.add_org("reader", public=False)
    with pytest.raises(AuthError, match="no namespace"):
        store.grant("ghost", Role.READER, user="reader")
    with pytest.raises(AuthError, match="no user"):
        store.grant("acme", Role.READER, user="ghost")

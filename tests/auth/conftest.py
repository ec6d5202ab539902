"""Fixtures for the access-control tests: live servers with users, orgs, teams and robots.

Everything is set up through the real ``cargohold`` CLI (``user add``, ``org add``, ``member
add``, ...) against the server's data directory, and checked over HTTP. Entities created before
the server starts are visible at once; after a CLI change on a running server, call
:meth:`Realm.sync` (the server picks changes up within ~2 s).

The session-wide :func:`world` server holds the fixed cast of the access matrix:

* orgs ``pubco`` (public), ``privco`` (private) and ``otherco`` (private);
* users ``reader``, ``writer``, ``maintainer`` and ``orgadmin`` with that role in both pubco and
  privco; ``root`` (registry admin); ``outsider`` (writer in otherco only);
* robots ``robot$<ns>+puller`` (pull) and ``robot$<ns>+pusher`` (pull,push) in pubco and privco;
* a personal access token ``ci`` of ``writer``;
* an image tagged ``v1`` in ``pubco/app``, ``privco/app`` and ``otherco/app``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from tests.api.oci import Pushed, push_image

from .creds import ANONYMOUS, Principal
from .realm import Realm

ROLES = ("reader", "writer", "maintainer", "admin")


@dataclass
class World:
    realm: Realm
    users: dict[str, Principal]
    robots: dict[tuple[str, str], Principal]
    pat: Principal
    images: dict[str, Pushed]

    @property
    def root(self) -> Principal:
        return self.users["root"]

    def principal(self, label: str, namespace: str) -> Principal:
        """A matrix principal; robots are the ones of ``namespace``."""
        if label == "anonymous":
            return ANONYMOUS
        if label == "writer_pat":
            return self.pat
        if label in ("robot_pull", "robot_push"):
            return self.robots[(namespace, label.removeprefix("robot_"))]
        name = {"org_admin": "orgadmin", "registry_admin": "root", "other_org": "outsider"}
        return self.users[name.get(label, label)]


def seed(realm: Realm, admin: Principal, repo: str, tag: str = "v1") -> Pushed:
    """Push a small image as ``admin`` (basic auth)."""
    with realm.client(admin) as http:
        return push_image(http, repo, tag)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    realm = Realm(tmp_path_factory.mktemp("auth-world"))
    users = {"root": realm.add_user("root", admin=True)}  # first: creates the database
    names = ("reader", "writer", "maintainer", "orgadmin", "outsider")
    created = realm.parallel(
        *(partial(realm.add_user, name) for name in names),
        partial(realm.add_org, "pubco", public=True),
        partial(realm.add_org, "privco"),
        partial(realm.add_org, "otherco"),
        realm.start,  # meanwhile; root exists already, so access control is on from the start
    )
    users.update(zip(names, created, strict=False))
    robot_keys = [(ns, kind) for ns in ("pubco", "privco") for kind in ("pull", "push")]
    calls: list[Callable[[], Any]] = [
        partial(realm.add_robot, ns, f"{kind}er", "pull" if kind == "pull" else "pull,push")
        for ns, kind in robot_keys
    ]
    calls.append(partial(realm.add_token, users["writer"], "ci"))
    calls.append(partial(realm.add_member, "otherco", "writer", user="outsider"))
    for ns in ("pubco", "privco"):
        for role, user in zip(ROLES, ("reader", "writer", "maintainer", "orgadmin"), strict=True):
            calls.append(partial(realm.add_member, ns, role, user=user))
    results = realm.parallel(*calls)
    robots = dict(zip(robot_keys, results, strict=False))
    pat = results[len(robot_keys)]
    try:
        images = {ns: seed(realm, users["root"], f"{ns}/app")
                  for ns in ("pubco", "privco", "otherco")}
        yield World(realm, users, robots, pat, images)
    finally:
        realm.stop()


@dataclass
class Strict:
    """A server with anonymous pull off, a custom token service name and a 120 s token TTL."""

    realm: Realm
    user: Principal
    admin: Principal
    image: Pushed
    service: str = "strict-svc"
    ttl: int = 120


@pytest.fixture(scope="session")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strict]:
    env = {"CARGOHOLD_ANONYMOUS_PULL": "false", "CARGOHOLD_TOKEN_SERVICE": "strict-svc",
           "CARGOHOLD_TOKEN_TTL": "120"}
    realm = Realm(tmp_path_factory.mktemp("auth-strict"), env)
    admin = realm.add_user("boss", admin=True)
    user, *_ = realm.parallel(partial(realm.add_user, "carol"),
                              partial(realm.add_org, "opendoor", public=True), realm.start)
    try:
        yield Strict(realm, user, admin, seed(realm, admin, "opendoor/app"))
    finally:
        realm.stop()

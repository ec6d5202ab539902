"""Visibility, grants and credentials beyond the matrix.

No existence leak, repository visibility overrides and ``inherit``, anonymous pull switched
off, catalog filtering, team and repository-scoped grants, robot limits, personal and missing
namespaces, cross-repository mounts, revoked and expired robots and personal access tokens.
These run on the shared ``world`` server; what they add with the CLI is set up once per module
(then one :meth:`Realm.sync`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import httpx
import pytest
from tests.api.oci import (
    OCI_MANIFEST,
    blob_path,
    describe,
    error_codes,
    manifest_path,
    push_image,
    random_bytes,
    referrers_path,
    tags_path,
    upload_blob,
    uploads_path,
)

from .conftest import Strict, World, seed
from .creds import ANONYMOUS, Principal, catalog, get_token, granted, scope


@dataclass
class Cast:
    world: World
    dev1: Principal
    loner: Principal
    scoped: Principal
    onlyone: Principal
    cleaner: Principal
    doomed_robot: Principal
    doomed_pat: Principal
    stale_robot: Principal
    stale_pat: Principal

    def client(self, principal: Principal = ANONYMOUS, token: str | None = None
               ) -> httpx.Client:
        return self.world.realm.client(principal, token)


@pytest.fixture(scope="module")
def cast(world: World) -> Iterator[Cast]:
    realm, root = world.realm, world.root
    dev1, loner, scoped, *_ = realm.parallel(
        *(partial(realm.add_user, name) for name in ("dev1", "loner", "scoped")),
        partial(realm.add_org, "teamco"),
        partial(realm.add_org, "flipco"),
    )

    def team() -> None:
        realm.add_team("teamco", "devs", "dev1")
        realm.add_member("teamco", "writer", team="devs")

    made = realm.parallel(
        partial(realm.add_robot, "teamco", "onlyone", "pull,push", repositories=["teamco/one"]),
        partial(realm.add_robot, "teamco", "cleaner", "pull,push,delete"),
        partial(realm.add_robot, "teamco", "doomed", "pull"),
        partial(realm.add_token, dev1, "doomed"),
        partial(realm.add_robot, "teamco", "stale", "pull", expires_in_days=1, days_ago=3),
        partial(realm.add_token, dev1, "stale", expires_in_days=1, days_ago=3),
        team,
        partial(realm.add_member, "teamco", "reader", user="scoped", repository="teamco/one"),
        partial(realm.set_visibility, "privco/shown", "public"),
        partial(realm.set_visibility, "pubco/hidden", "private"),
    )
    for repo in ("teamco/one", "teamco/two", "privco/shown", "pubco/hidden", "flipco/app"):
        seed(realm, root, repo)
    cast = Cast(world, dev1, loner, scoped, *made[:6])
    realm.sync()
    yield cast


def status(http: httpx.Client, path: str, method: str = "GET") -> int:
    return http.request(method, path, headers={"Accept": OCI_MANIFEST}).status_code


# ---------------------------------------------------------------- no existence leak


@pytest.mark.parametrize("who", ["anonymous", "outsider-basic", "outsider-bearer"])
@pytest.mark.parametrize("kind", ["manifest", "blob", "tags", "referrers", "push"])
def test_private_and_missing_repositories_look_the_same(cast: Cast, who: str, kind: str) -> None:
    world = cast.world
    digest = next(iter(world.images["privco"].blobs))
    repos = ["privco/app", "privco/does-not-exist", "nosuchns/app"]
    outsider = world.users["outsider"]
    token = None
    if who == "outsider-bearer":
        token = world.realm.token(outsider, *(scope(r, "pull", "push") for r in repos))
    principal = ANONYMOUS if who == "anonymous" else outsider
    seen = []
    with cast.client(principal, token) as http:
        for repo in repos:
            if kind == "push":
                resp = http.post(uploads_path(repo), headers={"Content-Length": "0"})
            else:
                path = {"manifest": manifest_path(repo, "v1"), "blob": blob_path(repo, digest),
                        "tags": tags_path(repo), "referrers": referrers_path(repo, digest)}[kind]
                resp = http.get(path, headers={"Accept": OCI_MANIFEST})
            seen.append((resp.status_code, sorted(error_codes(resp))))
    expected = (403, ["DENIED"]) if who == "outsider-basic" else (401, ["UNAUTHORIZED"])
    assert seen == [expected] * 3, seen


def test_head_and_referrers_are_pull(cast: Cast) -> None:
    world = cast.world
    image = world.images["privco"]
    digest = next(iter(image.blobs))
    paths = [manifest_path("privco/app", "v1"), blob_path("privco/app", digest)]
    with cast.client() as anon, cast.client(world.users["outsider"]) as outsider, \
            cast.client(world.users["reader"]) as reader:
        for path in paths:
            resp = anon.head(path, headers={"Accept": OCI_MANIFEST})
            assert resp.status_code == 401, describe(resp)
            assert resp.headers.get("www-authenticate", "").startswith("Bearer "), describe(resp)
            assert status(outsider, path, "HEAD") == 403
            assert status(reader, path, "HEAD") == 200
        resp = reader.get(referrers_path("privco/app", image.digest))
        assert resp.status_code == 200, describe(resp)
        assert resp.json()["manifests"] == []
        assert status(anon, referrers_path("pubco/app", world.images["pubco"].digest)) == 200


# ---------------------------------------------------------------- visibility


def test_repository_override(cast: Cast) -> None:
    world = cast.world
    reader, outsider = world.users["reader"], world.users["outsider"]
    with cast.client() as anon, cast.client(outsider) as out, cast.client(reader) as member:
        assert status(anon, manifest_path("privco/shown", "v1")) == 200
        assert status(anon, manifest_path("privco/app", "v1")) == 401
        assert status(anon, manifest_path("pubco/app", "v1")) == 200
        assert status(anon, manifest_path("pubco/hidden", "v1")) == 401
        assert status(out, manifest_path("pubco/hidden", "v1")) == 403
        assert status(out, manifest_path("privco/shown", "v1")) == 200
        assert status(member, manifest_path("pubco/hidden", "v1")) == 200
        # Public means pull, never push.
        assert status(out, uploads_path("privco/shown"), "POST") == 403
        listed = set(catalog(anon))
    assert {"privco/shown", "pubco/app"} <= listed, listed
    assert not {"pubco/hidden", "privco/app", "otherco/app", "teamco/one"} & listed, listed


def test_anonymous_pull_off(strict: Strict) -> None:
    realm, path = strict.realm, manifest_path("opendoor/app", "v1")
    with realm.client() as anon, realm.client(strict.user) as user:
        resp = anon.get(path, headers={"Accept": OCI_MANIFEST})
        assert resp.status_code == 401, describe(resp)
        assert "UNAUTHORIZED" in error_codes(resp)
        assert status(anon, blob_path("opendoor/app", next(iter(strict.image.blobs)))) == 401
        assert status(user, path) == 200  # any signed-in user may pull a public repository
        assert status(user, uploads_path("opendoor/app"), "POST") == 403
    anon_token = get_token(realm.url, ANONYMOUS, [scope("opendoor/app")], strict.service)
    assert granted(anon_token, "opendoor/app") == set()


def test_catalog_filtering(cast: Cast) -> None:
    with cast.client(cast.dev1) as dev1, cast.client(cast.scoped) as scoped:
        dev1_sees, scoped_sees = set(catalog(dev1)), set(catalog(scoped))
    assert {"teamco/one", "teamco/two", "pubco/app", "privco/shown"} <= dev1_sees
    assert not {"privco/app", "otherco/app", "pubco/hidden", "flipco/app"} & dev1_sees
    assert "teamco/one" in scoped_sees
    assert not {"teamco/two", "privco/app"} & scoped_sees


# ---------------------------------------------------------------- grants


def test_team_grant(cast: Cast) -> None:
    with cast.client(cast.dev1) as dev1, cast.client(cast.loner) as loner:
        assert status(dev1, manifest_path("teamco/two", "v1")) == 200
        pushed = push_image(dev1, "teamco/two", "by-dev1")
        assert status(dev1, manifest_path("teamco/two", pushed.digest), "DELETE") == 403
        assert status(loner, manifest_path("teamco/two", "v1")) == 403
        assert status(loner, uploads_path("teamco/two"), "POST") == 403
    token = cast.world.realm.token(cast.dev1, scope("teamco/two", "pull", "push", "delete"))
    assert granted(token, "teamco/two") == {"pull", "push"}


def test_repository_scoped_grant(cast: Cast) -> None:
    with cast.client(cast.scoped) as http:
        assert status(http, manifest_path("teamco/one", "v1")) == 200
        assert status(http, tags_path("teamco/one")) == 200
        assert status(http, manifest_path("teamco/two", "v1")) == 403
        assert status(http, uploads_path("teamco/one"), "POST") == 403


def test_robot_limited_to_its_repositories_and_actions(cast: Cast) -> None:
    world = cast.world
    with cast.client(cast.onlyone) as robot:
        push_image(robot, "teamco/one", "by-robot")
        assert status(robot, uploads_path("teamco/two"), "POST") == 403
        assert status(robot, manifest_path("teamco/two", "v1")) == 403
        assert status(robot, uploads_path("privco/app"), "POST") == 403
        assert status(robot, manifest_path("privco/app", "v1")) == 403
        victim = seed(world.realm, world.root, "teamco/one", "victim")
        assert status(robot, manifest_path("teamco/one", victim.digest), "DELETE") == 403
    with cast.client(cast.cleaner) as cleaner:
        assert status(cleaner, manifest_path("teamco/one", victim.digest), "DELETE") == 202
        assert status(cleaner, uploads_path("privco/app"), "POST") == 403
    token = world.realm.token(cast.onlyone, scope("teamco/one", "pull", "push", "delete"),
                              scope("teamco/two", "pull"))
    assert granted(token, "teamco/one") == {"pull", "push"}
    assert granted(token, "teamco/two") == set()


def test_personal_namespace(cast: Cast) -> None:
    world = cast.world
    with cast.client(cast.dev1) as dev1, cast.client(cast.loner) as loner, \
            cast.client() as anon, cast.client(world.root) as root:
        pushed = push_image(dev1, "dev1/tool", "v1")
        assert status(loner, manifest_path("dev1/tool", "v1")) == 403
        assert status(anon, manifest_path("dev1/tool", "v1")) == 401
        assert status(root, manifest_path("dev1/tool", "v1")) == 200
        assert status(loner, uploads_path("dev1/tool"), "POST") == 403
        assert status(dev1, manifest_path("dev1/tool", pushed.digest), "DELETE") == 202


def test_missing_namespace_only_registry_admin_pushes(cast: Cast) -> None:
    world = cast.world
    with cast.client(world.users["writer"]) as writer, cast.client(world.root) as root:
        assert status(writer, uploads_path("ghostns/app"), "POST") == 403
        push_image(root, "ghostns2/app", "v1")


# ---------------------------------------------------------------- mounts, uploads, blobs


def test_mount_needs_pull_on_from(cast: Cast) -> None:
    world = cast.world
    writer = world.users["writer"]
    hidden = next(iter(world.images["otherco"].blobs))
    visible = next(iter(world.images["pubco"].blobs))
    with cast.client(writer) as http, cast.client(world.root) as root:
        mount = {"mount": hidden, "from": "otherco/app"}
        resp = http.post(uploads_path("privco/mnt"), params=mount)
        assert resp.status_code == 202, describe(resp)
        assert resp.headers.get("location"), describe(resp)
        assert status(root, blob_path("privco/mnt", hidden), "HEAD") == 404
        mount = {"mount": visible, "from": "pubco/app"}
        resp = http.post(uploads_path("privco/mnt"), params=mount)
        assert resp.status_code == 201, describe(resp)


def test_upload_session_belongs_to_pushers(cast: Cast) -> None:
    world = cast.world
    data = random_bytes(100)
    with cast.client(world.users["writer"]) as writer, \
            cast.client(world.users["reader"]) as reader:
        resp = writer.post(uploads_path("privco/app"), headers={"Content-Length": "0"})
        assert resp.status_code == 202, describe(resp)
        location = resp.headers["location"]
        assert reader.get(location).status_code == 403
        assert reader.patch(location, content=data).status_code == 403
        assert reader.put(location, params={"digest": "sha256:" + "0" * 64}).status_code == 403
        assert reader.delete(location).status_code == 403
        assert writer.get(location).status_code == 204


def test_blob_delete_needs_delete(cast: Cast) -> None:
    world = cast.world
    with cast.client(world.root) as root:
        digest = upload_blob(root, "privco/app", random_bytes(77))
    with cast.client(world.users["writer"]) as writer, \
            cast.client(world.users["maintainer"]) as maintainer:
        assert status(writer, blob_path("privco/app", digest), "DELETE") == 403
        assert status(maintainer, blob_path("privco/app", digest), "DELETE") == 202


# ---------------------------------------------------------------- credentials


def test_expired_robot_and_token_are_rejected(cast: Cast) -> None:
    url = cast.world.realm.url
    # Made with the CLI's clock 3 days back and --expires-in-days 1 (Realm.cli_in_the_past).
    for principal in (cast.stale_robot, cast.stale_pat):
        resp = httpx.get(f"{url}/v2/", auth=principal.auth)
        assert resp.status_code == 401, (principal.label, describe(resp))
        resp = httpx.get(f"{url}/token", params={"service": "cargohold"}, auth=principal.auth)
        assert resp.status_code == 401, (principal.label, describe(resp))
        with cast.client(principal) as http:
            assert status(http, manifest_path("teamco/one", "v1")) == 401, principal.label


@pytest.fixture(scope="module")
def changed(cast: Cast) -> Cast:
    """Revoke the doomed robot and PAT, drop an override, open a namespace; then sync once."""
    realm = cast.world.realm
    for principal in (cast.doomed_robot, cast.doomed_pat):
        with cast.client(principal) as http:
            assert status(http, "/v2/") == 200, principal.label
            assert status(http, manifest_path("teamco/one", "v1")) == 200, principal.label
    realm.parallel(
        partial(realm.revoke_robot, "teamco", "doomed"),
        partial(realm.revoke_token, cast.dev1, "doomed"),
        partial(realm.set_visibility, "privco/shown", "inherit"),
        partial(realm.set_visibility, "flipco", "public"),
    )
    realm.sync()
    return cast


def test_revoked_robot_and_token_are_rejected(changed: Cast) -> None:
    for principal in (changed.doomed_robot, changed.doomed_pat):
        with changed.client(principal) as http:
            assert status(http, "/v2/") == 401, principal.label
            assert status(http, manifest_path("teamco/one", "v1")) == 401, principal.label
            resp = http.get("/token", params={"service": "cargohold"})
            assert resp.status_code == 401, (principal.label, describe(resp))
    with changed.client(changed.dev1) as http:  # the user's password still works
        assert status(http, manifest_path("teamco/one", "v1")) == 200


def test_inherit_and_namespace_visibility(changed: Cast) -> None:
    with changed.client() as anon:
        assert status(anon, manifest_path("privco/shown", "v1")) == 401
        assert status(anon, manifest_path("flipco/app", "v1")) == 200
        assert status(anon, uploads_path("flipco/app"), "POST") == 401

"""The access matrix: principal x namespace visibility x action, with basic auth and bearer tokens.

Each cell is its own test (id ``MODE-VISIBILITY-PRINCIPAL-ACTION``) and asserts the exact
outcome: an allowed action succeeds; a denied one is

* ``basic`` mode (credentials straight on /v2): 401 UNAUTHORIZED with a Bearer challenge naming
  the repository scope when there are no credentials, 403 DENIED with valid credentials;
* ``bearer`` mode (a token from /token asking for everything): 401 UNAUTHORIZED whose challenge
  carries ``error="insufficient_scope"``.

Denied writes leave the repository unchanged (checked as the registry admin). The catalog
"action" is allowed when the repository appears in /v2/_catalog and denied when it does not.
"""

from __future__ import annotations

import httpx
import pytest
from tests.api.oci import (
    OCI_MANIFEST,
    blob_path,
    describe,
    encode,
    error_codes,
    image_manifest,
    make_config,
    manifest_path,
    push_image,
    put_manifest,
    random_bytes,
    tags_path,
    unique,
    upload_blob,
    uploads_path,
)

from .conftest import World
from .creds import SERVICE, Principal, catalog, challenge, scope, scope_actions

PRINCIPALS = (
    "anonymous", "reader", "writer", "maintainer", "org_admin", "registry_admin",
    "robot_pull", "robot_push", "other_org", "writer_pat",
)
ACTIONS = ("pull_manifest", "pull_blob", "tags_list", "catalog", "push", "delete_manifest")
PULLERS = {"reader", "writer", "maintainer", "org_admin", "registry_admin", "robot_pull",
           "robot_push", "writer_pat"}
PUSHERS = {"writer", "maintainer", "org_admin", "registry_admin", "robot_push", "writer_pat"}
DELETERS = {"maintainer", "org_admin", "registry_admin"}
NAMESPACES = {"public": "pubco", "private": "privco"}
REQUIRED = {"push": "push", "delete_manifest": "delete"}


def allowed(principal: str, visibility: str, action: str) -> bool:
    if action == "push":
        return principal in PUSHERS
    if action == "delete_manifest":
        return principal in DELETERS
    return visibility == "public" or principal in PULLERS


CELLS = [
    pytest.param(mode, vis, who, action, id=f"{mode}-{vis}-{who}-{action}")
    for mode in ("basic", "bearer")
    for vis in ("public", "private")
    for who in PRINCIPALS
    for action in ACTIONS
]


def assert_denied(resp: httpx.Response, mode: str, principal: Principal, repo: str,
                  action: str, url: str) -> None:
    needed = REQUIRED.get(action, "pull")
    if mode == "basic" and not principal.anonymous:
        assert resp.status_code == 403, describe(resp)
        assert "DENIED" in error_codes(resp), describe(resp)
        return
    assert resp.status_code == 401, describe(resp)
    assert "UNAUTHORIZED" in error_codes(resp), describe(resp)
    scheme, params = challenge(resp)
    assert scheme == "Bearer", describe(resp)
    assert params.get("realm") == f"{url}/token", describe(resp)
    assert params.get("service") == SERVICE, describe(resp)
    assert needed in scope_actions(params.get("scope", ""), repo), describe(resp)
    if mode == "bearer":
        assert params.get("error") == "insufficient_scope", describe(resp)


@pytest.mark.parametrize(("mode", "visibility", "who", "action"), CELLS)
def test_cell(world: World, mode: str, visibility: str, who: str, action: str) -> None:
    realm = world.realm
    ns = NAMESPACES[visibility]
    repo = f"{ns}/app"
    principal = world.principal(who, ns)
    image = world.images[ns]
    ok = allowed(who, visibility, action)

    token = None
    if mode == "bearer":
        scopes = [scope(repo, "pull", "push", "delete")]
        if action == "catalog":
            scopes = ["registry:catalog:*", scope(repo, "pull")]
        token = realm.token(principal, *scopes)

    with realm.client(principal, token) as http, realm.client(world.root) as admin:
        if action == "catalog":
            listed = repo in catalog(http)
            assert listed == ok, f"{repo} listed={listed} for {principal.label} ({mode})"
            return

        if action == "pull_manifest":
            resp = http.get(manifest_path(repo, "v1"), headers={"Accept": OCI_MANIFEST})
            if ok:
                assert resp.status_code == 200, describe(resp)
                assert resp.content == image.body
        elif action == "pull_blob":
            digest = next(iter(image.blobs))
            resp = http.get(blob_path(repo, digest))
            if ok:
                assert resp.status_code == 200, describe(resp)
                assert resp.content == image.blobs[digest]
        elif action == "tags_list":
            resp = http.get(tags_path(repo))
            if ok:
                assert resp.status_code == 200, describe(resp)
                assert "v1" in resp.json()["tags"], describe(resp)
        elif action == "push":
            tag = unique("push")
            if ok:
                push_image(http, repo, tag)
                assert admin.head(manifest_path(repo, tag)).status_code == 200
                return
            resp = http.post(uploads_path(repo), headers={"Content-Length": "0"})
            assert_denied(resp, mode, principal, repo, action, realm.url)
            # A manifest whose blobs are all in the repository already: still refused.
            config, layer = make_config(), random_bytes(64)
            upload_blob(admin, repo, config)
            upload_blob(admin, repo, layer)
            body = encode(image_manifest(config, [layer]))
            resp = put_manifest(http, repo, tag, body, OCI_MANIFEST)
            assert_denied(resp, mode, principal, repo, action, realm.url)
            assert admin.head(manifest_path(repo, tag)).status_code == 404
            return
        else:  # delete_manifest
            victim = push_image(admin, repo, unique("del"))
            resp = http.delete(manifest_path(repo, victim.digest))
            after = admin.head(manifest_path(repo, victim.digest)).status_code
            if ok:
                assert resp.status_code == 202, describe(resp)
                assert after == 404
                return
            assert_denied(resp, mode, principal, repo, action, realm.url)
            assert after == 200
            return

        if not ok:
            assert_denied(resp, mode, principal, repo, action, realm.url)


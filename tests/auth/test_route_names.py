"""Repository names that contain a route word ("tags", "manifests", "blobs", "referrers")
as a path component: access is decided for the repository the router serves, never for a
shorter prefix of it (a token for `privco` must not open `privco/tags/app`)."""

from __future__ import annotations

import httpx
from tests.api.oci import OCI_MANIFEST, describe, push_image

from cargohold.auth.roles import DELETE, PULL, PUSH
from cargohold.http.access import required_access

from .conftest import World, seed
from .creds import granted


def test_required_access_reads_names_as_the_router_does() -> None:
    assert required_access("GET", "/v2/acme/tags/app/manifests/1") == ("acme/tags/app", PULL)
    assert required_access("GET", "/v2/acme/tags/tags/list") == ("acme/tags", PULL)
    assert required_access("HEAD", "/v2/a/blobs/x/blobs/sha256:ab") == ("a/blobs/x", PULL)
    assert required_access("POST", "/v2/a/manifests/b/blobs/uploads/") == ("a/manifests/b", PUSH)
    assert required_access("DELETE", "/v2/a/referrers/b/manifests/v1") == (
        "a/referrers/b",
        DELETE,
    )
    assert required_access("GET", "/v2/_catalog") is None


def test_a_token_for_a_namespace_repository_does_not_open_a_longer_name(world: World) -> None:
    realm = world.realm
    pushed = seed(realm, world.root, "privco/tags/app")
    path = f"/v2/privco/tags/app/manifests/{pushed.digest}"
    # A token granting pull on the repository "privco" (the writer's role allows it)...
    narrow = realm.token(world.users["writer"], "repository:privco:pull")
    assert granted(narrow, "privco") == {"pull"}  # else the refusal below proves nothing
    with realm.client(token=narrow) as http:
        refused = http.get(path, headers={"Accept": OCI_MANIFEST})
    assert refused.status_code in (401, 403), describe(refused)
    # ...while one for the repository itself works, for pulls and for pushes.
    token = realm.token(world.users["writer"], "repository:privco/tags/app:pull,push")
    with realm.client(token=token) as http:
        assert http.get(path, headers={"Accept": OCI_MANIFEST}).status_code == 200
        push_image(http, "privco/tags/app", "v2")
    with httpx.Client(base_url=realm.url) as anonymous:
        assert anonymous.get(path, headers={"Accept": OCI_MANIFEST}).status_code == 401

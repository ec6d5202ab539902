"""The admin API endpoints the web UI browses with: repositories, access, manifests, SBOMs
and tag details, with the registry's permissions (pull), over HTTP basic credentials."""

from __future__ import annotations

import httpx
import pytest
from tests.scan.test_scan_on_push import wait_for

from cargohold.scan.sbom import CYCLONEDX_JSON

from .conftest import ADMIN, READER, REPO, XSS, UiRegistry

OUTSIDER = ("olga", "olga-password-1")


@pytest.fixture(scope="module")
def api(registry: UiRegistry) -> httpx.Client:
    with httpx.Client(base_url=f"{registry.url}/api/v1") as client:
        made = client.post(
            "/users", json={"name": OUTSIDER[0], "password": OUTSIDER[1]}, auth=ADMIN
        )
        assert made.status_code == 201, made.text
        yield client


def test_repositories_are_those_the_caller_may_pull(api: httpx.Client):
    mine = api.get("/repositories", auth=READER).json()
    assert [r["name"] for r in mine["repositories"]] == [REPO]
    repo = mine["repositories"][0]
    assert repo["namespace"] == "acme" and repo["public"] is False
    assert repo["stored_bytes"] > 0 and repo["last_push_by"] == "admin"
    assert api.get("/repositories", auth=OUTSIDER).json() == {
        "repositories": [],
        "next": None,
        "total": 0,
    }
    assert api.get("/repositories").status_code == 401


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"q": "APP"}, [REPO]),
        ({"q": "nothing"}, []),
        ({"namespace": "acme"}, [REPO]),
        ({"namespace": "admin"}, []),
        ({"visibility": "private"}, [REPO]),
        ({"visibility": "public"}, []),
        ({"pushed_within_days": 1}, [REPO]),
        ({"min_bytes": 1}, [REPO]),
        ({"min_bytes": 10**12}, []),
        ({"sort": "size"}, [REPO]),
        ({"sort": "pushed"}, [REPO]),
    ],
)
def test_repository_search_and_filters(api: httpx.Client, params: dict, found: list[str]):
    response = api.get("/repositories", params=params, auth=ADMIN)
    assert response.status_code == 200, response.text
    assert [r["name"] for r in response.json()["repositories"]] == found


def test_invalid_filters_are_400(api: httpx.Client):
    assert api.get("/repositories", params={"sort": "x"}, auth=ADMIN).status_code == 400
    assert api.get("/repositories", params={"limit": 0}, auth=ADMIN).status_code == 400


def test_access_says_what_the_caller_may_do(api: httpx.Client):
    reader = api.get(f"/repositories/{REPO}/access", auth=READER).json()
    assert reader == {
        "repository": REPO,
        "actions": ["pull"],
        "namespace_admin": False,
        "public": False,
        "visibility": "inherit",
    }
    admin = api.get(f"/repositories/{REPO}/access", auth=ADMIN).json()
    assert set(admin["actions"]) >= {"pull", "push", "delete"} and admin["namespace_admin"]
    assert api.get(f"/repositories/{REPO}/access", auth=OUTSIDER).status_code == 403


def test_a_manifest_parsed(api: httpx.Client, registry: UiRegistry):
    view = api.get(f"/repositories/{REPO}/manifests/1.0", auth=READER).json()
    assert view["digest"] == registry.app_digest
    assert not view["is_index"] and len(view["layers"]) == 3
    assert view["total_size"] == view["size"] + view["config"]["size"] + sum(
        layer["size"] for layer in view["layers"]
    )
    assert view["config_summary"]["os"] == "linux"
    assert view["config_summary"]["architecture"] == "amd64"
    assert CYCLONEDX_JSON in [r["artifact_type"] for r in view["referrers"]]
    by_digest = api.get(f"/repositories/{REPO}/manifests/{registry.app_digest}", auth=READER)
    assert by_digest.json()["digest"] == registry.app_digest
    hostile = api.get(f"/repositories/{REPO}/manifests/xss", auth=READER).json()
    assert hostile["annotations"]["org.opencontainers.image.description"] == XSS
    assert hostile["config_summary"]["labels"]["org.example.note"] == XSS


def test_manifests_need_pull_and_must_exist(api: httpx.Client):
    assert api.get(f"/repositories/{REPO}/manifests/1.0", auth=OUTSIDER).status_code == 403
    missing = api.get(f"/repositories/{REPO}/manifests/nope", auth=ADMIN)
    assert missing.status_code == 404
    assert api.get(f"/repositories/{REPO}/manifests/bad:tag!", auth=ADMIN).status_code == 400


def test_the_sbom_packages(api: httpx.Client, registry: UiRegistry):
    sbom = api.get(f"/repositories/{REPO}/sbom/1.0", auth=READER).json()
    assert sbom["digest"] == registry.app_digest and sbom["format"] == "CycloneDX 1.5"
    packages = {(p["name"], p["version"]) for p in sbom["packages"]}
    assert ("requests", "2.19.0") in packages
    assert api.get(f"/repositories/{REPO}/sbom/1.0", auth=OUTSIDER).status_code == 403
    no_sbom = api.get(f"/repositories/{REPO}/sbom/{sbom['sbom_digest']}", auth=ADMIN)
    assert no_sbom.status_code == 404
    assert no_sbom.json()["errors"][0]["code"] == "SBOM_UNKNOWN"


def test_tag_details(api: httpx.Client, registry: UiRegistry):
    details = api.get(f"/repositories/{REPO}/tag-details", params={"n": 1}, auth=READER).json()
    assert details["next"] == "1.0"
    (tag,) = details["tags"]
    assert tag["name"] == "1.0" and tag["digest"] == registry.app_digest
    assert tag["platforms"] == ["linux/amd64"] and tag["pushed_by"] == "admin"
    assert tag["total_size"] > tag["manifest_size"]
    assert tag["scan"]["severity_counts"]["critical"] == 1
    assert api.get(f"/repositories/{REPO}/tag-details", auth=OUTSIDER).status_code == 403


def test_namespaces_the_caller_can_see(api: httpx.Client):
    reader = {ns["name"]: ns for ns in api.get("/namespaces", auth=READER).json()}
    assert reader["acme"]["admin"] is False
    assert api.get("/namespaces", auth=OUTSIDER).json() == [] or all(
        ns["name"] != "acme" for ns in api.get("/namespaces", auth=OUTSIDER).json()
    )
    admin = {ns["name"]: ns for ns in api.get("/namespaces", auth=ADMIN).json()}
    assert admin["acme"]["admin"] is True


def test_pagination_of_repositories(api: httpx.Client, registry: UiRegistry):
    made = api.put("/repositories/acme/zeta/tags/1.0", json={"source": f"{REPO}:1.0"}, auth=ADMIN)
    assert made.status_code == 200, made.text
    wait_for(lambda: api.get("/repositories", auth=ADMIN).json()["total"] == 2, 10)
    first = api.get("/repositories", params={"limit": 1}, auth=ADMIN).json()
    assert [r["name"] for r in first["repositories"]] == [REPO] and first["next"] == REPO
    second = api.get("/repositories", params={"limit": 1, "after": REPO}, auth=ADMIN).json()
    assert [r["name"] for r in second["repositories"]] == ["acme/zeta"]
    assert second["next"] is None and second["total"] == 2
    deleted = api.delete("/repositories/acme/zeta/tags/1.0", auth=ADMIN)
    assert deleted.status_code == 204


def test_deleting_a_manifest_needs_delete_and_a_digest(api: httpx.Client, registry: UiRegistry):
    made = api.put("/repositories/acme/gone/tags/x", json={"source": f"{REPO}:1.0"}, auth=ADMIN)
    assert made.status_code == 200, made.text
    digest = registry.app_digest
    assert api.delete(f"/repositories/acme/gone/manifests/{digest}", auth=READER).status_code == 403
    assert api.delete("/repositories/acme/gone/manifests/x", auth=ADMIN).status_code == 400
    assert api.delete(f"/repositories/acme/gone/manifests/{digest}", auth=ADMIN).status_code == 204
    assert api.get("/repositories/acme/gone/tags/x", auth=ADMIN).status_code == 404
    assert api.delete(f"/repositories/acme/gone/manifests/{digest}", auth=ADMIN).status_code == 404


def test_tag_details_search(api: httpx.Client):
    found = api.get(f"/repositories/{REPO}/tag-details", params={"q": "STA"}, auth=READER).json()
    assert [t["name"] for t in found["tags"]] == ["stable"] and found["next"] is None
    none = api.get(f"/repositories/{REPO}/tag-details", params={"q": "zzz"}, auth=READER).json()
    assert none == {"tags": [], "next": None}

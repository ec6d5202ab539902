"""The OpenAPI document and docs under the /api mount, and authentication (401) everywhere."""

from __future__ import annotations

import base64
import json
import re

import pytest

from .conftest import Api, expect

PATHS = {
    "/v1/users/me": {"get"},
    "/v1/users": {"get", "post"},
    "/v1/users/{name}": {"get", "patch"},
    "/v1/users/{name}/tokens": {"get", "post"},
    "/v1/users/{name}/tokens/{token_name}": {"delete"},
    "/v1/users/{name}/sessions": {"get", "delete"},
    "/v1/users/{name}/sessions/{session_id}": {"delete"},
    "/v1/orgs": {"get", "post"},
    "/v1/namespaces/{ns}": {"get"},
    "/v1/namespaces/{ns}/visibility": {"put"},
    "/v1/repositories/{name}/visibility": {"put"},
    "/v1/namespaces/{ns}/members": {"get", "post"},
    "/v1/namespaces/{ns}/members/users/{user}": {"delete"},
    "/v1/namespaces/{ns}/members/teams/{team}": {"delete"},
    "/v1/namespaces/{ns}/teams": {"get", "post"},
    "/v1/namespaces/{ns}/teams/{team}": {"get"},
    "/v1/namespaces/{ns}/teams/{team}/members": {"post"},
    "/v1/namespaces/{ns}/teams/{team}/members/{user}": {"delete"},
    "/v1/namespaces/{ns}/robots": {"get", "post"},
    "/v1/namespaces/{ns}/robots/{name}": {"delete"},
    "/v1/audit": {"get"},
    "/v1/repositories/{name}/tags": {"get"},
    "/v1/repositories/{name}/tags/{tag}": {"get", "put", "delete"},
    "/v1/repositories/{name}/tags/{tag}/history": {"get"},
    "/v1/repositories/{name}/tags/{tag}/rollback": {"post"},
    "/v1/repositories/{name}/history": {"get"},
    "/v1/namespaces/{ns}/immutable-tag-rules": {"get", "post"},
    "/v1/namespaces/{ns}/immutable-tag-rules/{rule_id}": {"delete"},
    "/v1/gc": {"post"},
    "/v1/gc/runs": {"get"},
    "/v1/usage": {"get"},
    "/v1/usage/history": {"get"},
    "/v1/namespaces/{ns}/usage": {"get"},
    "/v1/repositories/{name}/usage": {"get"},
    "/v1/repositories/{name}/diff": {"get"},
    "/v1/repositories/{name}/scans/{reference}": {"get", "post"},
    "/v1/scan-queue": {"get"},
    "/v1/scan-queue/rescan-all": {"post"},
    "/v1/namespaces/{ns}/keys": {"get", "post"},
    "/v1/namespaces/{ns}/keys/{name}": {"delete"},
    "/v1/namespaces/{ns}/signature-policy": {"get", "put", "delete"},
    "/v1/namespaces/{ns}/promotion-gates": {"get", "put", "delete"},
    "/v1/promotions": {"post"},
    "/v1/namespaces/{ns}/quota": {"get", "put", "delete"},
    "/v1/namespaces/{ns}/retention-policies": {"get", "post"},
    "/v1/namespaces/{ns}/retention-policies/{policy_id}": {"delete"},
    "/v1/namespaces/{ns}/retention-policies/run": {"post"},
    "/v1/namespaces/{ns}/webhooks": {"get", "post"},
    "/v1/namespaces/{ns}/webhooks/{webhook_id}": {"get", "patch", "delete"},
    "/v1/namespaces/{ns}/webhooks/{webhook_id}/deliveries": {"get"},
    "/v1/namespaces/{ns}/webhooks/{webhook_id}/test": {"post"},
    "/v1/namespaces/{ns}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": {"post"},
    "/v1/namespaces/{ns}/scan-policy": {"get", "put", "delete"},
    "/v1/namespaces/{ns}/scan-policy/allowlist": {"get", "post"},
    "/v1/namespaces/{ns}/scan-policy/allowlist/{vulnerability}": {"delete"},
    "/v1/proxies": {"get", "post"},
    "/v1/proxies/{namespace}": {"get", "patch", "delete"},
    # the web UI: cookie sessions and browsing
    "/v1/session": {"get", "post", "delete"},
    "/v1/namespaces": {"get"},
    "/v1/repositories": {"get"},
    "/v1/repositories/{name}/manifests/{reference}": {"get", "delete"},
    "/v1/repositories/{name}/access": {"get"},
    "/v1/repositories/{name}/sbom/{reference}": {"get"},
    "/v1/repositories/{name}/tag-details": {"get"},
    "/v1/replication/endpoints": {"get", "post"},
    "/v1/replication/endpoints/{name}": {"get", "patch", "delete"},
    "/v1/replication/rules": {"get", "post"},
    "/v1/replication/rules/{rule_id}": {"get", "patch", "delete"},
    "/v1/replication/rules/{rule_id}/run": {"post"},
    "/v1/replication/rules/{rule_id}/executions": {"get"},
    "/v1/replication/executions/{execution_id}": {"get"},
}
OPERATIONS = sorted((method, path) for path, methods in PATHS.items() for method in methods)


@pytest.fixture(scope="module")
def document(api: Api) -> dict:
    resp = api.call("GET", "/openapi.json")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    return json.loads(resp.text)


def test_openapi_lists_every_path_under_the_mount(document: dict) -> None:
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "cargohold admin API"
    # Paths are relative to the server URL, which is the mount point.
    assert document["servers"] == [{"url": "/api"}]
    found = {path: set(ops) for path, ops in document["paths"].items()}
    assert found == PATHS


def test_openapi_describes_bodies_errors_and_basic_auth(document: dict) -> None:
    schemas = document["components"]["schemas"]
    assert {
        "User",
        "UserCreate",
        "Grant",
        "GrantCreate",
        "Robot",
        "RobotCreated",
        "Token",
        "TokenCreated",
        "Namespace",
        "Team",
        "ErrorBody",
        "TagList",
        "TagHistory",
        "TagChange",
        "Rollback",
        "Retag",
        "ImmutableRule",
        "ImmutableRuleCreate",
    } <= set(schemas)
    assert schemas["GrantCreate"]["properties"]["role"] == {"$ref": "#/components/schemas/Role"}
    assert set(schemas["Role"]["enum"]) == {"reader", "writer", "maintainer", "admin"}
    assert document["components"]["securitySchemes"]["basic"]["scheme"] == "basic"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert {"401", "403"} <= set(responses), (method, path)
            assert operation["security"] == [{"basic": []}], (method, path)
    # No hash of a password or a secret is ever part of a response.
    assert "hash" not in json.dumps(schemas).lower()


def test_openapi_paths_resolve_against_the_server_url(api: Api, document: dict) -> None:
    server = document["servers"][0]["url"]
    resp = api.call("GET", "/v1/users/me", api.admin)  # = server + "/v1/users/me"
    assert resp.request.url.path == f"{server}/v1/users/me"
    assert expect(resp, 200)["name"] == "root"


def test_docs_page_points_at_the_mounted_document(api: Api) -> None:
    resp = api.call("GET", "/docs")
    assert resp.status_code == 200
    assert "text/html" in resp.headers["content-type"]
    assert "'/api/openapi.json'" in resp.text or '"/api/openapi.json"' in resp.text


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path).replace("/repositories/x/", "/repositories/x/y/")


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_operation_needs_credentials(api: Api, method: str, path: str) -> None:
    resp = api.call(method.upper(), _concrete(path), json={})
    expect(resp, 401, "UNAUTHORIZED")
    assert resp.headers["www-authenticate"] == 'Basic realm="cargohold"'


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(b"root:wrong-password").decode(),
        "Basic " + base64.b64encode(b"nobody-at-all:whatever-pw").decode(),
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer some.jwt.token",
    ],
    ids=["wrong-password", "unknown-user", "not-base64", "no-colon", "bearer"],
)
def test_bad_credentials_are_401(api: Api, header: str) -> None:
    resp = api.call("GET", "/v1/users/me", headers={"Authorization": header})
    expect(resp, 401, "UNAUTHORIZED")
    assert resp.headers["www-authenticate"] == 'Basic realm="cargohold"'


def test_unknown_endpoint_and_method_are_json_errors(api: Api) -> None:
    expect(api.call("GET", "/v1/nothing-here", api.admin), 404, "NOT_FOUND")
    expect(api.call("DELETE", "/v1/orgs", api.admin), 405, "UNSUPPORTED")


def test_the_registry_is_untouched_by_the_mount(api: Api) -> None:
    with api.client() as http:
        resp = http.get("/v2/")
    # Users exist, so /v2/ asks for credentials with the registry's Bearer challenge.
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer ")

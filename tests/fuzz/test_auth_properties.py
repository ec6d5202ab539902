"""Hypothesis properties of the token endpoint and of the admin API's JSON bodies, on a live
server with access control, on SQLite and on PostgreSQL: hostile scopes, services,
accounts, credentials and bodies never cause a 5xx, and refusals have the error shape."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.api.oci import describe, error_codes
from tests.conftest import LiveRegistry

from .servers import ADMIN, PASSWORD, admin_client, admin_server
from .strategies import fuzz, hostile_text, json_values, names

ACTIONS = st.sampled_from(["pull", "push", "delete", "*", "pull,push", "", "PULL", "x"])
scopes = st.one_of(
    hostile_text,
    st.tuples(st.sampled_from(["repository", "registry", "x", ""]), names, ACTIONS).map(":".join),
    st.tuples(names, hostile_text).map(lambda parts: f"repository:{parts[0]}:{parts[1]}"),
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveRegistry]:
    data_dir: Path = tmp_path_factory.mktemp(f"auth-fuzz-{request.param}") / "data"
    with admin_server(data_dir, request.param) as server:
        yield server


@pytest.fixture
def http(secured: LiveRegistry) -> Iterator[httpx.Client]:
    with admin_client(secured) as client:
        yield client


def _error_shape(resp: httpx.Response) -> None:
    assert resp.status_code < 500, describe(resp)
    if resp.status_code >= 400:
        assert error_codes(resp), describe(resp)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@fuzz(60)
@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(["scope", "scope", "service", "account", "offline_token", "x"]),
            st.one_of(scopes, hostile_text),
        ),
        max_size=5,
    ),
    credentials=st.sampled_from(["admin", "wrong", "none", "garbage"]),
)
def test_token_requests_are_answered_or_refused(
    http: httpx.Client, params: list[tuple[str, str]], credentials: str
) -> None:
    headers = {}
    if credentials == "wrong":
        headers["Authorization"] = "Basic " + base64.b64encode(b"fuzzadmin:nope").decode()
    elif credentials == "garbage":
        headers["Authorization"] = "Basic !!" + "".join(v for _, v in params)[:20].encode().hex()
    auth: Any = (ADMIN, PASSWORD) if credentials == "admin" else None
    resp = http.get(f"/token?{urlencode(params)}", headers=headers, auth=auth)
    _error_shape(resp)
    if resp.status_code == 200:
        claims = _claims(resp.json()["token"])
        asked = {v for k, v in params if k == "scope"}
        for grant in claims.get("access", []):
            # Only what was asked can be granted: never more actions than requested.
            assert any(grant["name"] in scope for scope in asked), (grant, asked)


@fuzz(40)
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "grant_type",
                "username",
                "password",
                "scope",
                "service",
                "refresh_token",
                "access_type",
                "client_id",
            ]
        ),
        st.one_of(hostile_text, scopes),
    )
)
def test_token_form_posts_are_answered_or_refused(
    http: httpx.Client, fields: dict[str, str]
) -> None:
    resp = http.post("/token", data=fields, auth=None)
    _error_shape(resp)


# Endpoints whose JSON bodies the fuzzer sends anything to (none of them reaches out).
BODY_ENDPOINTS = [
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/nobody-here"),
    ("POST", "/api/v1/orgs"),
    ("POST", "/api/v1/namespaces/fuzzorg/members"),
    ("POST", "/api/v1/namespaces/fuzzorg/teams"),
    ("POST", "/api/v1/namespaces/fuzzorg/robots"),
    ("PUT", "/api/v1/namespaces/fuzzorg/visibility"),
    ("POST", "/api/v1/namespaces/fuzzorg/immutable-tag-rules"),
    ("POST", "/api/v1/namespaces/fuzzorg/retention-policies"),
    ("PUT", "/api/v1/namespaces/fuzzorg/quota"),
    ("POST", "/api/v1/namespaces/fuzzorg/webhooks"),
    ("PUT", "/api/v1/repositories/fuzzorg/app/tags/v1"),
    ("POST", "/api/v1/gc"),
    ("POST", "/api/v1/session"),
]

# Bodies shaped like the real ones, with hostile values.
shaped_bodies = st.dictionaries(
    st.sampled_from(
        [
            "name",
            "password",
            "admin",
            "role",
            "user",
            "team",
            "visibility",
            "pattern",
            "keep_last",
            "keep_days",
            "limit_bytes",
            "url",
            "events",
            "digest",
            "dry_run",
            "actions",
            "expires_in_days",
            "disabled",
        ]
    ),
    st.one_of(hostile_text, json_values, st.integers(-(2**70), 2**70)),
    max_size=6,
)


@fuzz(60)
@given(
    endpoint=st.sampled_from(BODY_ENDPOINTS),
    body=st.one_of(shaped_bodies, json_values, st.binary(max_size=200)),
)
def test_admin_api_bodies_are_applied_or_refused(
    http: httpx.Client, endpoint: tuple[str, str], body: Any
) -> None:
    method, path = endpoint
    # Encoded here, not by httpx: NaN and Infinity are hostile input too.
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = http.request(method, path, content=content, headers={"Content-Type": "application/json"})
    _error_shape(resp)
    if resp.status_code == 400:
        assert set(error_codes(resp)) <= {
            "INVALID_REQUEST",
            "NAME_INVALID",
            "TAG_INVALID",
            "DIGEST_INVALID",
            "UNSUPPORTED",
        }, describe(resp)

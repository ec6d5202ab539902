"""Credentials for the access-control tests: principals, /token, JWTs, challenges."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

SERVICE = "cargohold"


@dataclass(frozen=True)
class Principal:
    """Who makes a request: anonymous (no username) or a username with a password/secret."""

    label: str
    username: str | None = None
    password: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.username is None

    @property
    def auth(self) -> httpx.BasicAuth | None:
        if self.username is None:
            return None
        return httpx.BasicAuth(self.username, self.password or "")

    @property
    def creds(self) -> str:
        """``user:password`` as skopeo's --creds wants it."""
        return f"{self.username}:{self.password}"

    def with_password(self, password: str) -> Principal:
        return Principal(f"{self.label}-badpw", self.username, password)


ANONYMOUS = Principal("anonymous")


def bearer_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def request_token(
    url: str,
    principal: Principal = ANONYMOUS,
    scopes: Sequence[str] = (),
    service: str = SERVICE,
    **extra: str,
) -> httpx.Response:
    """GET /token?service=..&scope=..(repeated) with the principal's basic credentials."""
    params: list[tuple[str, str]] = [("service", service)]
    params += [("scope", scope) for scope in scopes]
    params += list(extra.items())
    return httpx.get(f"{url}/token", params=params, auth=principal.auth, timeout=30)


def get_token(url: str, principal: Principal = ANONYMOUS, scopes: Sequence[str] = (),
              service: str = SERVICE) -> str:
    resp = request_token(url, principal, scopes, service)
    assert resp.status_code == 200, f"/token for {principal.label}: {resp.status_code} {resp.text}"
    body = resp.json()
    token = body.get("token") or body.get("access_token")
    assert isinstance(token, str), body
    return token


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (header, payload) of a JWT, not verified."""
    header, payload, _signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def granted(token: str, name: str, kind: str = "repository") -> set[str]:
    """The actions the token's ``access`` claim gives on a resource (empty set if none)."""
    actions: set[str] = set()
    for entry in jwt_parts(token)[1].get("access") or []:
        if entry.get("type") == kind and entry.get("name") == name:
            actions.update(entry.get("actions") or [])
    return actions


def scope(repo: str, *actions: str) -> str:
    return f"repository:{repo}:{','.join(actions or ('pull',))}"


def challenge(resp: httpx.Response) -> tuple[str, dict[str, str]]:
    """The scheme and parameters of the response's WWW-Authenticate header."""
    value = resp.headers.get("www-authenticate")
    assert value, f"no WWW-Authenticate on {resp.status_code} {resp.request.url}"
    scheme, _, rest = value.strip().partition(" ")
    return scheme, dict(re.findall(r'([A-Za-z_]+)="([^"]*)"', rest))


def scope_actions(scope_value: str, repo: str) -> set[str]:
    """Actions the challenge's scope parameter asks for on repo (scopes are space-separated)."""
    actions: set[str] = set()
    for item in scope_value.split():
        kind, _, rest = item.partition(":")
        name, _, acts = rest.rpartition(":")
        if kind == "repository" and name == repo:
            actions.update(acts.split(","))
    return actions


def catalog(http: httpx.Client) -> list[str]:
    """Every repository name of /v2/_catalog, following pagination."""
    names: list[str] = []
    path: str | None = "/v2/_catalog?n=1000"
    while path:
        resp = http.get(path)
        assert resp.status_code == 200, f"{resp.status_code} {resp.text}"
        names += resp.json().get("repositories") or []
        path = None
        link = resp.headers.get("link")
        if link and 'rel="next"' in link:
            path = link.split(";")[0].strip().strip("<>")
    return names

"""/v1/proxies: namespaces that are pull-through caches of upstream registries.

Registry admins manage them. The upstream password is write-only: responses say only
whether one is set. Pulls of a cached namespace follow the normal permissions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    CONFLICT,
    Caller,
    RegistryDep,
    error_doc,
    log_change,
    require_registry_admin,
)
from cargohold.http.api.errors import ApiError
from cargohold.proxy.manage import DEFAULT_TTL, ProxyRules, RuleInvalid, rule_dict
from cargohold.proxy.store import ProxyRule

router = APIRouter(
    prefix="/v1/proxies",
    tags=["pull-through cache"],
    responses={
        **AUTH_RESPONSES,
        400: error_doc("an invalid namespace or rule (NAME_INVALID, INVALID_REQUEST)"),
    },
)
NOT_A_CACHE = {404: error_doc("the namespace is not a pull-through cache (NAME_UNKNOWN)")}

Mode = Literal["local-first", "upstream-first"]


class Proxy(BaseModel):
    namespace: str = Field(description='The cached namespace; "*" is the whole registry.')
    upstream_url: str
    mirror_of: str = Field(description="The host containerd names in ?ns= for this upstream.")
    remote_prefix: str | None
    username: str | None
    has_password: bool
    mode: Mode
    tag_ttl_seconds: int
    serve_stale_on_error: bool
    serve_stale_on_404: bool
    created_at: datetime
    created_by: str | None
    updated_at: datetime


class ProxyList(BaseModel):
    proxies: list[Proxy]


class ProxyCreate(BaseModel):
    namespace: str = Field(max_length=255)
    upstream_url: str = Field(max_length=1000, examples=["https://registry-1.docker.io"])
    remote_prefix: str | None = Field(None, max_length=255, examples=["library"])
    mirror_of: str | None = Field(None, max_length=255, examples=["docker.io"])
    username: str | None = Field(None, max_length=255)
    password: str | None = Field(None, description="Write-only; stored encrypted.")
    mode: Mode = "local-first"
    tag_ttl_seconds: int = Field(DEFAULT_TTL, ge=0, le=31536000)
    serve_stale_on_error: bool = True
    serve_stale_on_404: bool = False


class ProxyUpdate(BaseModel):
    upstream_url: str | None = Field(None, max_length=1000)
    remote_prefix: str | None = Field(None, max_length=255)
    mirror_of: str | None = Field(None, max_length=255)
    username: str | None = Field(None, max_length=255)
    password: str | None = Field(None, description="Write-only; null clears it.")
    mode: Mode | None = None
    tag_ttl_seconds: int | None = Field(None, ge=0, le=31536000)
    serve_stale_on_error: bool | None = None
    serve_stale_on_404: bool | None = None


def get_rules(registry: RegistryDep) -> ProxyRules:
    if registry.proxy is None:
        raise ApiError(503, "UNAVAILABLE", "this registry has no pull-through cache")
    return registry.proxy.rules


Rules = Annotated[ProxyRules, Depends(get_rules)]
NamespacePath = Annotated[str, Path(max_length=255)]


def proxy_out(rule: ProxyRule) -> Proxy:
    return Proxy.model_validate(rule_dict(rule))


@contextmanager
def _invalid_as_400() -> Iterator[None]:
    try:
        yield
    except RuleInvalid as exc:
        raise ApiError(400, "INVALID_REQUEST", exc.message) from None


@router.get("", response_model=ProxyList, summary="Pull-through caches (registry admins)")
def list_proxies(principal: Caller, rules: Rules) -> ProxyList:
    require_registry_admin(principal, "list pull-through caches")
    return ProxyList(proxies=[proxy_out(rule) for rule in rules.list()])


@router.post(
    "",
    response_model=Proxy,
    status_code=201,
    summary="Make a namespace a pull-through cache of an upstream (registry admins)",
    responses=CONFLICT,
)
def add_proxy(
    request: Request, body: ProxyCreate, principal: Caller, rules: Rules, registry: RegistryDep
) -> Proxy:
    require_registry_admin(principal, "add pull-through caches")
    with _invalid_as_400():
        rule = rules.add(
            body.namespace,
            body.upstream_url,
            username=body.username,
            password=body.password,
            remote_prefix=body.remote_prefix,
            mirror_of=body.mirror_of,
            mode=body.mode,
            tag_ttl_seconds=body.tag_ttl_seconds,
            serve_stale_on_error=body.serve_stale_on_error,
            serve_stale_on_404=body.serve_stale_on_404,
            created_by=principal.name,
        )
    assert registry.proxy is not None
    registry.proxy.invalidate()
    log_change(request, principal, "proxy.add", body.namespace, upstream=body.upstream_url)
    return proxy_out(rule)


@router.get(
    "/{namespace}",
    response_model=Proxy,
    summary="One pull-through cache (registry admins)",
    responses=NOT_A_CACHE,
)
def get_proxy(namespace: NamespacePath, principal: Caller, rules: Rules) -> Proxy:
    require_registry_admin(principal, "see pull-through caches")
    return proxy_out(rules.get(namespace))


@router.patch(
    "/{namespace}",
    response_model=Proxy,
    summary="Change a pull-through cache (registry admins)",
    responses=NOT_A_CACHE,
)
def update_proxy(
    request: Request,
    namespace: NamespacePath,
    body: ProxyUpdate,
    principal: Caller,
    rules: Rules,
    registry: RegistryDep,
) -> Proxy:
    require_registry_admin(principal, "change pull-through caches")
    changes = body.model_dump(exclude_unset=True)
    for key in (
        "upstream_url",
        "mode",
        "tag_ttl_seconds",
        "serve_stale_on_error",
        "serve_stale_on_404",
    ):
        if key in changes and changes[key] is None:
            raise ApiError(400, "INVALID_REQUEST", f"{key} cannot be null")
    with _invalid_as_400():
        rule = rules.update(namespace, changes)
    assert registry.proxy is not None
    registry.proxy.invalidate()
    changed = sorted(key for key in changes if key != "password")
    if "password" in changes:
        changed.append("password")
    log_change(request, principal, "proxy.update", namespace, changed=changed)
    return proxy_out(rule)


@router.delete(
    "/{namespace}",
    status_code=204,
    summary="Stop caching: the namespace's cached images stay, as local images (admins)",
    responses=NOT_A_CACHE,
)
def remove_proxy(
    request: Request,
    namespace: NamespacePath,
    principal: Caller,
    rules: Rules,
    registry: RegistryDep,
) -> Response:
    require_registry_admin(principal, "remove pull-through caches")
    rules.remove(namespace)
    assert registry.proxy is not None
    registry.proxy.invalidate()
    log_change(request, principal, "proxy.remove", namespace)
    return Response(status_code=204)

"""/v1/usage and the usage and quota of namespaces and repositories.

Usage numbers, in bytes: `logical_bytes` (every manifest with the blobs it names, as pulls
would transfer them), `stored_bytes` (unique blobs, each counted once) and `shared_bytes`
(the stored bytes also linked in another repository, or for a namespace in another
namespace). A namespace's quota limits its stored bytes: a push that would exceed it is
refused with 403 DENIED on /v2.

Who may read what: the registry's usage, registry admins; a namespace's, whoever can see
the namespace (its repositories are listed only where the caller may pull); a
repository's, whoever may pull it; a quota, the namespace's members. Only registry admins
set or remove quotas: a namespace admin cannot raise their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field, StrictInt

from cargohold.auth.policy import AccessPolicy
from cargohold.auth.principal import Principal
from cargohold.auth.roles import PULL
from cargohold.auth.store import AuthStore, NamespaceRecord
from cargohold.core.usage import UsageService, usage_dict
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    AnyCaller,
    Caller,
    RegistryDep,
    Store,
    can_see_namespace,
    check_name,
    error_doc,
    log_change,
    require_access,
    require_registry_admin,
)
from cargohold.http.api.errors import ApiError, denied, not_found
from cargohold.http.api.schemas import Body
from cargohold.reference import validate_name

router = APIRouter(
    prefix="/v1",
    tags=["usage and quotas"],
    responses={
        **AUTH_RESPONSES,
        400: error_doc("an invalid namespace, repository or quota (NAME_INVALID, INVALID_REQUEST)"),
        404: error_doc("no such namespace or repository (NAME_UNKNOWN), or no quota"),
    },
)

Namespace = Annotated[str, Path(description="the namespace: team")]
Repository = Annotated[str, Path(description="the repository, slashes and all: team/app")]


class UsageNumbers(BaseModel):
    logical_bytes: int = Field(
        description="every manifest's size plus the sizes of the blobs it names: what "
        "pulling everything would transfer, without deduplication"
    )
    stored_bytes: int = Field(description="the distinct blobs linked here, each counted once")
    shared_bytes: int = Field(
        description="the part of stored_bytes also linked elsewhere: in another repository "
        "(repository, registry) or another namespace (namespace)"
    )
    blobs: int = Field(description="distinct blobs linked here")
    manifests: int


class RepositoryUsage(UsageNumbers):
    repository: str


class NamespaceSummary(UsageNumbers):
    namespace: str
    repository_count: int
    quota_bytes: int | None = Field(description="the namespace's quota; null: none")
    quota_used_percent: float | None = Field(description="stored_bytes of quota_bytes, in %")


class NamespaceUsage(NamespaceSummary):
    repositories: list[RepositoryUsage] = Field(
        description="the namespace's repositories that the caller may pull"
    )


class RegistryUsage(UsageNumbers):
    repository_count: int
    namespaces: list[NamespaceSummary] = Field(
        description="every namespace with repositories or a quota"
    )


class Quota(BaseModel):
    namespace: str
    limit_bytes: int
    usage_bytes: int = Field(description="the namespace's stored bytes now")
    remaining_bytes: int
    used_percent: float | None
    updated_by: str | None
    updated_at: datetime


class QuotaUpdate(Body):
    limit_bytes: StrictInt | str = Field(
        description="bytes, or a size with a unit: KB, MB, GB, TB (powers of 1000) or KiB, "
        "MiB, GiB, TiB (powers of 1024)",
        examples=[10737418240, "10GiB"],
    )


def _service(registry: RegistryDep) -> UsageService:
    return UsageService(registry.meta)


def _namespace(store: AuthStore, principal: Principal, ns: str) -> NamespaceRecord | None:
    """The namespace's record when the caller may see it; 404 otherwise (private ones are
    reported missing). Registry admins also reach namespaces without a record."""
    check_name(ns, "namespace", 255)
    record = store.namespace(ns)
    if principal.is_admin:
        return record
    if record is None or not can_see_namespace(store, principal, record):
        raise not_found(f"no namespace {ns!r}")
    return record


def _is_member(store: AuthStore, principal: Principal, record: NamespaceRecord | None) -> bool:
    if principal.is_admin:
        return True
    if record is None:
        return False
    if principal.kind == "robot":
        return principal.robot_namespace == record.name
    if principal.user_id is None:
        return False
    if record.kind == "user" and record.name == principal.name:
        return True
    return record.name in store.namespaces_of_user(principal.user_id)


@router.get(
    "/usage", response_model=RegistryUsage, summary="Storage of the registry (registry admins)"
)
def registry_usage(principal: Caller, registry: RegistryDep) -> Any:
    require_registry_admin(principal, "read the registry's storage usage")
    return _service(registry).registry().to_dict()


@router.get(
    "/namespaces/{ns}/usage",
    response_model=NamespaceUsage,
    summary="Storage of a namespace and its repositories (anyone who can see it)",
)
def namespace_usage(
    request: Request, ns: Namespace, principal: AnyCaller, store: Store, registry: RegistryDep
) -> Any:
    _namespace(store, principal, ns)
    usage = _service(registry).namespace(ns).to_dict()
    policy: AccessPolicy = request.app.state.policy
    usage["repositories"] = [
        row for row in usage["repositories"] if PULL in policy.allowed(principal, row["repository"])
    ]
    return usage


@router.get(
    "/repositories/{name:path}/usage",
    response_model=RepositoryUsage,
    summary="Storage of a repository (pull)",
)
def repository_usage(
    request: Request, name: Repository, principal: AnyCaller, registry: RegistryDep
) -> Any:
    validate_name(name)
    require_access(request, principal, name, PULL, f"reading the storage usage of {name}")
    record = _service(registry).repository(name)
    return {"repository": record.name, **usage_dict(record)}


@router.get(
    "/namespaces/{ns}/quota",
    response_model=Quota,
    summary="A namespace's quota and how much of it is used (its members)",
)
def get_quota(ns: Namespace, principal: AnyCaller, store: Store, registry: RegistryDep) -> Any:
    record = _namespace(store, principal, ns)
    if not _is_member(store, principal, record):
        raise denied(f"only members of namespace {ns} may read its quota")
    status = _service(registry).quota(ns)
    if status is None:
        raise not_found(f"namespace {ns} has no quota")
    return status.to_dict()


@router.put(
    "/namespaces/{ns}/quota",
    response_model=Quota,
    summary="Set or change a namespace's quota (registry admins)",
    description=(
        "A limit below the namespace's current usage is accepted: pushes of new blobs are "
        "then refused until tags are deleted and garbage is collected."
    ),
)
def set_quota(
    request: Request,
    ns: Namespace,
    body: QuotaUpdate,
    principal: Caller,
    store: Store,
    registry: RegistryDep,
) -> Any:
    require_registry_admin(principal, "set namespace quotas")
    check_name(ns, "namespace", 255)
    service = _service(registry)
    if store.namespace(ns) is None and not registry.meta.namespace_usage(ns):
        raise not_found(f"no namespace {ns!r}")
    try:
        status = service.set_quota(ns, body.limit_bytes, principal.name)
    except ValueError as exc:
        raise ApiError(400, "INVALID_REQUEST", f"limit_bytes: {exc}") from None
    log_change(request, principal, "quota_set", ns, limit_bytes=status.quota.limit_bytes)
    return status.to_dict()


@router.delete(
    "/namespaces/{ns}/quota",
    status_code=204,
    response_class=Response,
    summary="Remove a namespace's quota (registry admins)",
)
def remove_quota(
    request: Request, ns: Namespace, principal: Caller, registry: RegistryDep
) -> Response:
    require_registry_admin(principal, "remove namespace quotas")
    check_name(ns, "namespace", 255)
    if not _service(registry).remove_quota(ns):
        raise not_found(f"namespace {ns} has no quota")
    log_change(request, principal, "quota_remove", ns)
    return Response(status_code=204)

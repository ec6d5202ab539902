"""/v1/orgs, /v1/namespaces/{ns} and visibility of namespaces and repositories."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from cargohold.auth.roles import Role
from cargohold.auth.store import NamespaceRecord
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    CONFLICT,
    INVALID,
    NOT_FOUND,
    Caller,
    Store,
    can_see_namespace,
    check_name,
    check_repository,
    log_change,
    namespace_admin,
    require_registry_admin,
)
from cargohold.http.api.errors import denied, not_found
from cargohold.http.api.schemas import (
    Namespace,
    NamespaceVisibility,
    OrgCreate,
    RepositoryVisibility,
    RepositoryVisibilityUpdate,
)

router = APIRouter(prefix="/v1", tags=["namespaces"], responses=AUTH_RESPONSES)


def _word(public: bool | None) -> str:
    return "inherit" if public is None else "public" if public else "private"


def namespace_out(record: NamespaceRecord) -> Namespace:
    return Namespace(name=record.name, kind=record.kind, public=record.public)  # type: ignore[arg-type]


@router.get(
    "/orgs",
    response_model=list[Namespace],
    summary="Organizations the caller can see (all of them for registry admins)",
)
def list_orgs(principal: Caller, store: Store) -> list[Namespace]:
    orgs = store.list_namespaces("org")
    if not principal.is_admin:
        assert principal.user_id is not None
        mine = store.namespaces_of_user(principal.user_id)
        orgs = [org for org in orgs if org.public or org.name in mine]
    return [namespace_out(org) for org in orgs]


@router.post(
    "/orgs",
    response_model=Namespace,
    status_code=201,
    summary="Add an organization (registry admins)",
    responses={**INVALID, **CONFLICT},
)
def add_org(request: Request, body: OrgCreate, principal: Caller, store: Store) -> Namespace:
    require_registry_admin(principal, "add organizations")
    check_name(body.name, "organization name")
    store.add_org(body.name, body.public)
    log_change(request, principal, "org_add", body.name, public=body.public)
    return Namespace(name=body.name, kind="org", public=body.public)


@router.get(
    "/namespaces/{ns}",
    response_model=Namespace,
    summary="A user's or an organization's namespace",
    responses={**INVALID, **NOT_FOUND},
)
def get_namespace(ns: str, principal: Caller, store: Store) -> Namespace:
    check_name(ns, "namespace", 255)
    record = store.namespace(ns)
    # A private namespace the caller has no part in is reported as missing.
    if record is None or not can_see_namespace(store, principal, record):
        raise not_found(f"no namespace {ns!r}")
    return namespace_out(record)


@router.put(
    "/namespaces/{ns}/visibility",
    response_model=Namespace,
    summary="Make a namespace public or private (its admins)",
    responses={**INVALID, **NOT_FOUND},
)
def set_namespace_visibility(
    request: Request, ns: str, body: NamespaceVisibility, principal: Caller, store: Store
) -> Namespace:
    namespace_admin(store, principal, ns)
    store.set_namespace_public(ns, body.public)
    log_change(request, principal, "visibility", ns, visibility=_word(body.public))
    record = store.namespace(ns)
    if record is None:
        raise not_found(f"no namespace {ns!r}")
    return namespace_out(record)


@router.put(
    "/repositories/{name:path}/visibility",
    response_model=RepositoryVisibility,
    summary="Override a repository's visibility, or (null) inherit its namespace's",
    description="Allowed to registry admins and admins of the namespace or the repository.",
    responses={**INVALID, **NOT_FOUND},
)
def set_repository_visibility(
    request: Request,
    name: Annotated[str, Path(description="the repository, slashes and all: acme/team/app")],
    body: RepositoryVisibilityUpdate,
    principal: Caller,
    store: Store,
) -> RepositoryVisibility:
    check_repository(name)
    namespace, _ = store.visibility(name)
    if not principal.is_admin:
        allowed = (
            namespace is not None
            and principal.user_id is not None
            and (
                (namespace.kind == "user" and namespace.name == principal.name)
                or Role.ADMIN in store.roles(principal.user_id, namespace.id, name)
            )
        )
        if not allowed:
            raise denied(f"you are not an admin of repository {name!r}")
    store.set_repository_public(name, body.public)
    log_change(request, principal, "visibility", name, visibility=_word(body.public))
    namespace, override = store.visibility(name)
    effective = override if override is not None else bool(namespace and namespace.public)
    return RepositoryVisibility(repository=name, public=override, effective=effective)

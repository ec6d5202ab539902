"""Who is calling (HTTP basic: a password or a personal access token) and what they may do."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.requests import HTTPConnection

from cargohold.auth.audit import AuditEvent, AuditLog
from cargohold.auth.authenticate import Authenticator
from cargohold.auth.limits import LoginLimits, login_key
from cargohold.auth.policy import AccessPolicy
from cargohold.auth.principal import Principal
from cargohold.auth.roles import PULL, Role
from cargohold.auth.store import AuthStore, NamespaceRecord
from cargohold.core.registry import Registry
from cargohold.errors import NameInvalid
from cargohold.http.access import basic_credentials
from cargohold.http.api.errors import (
    REALM,
    ApiError,
    denied,
    name_invalid,
    not_found,
    too_many,
    unauthorized,
)
from cargohold.http.api.schemas import ErrorBody
from cargohold.http.api.session import cookie_principal
from cargohold.reference import validate_name

audit = logging.getLogger("cargohold.api.audit")


class _Basic(HTTPBasic):
    """HTTP basic credentials, or None; a malformed header is a 401 in the API's error shape."""

    async def __call__(self, request: HTTPConnection) -> HTTPBasicCredentials | None:  # type: ignore[override]
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise unauthorized("use HTTP basic credentials: a password or an access token")
        credentials = basic_credentials(value.strip())
        if credentials is None:
            raise unauthorized("malformed basic credentials")
        return HTTPBasicCredentials(username=credentials[0], password=credentials[1])


basic = _Basic(
    realm=REALM,
    scheme_name="basic",
    description="A user name with its password or one of its personal access tokens.",
    auto_error=False,
)


def get_store(request: Request) -> AuthStore:
    return request.app.state.store  # type: ignore[no-any-return]


def get_authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator  # type: ignore[no-any-return]


Store = Annotated[AuthStore, Depends(get_store)]


def get_registry(request: Request) -> Registry:
    registry: Registry | None = request.app.state.registry
    if registry is None:
        raise ApiError(503, "UNAVAILABLE", "this admin API is not attached to a registry")
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


def address_of(request: Request) -> str | None:
    return request.client.host if request.client else None


# A plain def: FastAPI runs it in a worker thread, since checking a password (argon2) is slow.
def current_principal(
    request: Request,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
    authenticator: Annotated[Authenticator, Depends(get_authenticator)],
) -> Principal:
    if credentials is None:
        # The web UI signs in once and then sends its session cookie (http/api/session.py).
        principal = cookie_principal(request, authenticator)
        if principal is not None:
            return principal
        raise unauthorized()
    # The same pause after repeated failures as /v2, so the API is no way round it.
    failed_logins: LoginLimits | None = request.app.state.failed_logins
    address = address_of(request)
    attempt = login_key(address, credentials.username[:255])
    if failed_logins is not None:
        wait = failed_logins.blocked_for(attempt)
        if wait:
            raise too_many(f"too many failed logins from this address; retry in {wait}s", wait)
    principal = authenticator.login(credentials.username, credentials.password)
    if principal is None:
        if failed_logins is not None:
            failed_logins.failed(attempt)
        _audit(request, credentials.username[:255], "login_failed", request.url.path, "failed")
        raise unauthorized("invalid credentials")
    return principal


def current_user(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.kind != "user" or principal.user_id is None:
        raise denied("robot accounts cannot use the admin API")
    return principal


Caller = Annotated[Principal, Depends(current_user)]
AnyCaller = Annotated[Principal, Depends(current_principal)]


# The largest id a database integer column holds (history entries, rules).
MAX_ID = 2**63 - 1


def error_doc(description: str) -> dict[str, Any]:
    """An error response of an operation, for the OpenAPI document."""
    return {"model": ErrorBody, "description": description}


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error_doc("missing or invalid credentials (WWW-Authenticate: Basic)"),
    403: error_doc("the caller may not do this (code DENIED)"),
    429: error_doc("too many failed logins: retry after Retry-After seconds"),
    # Any request can be refused before an operation sees it: a malformed request (its
    # headers, say) is 400, and a path no route matches (a line break in a name) is 404.
    400: error_doc("a malformed request (headers, name or body)"),
    404: error_doc("no such resource, or no endpoint at this path"),
}
NOT_FOUND = {404: error_doc("no such user, namespace, team, robot, token or grant")}
CONFLICT = {409: error_doc("the name is taken, or the change would conflict")}
INVALID = {400: error_doc("an invalid name or request body (NAME_INVALID, INVALID_REQUEST)")}


# -- names
def check_name(value: str, what: str, max_length: int = 64) -> str:
    """One path component of the repository name grammar (a user, org, team, robot, token)."""
    if "/" in value:
        raise name_invalid(f"invalid {what} {value!r}: one path component, without '/'")
    try:
        validate_name(value)
    except NameInvalid:
        raise name_invalid(
            f"invalid {what} {value[:100]!r}: use lowercase letters, digits, '.', '_' and '-'"
        ) from None
    if len(value) > max_length:
        raise name_invalid(f"invalid {what}: at most {max_length} characters")
    return value


def check_repository(value: str, namespace: str | None = None) -> str:
    try:
        validate_name(value)
    except NameInvalid as exc:
        raise name_invalid(exc.message) from None
    if "/" not in value:
        raise name_invalid(f"{value!r} is a namespace: a repository is <namespace>/<name>")
    if namespace is not None and value.split("/", 1)[0] != namespace:
        raise name_invalid(f"repository {value} is not in namespace {namespace}")
    return value


# -- permissions
def require_access(
    request: Request, principal: Principal, repository: str, action: str, doing: str
) -> None:
    """403 unless the registry's policy lets the caller take `action` on `repository`.

    Decided exactly as on /v2. Without pull the answer is the same whether or not the
    repository exists, so private repositories stay hidden.
    """
    policy: AccessPolicy = request.app.state.policy
    allowed = policy.allowed(principal, repository)
    if action in allowed:
        return
    if PULL not in allowed:
        raise denied(f"{doing} needs {action} access to {repository}, which you do not have")
    raise denied(
        f"{doing} needs {action} access to {repository}; you may only " + ", ".join(sorted(allowed))
    )


def require_registry_admin(principal: Principal, doing: str) -> None:
    if not principal.is_admin:
        raise denied(f"only registry admins may {doing}")


def is_namespace_admin(store: AuthStore, principal: Principal, namespace: NamespaceRecord) -> bool:
    if principal.is_admin:
        return True
    if principal.user_id is None:
        return False
    if namespace.kind == "user" and namespace.name == principal.name:
        return True
    return ("", Role.ADMIN) in store.member_roles(principal.user_id, namespace.id)


def namespace_admin(store: AuthStore, principal: Principal, name: str) -> NamespaceRecord:
    """The namespace, if the caller administers it: 403 otherwise (404 only for admins)."""
    check_name(name, "namespace", 255)
    namespace = store.namespace(name)
    if namespace is None:
        if principal.is_admin:
            raise not_found(f"no namespace {name!r}")
        raise denied(f"you are not an admin of namespace {name!r}")
    if not is_namespace_admin(store, principal, namespace):
        raise denied(f"you are not an admin of namespace {name!r}")
    return namespace


def can_see_namespace(store: AuthStore, principal: Principal, namespace: NamespaceRecord) -> bool:
    """Public namespaces, and those the caller owns, administers, holds a grant or a team in
    (a robot: its own namespace)."""
    if principal.is_admin or namespace.public:
        return True
    if principal.kind == "robot":
        return principal.robot_namespace == namespace.name
    if principal.user_id is None:
        return False
    if namespace.kind == "user" and namespace.name == principal.name:
        return True
    return namespace.name in store.namespaces_of_user(principal.user_id)


def visible_namespace(store: AuthStore, principal: Principal, ns: str) -> NamespaceRecord:
    """The namespace, if the caller may see it; a private one the caller has no part in is
    reported as missing (404), like one that does not exist."""
    check_name(ns, "namespace", 255)
    record = store.namespace(ns)
    if record is None or not can_see_namespace(store, principal, record):
        raise not_found(f"no namespace {ns!r}")
    return record


def self_or_admin(principal: Principal, user: str) -> None:
    if principal.name != user and not principal.is_admin:
        raise denied(f"only {user} or a registry admin may manage {user}'s tokens")


def _audit(
    request: Request,
    actor: str,
    action: str,
    target: str,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    log: AuditLog | None = request.app.state.audit
    if log is not None:
        log.record(
            AuditEvent(
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                address=address_of(request),
                detail=detail or None,
            )
        )


def log_change(
    request: Request, principal: Principal, action: str, target: str, **detail: object
) -> None:
    """A management change: to the audit log (as the CLI's are) and to the server log."""
    fields = {key: value for key, value in detail.items() if value is not None}
    audit.info("%s %s by %s %s", action, target, principal.name, fields)
    _audit(request, principal.name, action, target, detail=fields)

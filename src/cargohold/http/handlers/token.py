"""The token endpoint (/token): Docker token auth (GET) and its OAuth2 form (POST)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargohold.auth.audit import AuditEvent
from cargohold.auth.authenticate import Authenticator
from cargohold.auth.limits import login_key
from cargohold.auth.principal import ANONYMOUS, Principal
from cargohold.auth.tokens import Access, InvalidToken
from cargohold.errors import NameInvalid
from cargohold.http.access import basic_credentials, claimed_user
from cargohold.http.errors import error_response
from cargohold.http.handlers.common import run_in_threadpool
from cargohold.reference import validate_name

_MAX_SCOPES = 20


def _login_key(request: Request, username: str) -> str:
    return login_key(request.client.host if request.client else None, username)


async def _too_many_failures(request: Request, username: str) -> Response | None:
    wait = await run_in_threadpool(
        request.app.state.failed_logins.blocked_for, _login_key(request, username)
    )
    if not wait:
        return None
    return error_response(
        "TOOMANYREQUESTS",
        f"too many failed logins from this address; retry in {wait}s",
        429,
        headers={"Retry-After": str(wait)},
    )


async def get_token(request: Request) -> Response:
    header = request.headers.get("authorization")
    if header is not None and (blocked := await _too_many_failures(request, claimed_user(header))):
        return blocked
    principal: Principal | None = ANONYMOUS
    if header is not None:
        scheme, _, value = header.partition(" ")
        credentials = basic_credentials(value.strip()) if scheme.lower() == "basic" else None
        principal = None
        if credentials is not None:
            principal = await run_in_threadpool(_auth(request).login, *credentials)
    scopes = request.query_params.getlist("scope")
    offline = request.query_params.get("offline_token", "").lower() == "true"
    return await _respond(request, principal, scopes, offline, claimed_user(header))


async def post_token(request: Request) -> Response:
    form = await request.form()
    claimed = str(form.get("username", "")) or "anonymous"
    if blocked := await _too_many_failures(request, claimed):
        return blocked
    grant_type = str(form.get("grant_type", ""))
    principal: Principal | None
    if grant_type == "password":
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        principal = await run_in_threadpool(_auth(request).login, username, password)
    elif grant_type == "refresh_token":
        principal = await run_in_threadpool(
            _from_refresh_token, request, str(form.get("refresh_token", ""))
        )
    else:
        return error_response("UNSUPPORTED", "grant_type must be password or refresh_token", 400)
    scopes = str(form.get("scope", "")).split()
    offline = str(form.get("access_type", "")) == "offline" or grant_type == "refresh_token"
    return await _respond(request, principal, scopes, offline, claimed[:255])


def _auth(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def _from_refresh_token(request: Request, token: str) -> Principal | None:
    try:
        claims = request.app.state.tokens.verify(token, refresh=True)
    except InvalidToken:
        return None
    principal: Principal | None = request.app.state.authenticator.resolve(claims["sub"])
    return principal


async def _respond(
    request: Request,
    principal: Principal | None,
    scopes: list[str],
    offline: bool,
    claimed: str,
) -> Response:
    audit = request.app.state.audit
    failed_logins = request.app.state.failed_logins
    address = request.client.host if request.client else None
    if principal is None:
        await run_in_threadpool(failed_logins.failed, login_key(address, claimed))
        audit.record(
            AuditEvent(
                actor=claimed,
                action="login_failed",
                target="/token",
                outcome="failed",
                address=address,
            )
        )
        return error_response(
            "UNAUTHORIZED",
            "invalid credentials: check the user name and password or token",
            401,
            headers={"WWW-Authenticate": 'Basic realm="cargohold"'},
        )
    if len(scopes) > _MAX_SCOPES:
        return error_response("DENIED", f"at most {_MAX_SCOPES} scopes per token", 400)
    if principal.authenticated:
        audit.record(
            AuditEvent(actor=principal.name, action="login", target="/token", address=address)
        )
    access = await run_in_threadpool(_grant, request, principal, scopes)
    tokens = request.app.state.tokens
    issued = tokens.issue(principal.name, access)
    body = {
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued.issued_at,
    }
    if offline and principal.authenticated:
        body["refresh_token"] = tokens.issue_refresh(principal.name)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _grant(request: Request, principal: Principal, scopes: list[str]) -> list[Access]:
    """The intersection of what each scope asks for and what the principal may do."""
    policy = request.app.state.policy
    open_registry = not policy.enforced()
    granted: list[Access] = []
    for text in scopes:
        parsed = _parse_scope(text)
        if parsed is None:
            continue
        resource_type, name, actions = parsed
        if resource_type == "registry" and name == "catalog":
            allowed = set(actions) if principal.authenticated or open_registry else set()
        elif resource_type == "repository":
            allowed = set(actions) if open_registry else set(policy.allowed(principal, name))
        else:
            allowed = set()
        granted.append(Access(resource_type, name, tuple(a for a in actions if a in allowed)))
    return granted


def _parse_scope(text: str) -> tuple[str, str, list[str]] | None:
    """'repository:team/app:pull,push' -> ('repository', 'team/app', ['pull', 'push'])."""
    head, colon, actions = text.rpartition(":")
    resource_type, colon2, name = head.partition(":")
    if not colon or not colon2 or not name:
        return None
    resource_type = resource_type.split("(", 1)[0]  # "repository(plugin)" is a class suffix
    if resource_type == "repository":
        try:
            validate_name(name)
        except NameInvalid:
            return None
    return resource_type, name, [a for a in actions.split(",") if a]

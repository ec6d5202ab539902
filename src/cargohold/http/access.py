"""Every /v2 request is authorised here, in one place, before any handler runs (the public
OSV advisory API, PUBLIC_PATHS, is only rate limited).

`required_access` maps a route and method to the repository and action it needs; the
middleware authenticates the caller (basic credentials or a bearer token), decides, and
either answers with a challenge or lets the request through with an `Access` object in
the scope that handlers can ask about other repositories (cross-repository mounts).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cargohold.auth.audit import AuditEvent, AuditLog
from cargohold.auth.authenticate import Authenticator
from cargohold.auth.limits import Budget, LoginLimits, RequestLimiter, login_key
from cargohold.auth.policy import AccessPolicy
from cargohold.auth.principal import ANONYMOUS, Principal
from cargohold.auth.roles import DELETE, PULL, PUSH
from cargohold.auth.tokens import InvalidToken, TokenService, granted_actions
from cargohold.errors import NameInvalid
from cargohold.http.audit import address_of
from cargohold.http.errors import error_body
from cargohold.http.nonblocking import cached_or_in_thread
from cargohold.http.v2paths import v2_route
from cargohold.reference import validate_name

# Served to anyone, without credentials, but rate limited like /v2: the OSV advisory API.
PUBLIC_PATHS = frozenset({"/v1/query", "/v1/querybatch"})


def required_access(method: str, path: str) -> tuple[str, str] | None:
    """(repository, action) a /v2 request needs, or None for /v2/ and the catalog."""
    if path in ("/v2/", "/v2", "/v2/_catalog"):
        return None
    routed = v2_route(path)
    if routed is None:
        return None  # no route: the router answers 404
    name, kind = routed
    if kind == "uploads":
        return name, PUSH
    if method in ("GET", "HEAD"):
        return name, PULL
    if method == "DELETE":
        return name, DELETE
    return name, PUSH


@dataclass(frozen=True, slots=True)
class Access:
    """What the caller of one request may do; handlers ask it about other repositories."""

    principal: Principal
    policy: AccessPolicy | None  # None: the registry is open
    token_claims: dict[str, Any] | None = None

    def can(self, repository: str, action: str) -> bool:
        if self.policy is None:
            return True
        if self.token_claims is not None:
            return action in granted_actions(self.token_claims, "repository", repository)
        return action in self.policy.allowed(self.principal, repository)

    def may_list(self, repository: str) -> bool:
        """Whether the catalog shows this repository to the caller (tokens or not)."""
        if self.policy is None:
            return True
        return PULL in self.policy.allowed(self.principal, repository)


class AccessMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        policy: AccessPolicy,
        authenticator: Authenticator,
        tokens: TokenService,
        audit: AuditLog,
        failed_logins: LoginLimits,
        rate_limiter: RequestLimiter | None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.authenticator = authenticator
        self.tokens = tokens
        self.audit = audit
        self.failed_logins = failed_logins
        self.rate_limiter = rate_limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        public = scope["path"] in PUBLIC_PATHS
        if not public and not scope["path"].startswith("/v2"):
            await self.app(scope, receive, send)
            return
        if public:
            # Public advisory data, anonymous as on osv.dev: no credentials asked or checked
            # (an Authorization header is ignored), only the rate limit below, by address.
            access = Access(ANONYMOUS, self.policy)
        elif not self.policy.enforced():  # cached; a database look-up every few seconds
            access = Access(ANONYMOUS, None)
        else:
            access = await self._authorize(scope, send)
            if access is None:
                return
        if self.rate_limiter is not None:
            key = access.principal.name or f"address:{address_of(scope)}"
            budget = await run_in_threadpool(self.rate_limiter.take, key)
            if not budget.allowed:
                await self._reject(
                    scope,
                    send,
                    429,
                    "TOOMANYREQUESTS",
                    f"over {budget.limit} requests per minute; retry in {budget.reset_seconds}s",
                    extra=[
                        (b"retry-after", str(budget.reset_seconds).encode()),
                        *_budget_headers(budget),
                    ],
                )
                return
            send = _with_headers(send, _budget_headers(budget))
        scope.setdefault("state", {})["access"] = access
        await self.app(scope, receive, send)

    async def _authorize(self, scope: Scope, send: Send) -> Access | None:
        """The caller's Access, or None after answering with a challenge or a denial."""
        header = _header(scope, b"authorization")
        address = address_of(scope) or ""
        # Only passwords can be guessed; a bad bearer token is simply rejected.
        attempt = login_key(address, claimed_user(header)) if _is_basic(header) else None
        if attempt is not None:
            wait = await run_in_threadpool(self.failed_logins.blocked_for, attempt)
            if wait:
                await self._reject(
                    scope,
                    send,
                    429,
                    "TOOMANYREQUESTS",
                    f"too many failed logins from this address; retry in {wait}s",
                    extra=[(b"retry-after", str(wait).encode())],
                )
                return None
        principal, claims, bad_credentials = await self._authenticate(header, scope["path"])
        if bad_credentials:
            if attempt is not None:
                await run_in_threadpool(self.failed_logins.failed, attempt)
            self.audit.record(
                AuditEvent(
                    actor=claimed_user(header),
                    action="login_failed",
                    target=scope["path"],
                    outcome="failed",
                    address=address,
                )
            )
            await self._reject(scope, send, 401, "UNAUTHORIZED", "invalid credentials", None)
            return None
        access = Access(principal, self.policy, claims)
        needed = required_access(scope["method"], scope["path"])
        if needed is None:
            if scope["path"] != "/v2/_catalog" and header is None:
                # GET /v2/ tells clients where to log in.
                await self._reject(scope, send, 401, "UNAUTHORIZED", "authentication required")
                return None
        elif _valid_name(needed[0]):
            # An invalid name holds nothing; the handler answers NAME_INVALID for it.
            repository, action = needed
            if claims is not None:
                allowed = access.can(repository, action)  # the token decides: no I/O
            else:
                allowed = await cached_or_in_thread(partial(access.can, repository, action))
            if not allowed:
                await self._deny(scope, send, access, header, repository, action)
                return None
        return access

    async def _authenticate(
        self, header: str | None, path: str
    ) -> tuple[Principal, dict[str, Any] | None, bool]:
        if header is None:
            return ANONYMOUS, None, False
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            credentials = basic_credentials(value.strip())
            if credentials is None:
                return ANONYMOUS, None, True
            principal = await run_in_threadpool(self.authenticator.login, *credentials)
            return (principal, None, False) if principal else (ANONYMOUS, None, True)
        if scheme == "bearer":
            try:
                claims = self.tokens.verify(value.strip())
            except InvalidToken:
                return ANONYMOUS, None, True
            subject = claims["sub"]
            if not subject:
                return ANONYMOUS, claims, False
            # The token's access claim decides; the principal itself is needed only to
            # filter the catalog, so it is looked up only there.
            if path == "/v2/_catalog":
                principal = await run_in_threadpool(self.authenticator.resolve, subject)
                return principal or ANONYMOUS, claims, False
            return Principal("user", subject), claims, False
        return ANONYMOUS, None, True

    async def _deny(
        self,
        scope: Scope,
        send: Send,
        access: Access,
        header: str | None,
        repository: str,
        action: str,
    ) -> None:
        wanted = "pull" if action == PULL else f"pull,{action}"
        scope_text = f"repository:{repository}:{wanted}"
        detail = [{"Type": "repository", "Name": repository, "Action": action}]
        if access.token_claims is not None:
            await self._reject(
                scope,
                send,
                401,
                "UNAUTHORIZED",
                "the token does not grant this access",
                scope_text,
                detail,
                error="insufficient_scope",
            )
        elif access.principal.authenticated:
            await self._reject(
                scope,
                send,
                403,
                "DENIED",
                "requested access to the resource is denied",
                None,
                detail,
            )
        else:
            await self._reject(
                scope, send, 401, "UNAUTHORIZED", "authentication required", scope_text, detail
            )

    async def _reject(
        self,
        scope: Scope,
        send: Send,
        status: int,
        code: str,
        message: str,
        scope_text: str | None = None,
        detail: Any = None,
        error: str | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = error_body(code, message, detail)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"docker-distribution-api-version", b"registry/2.0"),
            *(extra or []),
        ]
        if status == 401:
            challenge = (
                f'Bearer realm="{_realm(scope)}",service="{self.tokens.service}"'
                + (f',scope="{scope_text}"' if scope_text else "")
                + (f',error="{error}"' if error else "")
            )
            headers.append((b"www-authenticate", challenge.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _budget_headers(budget: Budget) -> list[tuple[bytes, bytes]]:
    return [
        (b"ratelimit-limit", str(budget.limit).encode()),
        (b"ratelimit-remaining", str(budget.remaining).encode()),
        (b"ratelimit-reset", str(budget.reset_seconds).encode()),
    ]


def _with_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *headers]}
        await send(message)

    return send_with_headers


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except NameInvalid:
        return False
    return True


def _is_basic(header: str | None) -> bool:
    return header is not None and header[:6].lower() == "basic "


def claimed_user(header: str | None) -> str:
    """The user name a rejected Authorization header claimed, for the audit log."""
    if header and header.lower().startswith("basic "):
        credentials = basic_credentials(header[6:].strip())
        if credentials is not None:
            return credentials[0][:255]
    return "anonymous"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def basic_credentials(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    if not colon or not username:
        return None
    return username, password


def _realm(scope: Scope) -> str:
    host = _header(scope, b"host") or "{}:{}".format(*scope.get("server", ("localhost", 80)))
    return f"{scope.get('scheme', 'http')}://{host}/token"

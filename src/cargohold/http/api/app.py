"""create_admin_api(): the JSON admin API as a FastAPI app, mounted by the registry at /api."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cargohold import __version__
from cargohold.auth.audit import AuditLog
from cargohold.auth.authenticate import Authenticator
from cargohold.auth.limits import LoginLimits
from cargohold.auth.policy import AccessPolicy
from cargohold.auth.store import AuthStore
from cargohold.core.gc import GcOptions
from cargohold.core.registry import Registry
from cargohold.http.api import audit as audit_routes
from cargohold.http.api import browse as browse_routes
from cargohold.http.api import diff as diff_routes
from cargohold.http.api import (
    gc,
    immutability,
    members,
    orgs,
    retention,
    robots,
    tags,
    tokens,
    users,
)
from cargohold.http.api import proxy as proxy_routes
from cargohold.http.api import replication as replication_routes
from cargohold.http.api import scan_policy as scan_policy_routes
from cargohold.http.api import scans as scan_routes
from cargohold.http.api import signin as session_routes
from cargohold.http.api import trust as trust_routes
from cargohold.http.api import usage as usage_routes
from cargohold.http.api import usage_history as usage_history_routes
from cargohold.http.api import user_sessions as user_session_routes
from cargohold.http.api import webhooks as webhook_routes
from cargohold.http.api.errors import EXCEPTION_HANDLERS
from cargohold.http.api.session import RenewSession

DESCRIPTION = """\
Manage users, organizations, teams, roles, visibility, robot accounts and personal access
tokens, and tags as versions (history, rollback, retagging, immutable-tag rules): the
operations of the `cargohold` admin commands, over HTTP.

Authenticate with HTTP basic credentials: a user name with its password or one of its
personal access tokens. Registry admins may do everything; admins of a namespace (the role
`admin` in it, or the owner of a personal namespace) manage its members, teams, robots and
visibility; every user manages their own tokens. Changes reach `/v2` within seconds.
The tag endpoints follow the registry's permissions exactly as `/v2` does (pull, push,
delete), and robot accounts may use them.

Errors have the registry's shape: `{"errors": [{"code": ..., "message": ...}]}`.
"""

# Secrets (passwords, tokens) pass through this API: nothing of it goes to telemetry.
NO_TELEMETRY: Any = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


def create_admin_api(
    store: AuthStore,
    authenticator: Authenticator,
    policy: AccessPolicy,
    *,
    audit: AuditLog | None = None,
    failed_logins: LoginLimits | None = None,
    registry: Registry | None = None,
    gc_options: GcOptions | None = None,
) -> FastAPI:
    """The admin API app; its routes are /v1/..., the registry mounts it under /api.

    With `audit`, changes and failed logins go to the audit log; with `failed_logins`,
    logins pause after repeated failures, as on /v2 (share the registry's instances).
    The tag and immutable-tag-rule endpoints work on `registry` (without it they answer
    503).
    """
    app = FastAPI(
        title="cargohold admin API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        telemetry=NO_TELEMETRY,
    )
    app.state.store = store
    app.state.authenticator = authenticator
    app.state.policy = policy
    app.state.audit = audit
    app.state.failed_logins = failed_logins
    app.state.registry = registry
    app.state.gc_options = gc_options
    routers = (users, tokens, orgs, members, robots, audit_routes, tags, immutability, gc)
    for module in (*routers, retention):
        app.include_router(module.router)
    app.include_router(scan_policy_routes.router)
    app.include_router(webhook_routes.router)
    app.include_router(proxy_routes.router)
    # After tags: .../team/app/tags/usage is a tag named usage, not a repository's usage.
    app.include_router(usage_routes.router)
    app.include_router(usage_history_routes.router)
    app.include_router(diff_routes.router)  # after tags: .../tags/diff is a tag
    app.include_router(scan_routes.router)  # after tags: .../tags/scans is a tag
    app.include_router(trust_routes.router)
    app.include_router(replication_routes.router)
    # The web UI: cookie sessions (renewed on each request) and browsing.
    app.include_router(session_routes.router)
    app.include_router(user_session_routes.router)
    app.include_router(browse_routes.router)  # after tags: .../tags/x/manifests/y is a tag
    app.add_middleware(RenewSession)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _invalid_is_400(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _invalid_is_400(schema: dict[str, Any]) -> dict[str, Any]:
    """Invalid bodies and parameters answer 400 in the error shape, not FastAPI's 422."""
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    invalid = {
        "description": "an invalid name or request body (NAME_INVALID, INVALID_REQUEST)",
        "content": {"application/json": {"schema": error_ref}},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", invalid)
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema

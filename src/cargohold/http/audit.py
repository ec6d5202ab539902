"""Records pushes, pulls and deletions in the audit log once they have succeeded."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cargohold.auth.audit import AuditEvent, AuditLog

_MANIFEST = re.compile(r"^/v2/(?P<name>.+?)/manifests/(?P<reference>[^/]+)$")
_BLOB = re.compile(r"^/v2/(?P<name>.+?)/blobs/(?P<reference>[^/]+)$")


def actor_of(scope: Scope) -> str:
    access = scope.get("state", {}).get("access")
    name = access.principal.name if access is not None else ""
    return name or "anonymous"


def address_of(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def _event_for(method: str, path: str, status: int) -> tuple[str, str, str] | None:
    """(action, repository, reference) worth recording, or None."""
    manifest = _MANIFEST.match(path)
    if manifest is not None:
        name, reference = manifest.group("name"), manifest.group("reference")
        if method == "GET" and status == 200:
            return "pull", name, reference
        if method == "PUT" and status == 201:
            return "push", name, reference
        if method == "DELETE" and status == 202:
            return "delete", name, reference
        return None
    blob = _BLOB.match(path)
    if blob is not None and method == "DELETE" and status == 202:
        return "delete", blob.group("name"), blob.group("reference")
    return None


class AuditMiddleware:
    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "PUT", "DELETE"):
            await self.app(scope, receive, send)
            return
        status = 0
        digest = ""

        async def watch(message: Message) -> None:
            nonlocal status, digest
            if message["type"] == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers", []):
                    if key.lower() == b"docker-content-digest":
                        digest = value.decode("latin-1")
            await send(message)

        await self.app(scope, receive, watch)
        event = _event_for(scope["method"], scope["path"], status)
        if event is not None:
            action, repository, reference = event
            detail = {"reference": reference}
            if digest:
                detail["digest"] = digest
            self.audit.record(
                AuditEvent(
                    actor=actor_of(scope),
                    action=action,
                    target=repository,
                    address=address_of(scope),
                    detail=detail,
                )
            )

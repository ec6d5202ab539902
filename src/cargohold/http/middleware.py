"""Structured access logs: one JSON line per request, written after the response ends.

Each request carries an ID: the client's X-Request-ID when it sent a sane one, else a new
one. It is echoed in the response and logged, so a user's report can be found in the log.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("cargohold.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        sent = 0
        request_id = _request_id(scope)

        async def send_and_count(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", request_id)],
                }
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            client = scope.get("client")
            access_log.info(
                json.dumps(
                    {
                        "id": request_id.decode(),
                        "method": scope["method"],
                        "path": scope["path"],
                        "query": scope.get("query_string", b"").decode("latin-1"),
                        "status": status,
                        "bytes": sent,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                        "remote": client[0] if client else None,
                    }
                )
            )


def _request_id(scope: Scope) -> bytes:
    for key, value in scope["headers"]:
        if key == b"x-request-id" and 0 < len(value) <= 128 and set(value) <= _ID_CHARS:
            return value
    return uuid.uuid4().hex.encode()


_ID_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")

"""One wrapper around every request: Prometheus metrics and the structured access log.

Both need the same measurements (status, bytes each way, time), so they are taken once.
Each request carries an ID: the client's X-Request-ID when it sent a sane one, else a new
one. With the access log on it is echoed in the response and logged, so a user's report
can be found in the log.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cargohold.http.metrics import Metrics, route_label

access_log = logging.getLogger("cargohold.access")


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, log_requests: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        logging_this = self.log_requests and access_log.isEnabledFor(logging.INFO)
        request_id = _request_id(scope) if logging_this else b""
        route = route_label(scope["path"])
        started = time.perf_counter()
        status = sent = received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                if request_id:
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), (b"x-request-id", request_id)],
                    }
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        in_flight = self.metrics.in_flight.labels(route)
        in_flight.inc()
        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            in_flight.dec()
            seconds = time.perf_counter() - started
            self.metrics.observe(scope["method"], route, status, seconds, sent, received)
            if logging_this:
                _log(scope, request_id, status, sent, seconds)


def _log(scope: Scope, request_id: bytes, status: int, sent: int, seconds: float) -> None:
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
                "ms": round(seconds * 1000, 2),
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

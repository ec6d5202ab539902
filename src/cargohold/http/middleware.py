"""One wrapper around every request: Prometheus metrics and the structured access log.

Both need the same measurements (status, bytes each way, time), so they are taken once.
Each request carries an ID: the client's X-Request-ID when it sent a sane one, else a new
one. With the access log on it is echoed in the response and logged, so a user's report
can be found in the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cargohold.http.errors import error_body
from cargohold.http.metrics import Metrics, route_label

access_log = logging.getLogger("cargohold.access")
log = logging.getLogger(__name__)


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
        start_headers: list[tuple[bytes, bytes]] = []

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, sent, start_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                start_headers = message.get("headers", [])
                if request_id:
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), (b"x-request-id", request_id)],
                    }
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":  # the server sends the file
                sent += _content_length(start_headers)
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


def _content_length(headers: list[tuple[bytes, bytes]]) -> int:
    # The length the response announced: the file was stat'ed for it already.
    for key, value in headers:
        if key.lower() == b"content-length":
            return int(value)
    return 0


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


class NulGuardMiddleware:
    """Refuse a NUL character in the path or query outside /v2, before any handler runs.

    No name, token, ID or filter of the admin API, the token endpoint or the UI may hold
    one, and PostgreSQL cannot even compare text with NUL (it raises, which was a 500).
    /v2 is left to its own grammar checks, which answer with the distribution spec's codes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"].startswith("/v2/")
            or ("\x00" not in scope["path"] and not _has_nul(scope.get("query_string", b"")))
        ):
            await self.app(scope, receive, send)
            return
        body = error_body("INVALID_REQUEST", "NUL characters are not allowed in URLs")
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _has_nul(query: bytes) -> bool:
    return b"%00" in query or b"\x00" in query


class BodyTimeoutMiddleware:
    """Answer 408 to a client that sends its request body too slowly (slowloris).

    The body has `seconds` to arrive, plus one second for every `min_rate` bytes received
    (Apache's mod_reqtimeout rule), so a large upload at a sane speed never times out while
    a trickle of bytes does. Only time spent waiting for the client counts: a handler that
    is slow to read (a busy database, say) never makes its client time out. On expiry the
    client gets 408 and the connection closes; the handler sees a client disconnect, so an
    upload rolls back its unfinished chunk.
    """

    def __init__(self, app: ASGIApp, seconds: float, min_rate: int) -> None:
        self.app = app
        self.seconds = seconds
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        waited = 0.0  # seconds spent waiting for the client's bytes
        received = 0
        body_done = False
        responded = False
        timed_out = False

        async def timed_receive() -> Message:
            nonlocal waited, received, body_done, timed_out
            if body_done or timed_out:
                # After the body only a disconnect can come; streaming responses wait for it.
                return await receive() if not timed_out else {"type": "http.disconnect"}
            allowed = self.seconds + received / self.min_rate - waited
            asked = time.monotonic()
            try:
                # asyncio.timeout arms one timer; wait_for would start a task per chunk.
                async with asyncio.timeout(max(allowed, 0.001)):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                await self._answer_timeout(scope, send, responded, received)
                return {"type": "http.disconnect"}
            finally:
                waited += time.monotonic() - asked
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responded
            if timed_out:
                return  # the 408 went out already
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise
            # The handler met the disconnect we made up; the client has its 408.
            log.info("request body timed out: %s %s", scope["method"], scope["path"])

    async def _answer_timeout(self, scope: Scope, send: Send, responded: bool, got: int) -> None:
        if responded:
            return  # too late for a status; closing the connection is all that is left
        body = error_body(
            "BLOB_UPLOAD_INVALID",
            f"the request body arrived too slowly ({got} bytes in "
            f"{self.seconds + got / self.min_rate:.0f}s allowed): send it faster or in "
            "smaller requests",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 408,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

"""uvicorn's httptools protocol with a deadline for each request's head, and each
response's head sent together with its body.

uvicorn times out idle keep-alive connections, and the body timeout (middleware.py)
covers slow bodies, but nothing bounds the time a client takes to send a request line
and headers: a slowloris client trickling header bytes holds a connection for ever. Here
a request's head must be complete `request_header_timeout` seconds after its first byte
(or after the connection opened); otherwise the client gets 408 and the connection
closes.

uvicorn writes a response's status line and headers to the socket as soon as the
application starts the response, and the body in a second write: two system calls and two
TCP segments per response, which on loopback cost more than the rest of a cached manifest
GET (measured with py-spy: 50 % of a tags list page). The transport here holds the head
until the body's first write (or the end of the response, or close) and sends both in one.

Applications may also answer with ASGI's path-send extension (Starlette's FileResponse does
when the server offers it): the server then sends the file with sendfile(2) (sendfile.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from cargohold.http.errors import error_body
from cargohold.http.sendfile import SendfileUnavailable, sendfile
from cargohold.process_env import SETTINGS_ENV

DEFAULT_HEADER_TIMEOUT = 30.0
_TIMEOUT_BODY = error_body("UNAVAILABLE", "the request's headers took too long to arrive")
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: application/json\r\n"
    b"Connection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


DEFAULT_SEND_TIMEOUT = 60.0


@functools.cache  # the settings of this worker process; not parsed again per connection
def _settings() -> dict[str, Any]:
    return json.loads(os.environ.get(SETTINGS_ENV) or "{}")


def _header_timeout() -> float:
    return float(_settings().get("request_header_timeout", DEFAULT_HEADER_TIMEOUT))


def _send_timeout() -> float:
    return float(_settings().get("response_send_timeout", DEFAULT_SEND_TIMEOUT))


_CONTINUE = b"HTTP/1.1 100 "


class CoalescingTransport:
    """A transport that sends a response head together with what follows it."""

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.writelines((head, data))
        elif data[:9] == b"HTTP/1.1 " and data[:13] != _CONTINUE:
            self._head = bytes(data)  # "100 Continue" must go at once: the client waits
        else:
            self._transport.write(data)

    def flush(self) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


PATHSEND = "http.response.pathsend"
_FALLBACK_CHUNK = 4 * 1024 * 1024


async def _offer_pathsend(
    app: ASGIApp, cycle: RequestResponseCycle, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run `app` with the path-send extension offered, and answer its path-send messages."""
    extensions = scope.get("extensions")
    scope["extensions"] = {**extensions, PATHSEND: {}} if extensions else {PATHSEND: {}}

    async def send_or_sendfile(message: Message) -> None:
        if message["type"] == PATHSEND:
            await _send_path(cycle, send, message["path"])
        else:
            await send(message)

    await app(scope, receive, send_or_sendfile)


async def _send_path(cycle: RequestResponseCycle, send: Send, path: str) -> None:
    """The body of a started response: the file at `path`, whose length its
    Content-Length gave."""
    if cycle.disconnected:
        return
    if cycle.scope["method"] == "HEAD":
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if not cycle.chunked_encoding:
        transport = cycle.transport
        transport.flush()  # type: ignore[attr-defined]  # the held-back head goes first
        try:
            await sendfile(transport, path, cycle.expected_content_length, _send_timeout())
        except SendfileUnavailable:
            pass
        else:
            cycle.expected_content_length = 0  # sent past uvicorn's own count
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
    await _send_as_bytes(send, path)


async def _send_as_bytes(send: Send, path: str) -> None:
    file = await anyio.open_file(path, "rb")
    try:
        while True:
            chunk = await file.read(_FALLBACK_CHUNK)
            more = len(chunk) == _FALLBACK_CHUNK
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if not more:
                return
    finally:
        await file.aclose()


class HeaderTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = _header_timeout()
        self._head_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self._head_timeout, self._head_expired)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_expired(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.write(TIMEOUT_RESPONSE)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]
        self._arm()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGIApp) -> None:  # type: ignore[override]
        super()._start_asgi_task(cycle, functools.partial(_offer_pathsend, app, cycle))

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]  # a response without a body
        super().on_response_complete()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

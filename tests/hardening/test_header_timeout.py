"""Slowloris on request heads: a request line and headers that trickle in get 408 and the
connection closes after request_header_timeout, while other clients are served; a head
that completes in time is answered normally."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import LiveRegistry

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    live = LiveRegistry(
        tmp_path_factory.mktemp("header-timeout") / "data",
        {"CARGOHOLD_REQUEST_HEADER_TIMEOUT": str(TIMEOUT), "CARGOHOLD_TEST_WORKERS": "1"},
    )
    yield live
    live.stop()


def read_all(sock: socket.socket, limit: float) -> bytes:
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for over {limit} s: {data!r}")
    return data


def test_a_trickling_head_gets_408_and_others_are_served(server: LiveRegistry) -> None:
    sockets = []
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        sockets.append(sock)
    started = time.monotonic()
    assert httpx.get(f"{server.url}/v2/").status_code == 200  # not starved by them
    for sock in sockets:
        sock.sendall(b"X-Slow: 1\r\n")  # still trickling, never finishing
    for sock in sockets:
        answer = read_all(sock, 10)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"code": "UNAVAILABLE"' in answer
        sock.close()
    assert time.monotonic() - started < 8


def test_a_silent_connection_is_closed(server: LiveRegistry) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        assert read_all(sock, 10).startswith(b"HTTP/1.1 408 ")


def test_a_slow_head_that_completes_in_time_is_answered(server: LiveRegistry) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        for piece in (b"GET /v2/ HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            sock.sendall(piece)
            time.sleep(TIMEOUT / 5)
        assert read_all(sock, 10).startswith(b"HTTP/1.1 200 ")
    # A keep-alive connection's next request gets a fresh deadline.
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/v2/").status_code == 200
        time.sleep(TIMEOUT * 1.5)
        assert http.get("/v2/").status_code == 200


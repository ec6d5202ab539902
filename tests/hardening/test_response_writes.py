"""Responses whose head is sent together with the body (http/protocol.py) still reach a
strict client at once: a response without a body (HEAD, 202, 204), "100 Continue" before an
upload body, and several responses on one keep-alive connection, each in one piece."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator

import pytest
from tests.conftest import LiveRegistry


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    live = LiveRegistry(
        tmp_path_factory.mktemp("response-writes") / "data", {"CARGOHOLD_TEST_WORKERS": "1"}
    )
    yield live
    live.stop()


def read_response(sock: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    """One response: status line, headers, and a body of its Content-Length (no more)."""
    sock.settimeout(5)  # a head held back would time out here
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, headers, rest


def request(sock: socket.socket, method: str, path: str, extra: str = "") -> None:
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: registry\r\n{extra}\r\n".encode())


def test_bodiless_responses_and_100_continue_arrive_at_once(server: LiveRegistry) -> None:
    blob = b"coalesced " * 500
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        request(sock, "POST", "/v2/co/app/blobs/uploads/", "Content-Length: 0\r\n")
        status, headers, rest = read_response(sock)
        assert status.startswith(b"HTTP/1.1 202 ") and rest == b""
        location = headers["location"]

        # A strict client sends the body only after "100 Continue".
        request(
            sock,
            "PUT",
            f"{location}?digest={digest}",
            f"Content-Length: {len(blob)}\r\nExpect: 100-continue\r\n",
        )
        status, _, rest = read_response(sock)
        assert status == b"HTTP/1.1 100 Continue" and rest == b""
        sock.sendall(blob)
        status, headers, rest = read_response(sock)
        assert status.startswith(b"HTTP/1.1 201 "), status
        assert headers["docker-content-digest"] == digest

        request(sock, "HEAD", f"/v2/co/app/blobs/{digest}")
        status, headers, rest = read_response(sock)
        assert status.startswith(b"HTTP/1.1 200 ") and rest == b""
        assert headers["content-length"] == str(len(blob))

        # Pipelined: two requests at once, two whole responses in order.
        sock.sendall(
            f"GET /v2/co/app/blobs/{digest} HTTP/1.1\r\nHost: r\r\n\r\n"
            f"GET /v2/co/app/tags/list HTTP/1.1\r\nHost: r\r\n\r\n".encode()
        )
        status, headers, rest = read_response(sock)
        assert status.startswith(b"HTTP/1.1 200 ")
        body = rest
        while len(body) < len(blob):
            body += sock.recv(65536)
        assert body[: len(blob)] == blob
        leftover = body[len(blob) :]
        while not leftover.endswith(b"}"):
            leftover += sock.recv(65536)
        assert leftover.startswith(b"HTTP/1.1 200 ")
        assert leftover.endswith(b'{"name":"co/app","tags":[]}')

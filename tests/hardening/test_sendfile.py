"""Blobs sent with sendfile(2) (http/sendfile.py): whole and exact on a keep-alive
connection and when pipelined, a range still served from Python, a client that leaves
mid-blob or stops reading costs nothing to the next one, and the bytes are counted."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import struct
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import LiveRegistry

from .test_response_writes import read_response, request

BLOB_BYTES = 48 * 1024 * 1024 + 12_345  # more than any socket buffer, not a round size
SEND_TIMEOUT = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    live = LiveRegistry(
        tmp_path_factory.mktemp("sendfile") / "data",
        {"CARGOHOLD_TEST_WORKERS": "1", "CARGOHOLD_RESPONSE_SEND_TIMEOUT": str(SEND_TIMEOUT)},
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def blob(server: LiveRegistry) -> tuple[bytes, str]:
    data = os.urandom(BLOB_BYTES)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        location = client.post("/v2/sf/app/blobs/uploads/").headers["location"]
        put = client.put(location, params={"digest": digest}, content=data)
        assert put.status_code == 201, put.text
    return data, digest


def read_body(sock: socket.socket, rest: bytes, length: int) -> tuple[bytes, bytes]:
    """A body of `length` bytes, and what came after it (a pipelined response)."""
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(4 * 1024 * 1024)
        assert chunk, f"connection closed after {len(body)} of {length} bytes"
        body += chunk
    return bytes(body[:length]), bytes(body[length:])


def test_blobs_whole_on_keep_alive_and_pipelined(server: LiveRegistry, blob: tuple) -> None:
    data, digest = blob
    path = f"/v2/sf/app/blobs/{digest}"
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        for _ in range(2):
            request(sock, "GET", path)
            status, headers, rest = read_response(sock)
            assert status.startswith(b"HTTP/1.1 200 ")
            assert headers["docker-content-digest"] == digest
            assert read_body(sock, rest, int(headers["content-length"])) == (data, b"")

        # Pipelined behind the blob: the tags list comes after the blob's last byte.
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: r\r\n\r\n"
            f"GET /v2/sf/app/tags/list HTTP/1.1\r\nHost: r\r\n\r\n".encode()
        )
        status, headers, rest = read_response(sock)
        assert status.startswith(b"HTTP/1.1 200 ")
        body, tail = read_body(sock, rest, int(headers["content-length"]))
        assert body == data
        while b'"tags":[]' not in tail:
            chunk = sock.recv(65536)
            assert chunk, tail
            tail += chunk
        assert tail.startswith(b"HTTP/1.1 200 "), tail[:80]


def test_a_range_is_still_served(server: LiveRegistry, blob: tuple) -> None:
    data, digest = blob
    r = httpx.get(
        f"{server.url}/v2/sf/app/blobs/{digest}",
        headers={"Range": "bytes=1000-1999"},
        timeout=30,
    )
    assert r.status_code == 206
    assert r.content == data[1000:2000]


def test_a_client_leaving_mid_blob_costs_the_next_nothing(
    server: LiveRegistry, blob: tuple
) -> None:
    data, digest = blob
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            request(sock, "GET", f"/v2/sf/app/blobs/{digest}")
            read_response(sock)
            sock.recv(1024 * 1024)
            # A reset, not a polite close: the server's next sendfile fails at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    r = httpx.get(f"{server.url}/v2/sf/app/blobs/{digest}", timeout=30)
    assert r.status_code == 200 and r.content == data


def test_a_client_that_stops_reading_is_cut_off(server: LiveRegistry, blob: tuple) -> None:
    data, digest = blob
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        request(sock, "GET", f"/v2/sf/app/blobs/{digest}")
        status, _, rest = read_response(sock)
        assert status.startswith(b"HTTP/1.1 200 ")
        time.sleep(SEND_TIMEOUT + 2)  # reads nothing: the server's buffers fill and stall
        got = len(rest)
        sock.settimeout(10)
        while chunk := sock.recv(4 * 1024 * 1024):
            got += len(chunk)
        assert got < len(data), "the stalled client was sent the whole blob"
    # The server is fine, and the blob is whole for the next client.
    r = httpx.get(f"{server.url}/v2/sf/app/blobs/{digest}", timeout=30)
    assert r.status_code == 200 and r.content == data


def test_sent_bytes_are_counted(server: LiveRegistry, blob: tuple) -> None:
    data, digest = blob

    def sent() -> float:
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        found = re.search(r'^cargohold_http_sent_bytes_total\{route="blob"\} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    before = sent()
    assert httpx.get(f"{server.url}/v2/sf/app/blobs/{digest}", timeout=30).content == data
    assert sent() - before == len(data)

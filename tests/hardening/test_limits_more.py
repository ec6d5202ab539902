"""Resource limits over HTTP: upload size, open upload sessions per user, slow bodies, idle
connections. Each is enforced with the distribution spec's error shape."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import LiveRegistry, add_user

PASSWORD = "limits-more-password"
MAX_UPLOAD = 1000
MAX_SESSIONS = 3
BODY_TIMEOUT = 2.0
MIN_RATE = 1000  # bytes per second that earn one more second
KEEP_ALIVE = 1
OCTET = "application/octet-stream"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    data_dir = tmp_path_factory.mktemp("limits-more") / "data"
    for name in ("alice", "bob", "carol"):
        add_user(data_dir, name, PASSWORD, admin=True)
    server = LiveRegistry(
        data_dir,
        {
            "CARGOHOLD_MAX_UPLOAD_SIZE": str(MAX_UPLOAD),
            "CARGOHOLD_MAX_UPLOADS_PER_PRINCIPAL": str(MAX_SESSIONS),
            "CARGOHOLD_REQUEST_BODY_TIMEOUT": str(BODY_TIMEOUT),
            "CARGOHOLD_REQUEST_BODY_MIN_RATE": str(MIN_RATE),
            "CARGOHOLD_KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE),
            # Two workers: session counts and limits must hold whichever one answers.
            "CARGOHOLD_TEST_WORKERS": "2",
        },
    )
    yield server
    server.stop()


def _client(server: LiveRegistry, user: str = "alice") -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=(user, PASSWORD), timeout=30)


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, f"{resp.status_code} {resp.text[:300]}"
    errors = resp.json()["errors"]
    assert errors[0]["code"] == code, resp.text
    message: str = errors[0]["message"]
    return message


def _start(http: httpx.Client, repo: str) -> str:
    resp = http.post(f"/v2/{repo}/blobs/uploads/")
    assert resp.status_code == 202, resp.text
    return resp.headers["location"]


# ---------------------------------------------------------------- maximum upload size


def test_blob_at_the_limit_is_accepted(limited: LiveRegistry) -> None:
    data = b"a" * MAX_UPLOAD
    with _client(limited) as http:
        resp = http.post(
            "/v2/size/ok/blobs/uploads/", params={"digest": _digest(data)}, content=data
        )
        assert resp.status_code == 201, resp.text
        assert http.head(f"/v2/size/ok/blobs/{_digest(data)}").status_code == 200


def test_monolithic_upload_over_the_limit_is_413_and_stores_nothing(
    limited: LiveRegistry,
) -> None:
    data = b"b" * (MAX_UPLOAD + 1)
    with _client(limited) as http:
        resp = http.post(
            "/v2/size/mono/blobs/uploads/", params={"digest": _digest(data)}, content=data
        )
        message = _error(resp, 413, "SIZE_INVALID")
        assert str(MAX_UPLOAD) in message
        location = _start(http, "size/mono")
        resp = http.put(location, params={"digest": _digest(data)}, content=data)
        _error(resp, 413, "SIZE_INVALID")
        assert http.head(f"/v2/size/mono/blobs/{_digest(data)}").status_code == 404
        # The refused session is gone, not left half-written.
        _error(http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_chunk_that_crosses_the_limit_discards_the_upload(limited: LiveRegistry) -> None:
    with _client(limited) as http:
        location = _start(http, "size/chunked")
        first = http.patch(
            location, content=b"c" * 600, headers={"Content-Range": "0-599", "Content-Type": OCTET}
        )
        assert first.status_code == 202, first.text
        second = http.patch(
            location,
            content=b"c" * 600,
            headers={"Content-Range": "600-1199", "Content-Type": OCTET},
        )
        _error(second, 413, "SIZE_INVALID")
        _error(http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_streamed_body_without_length_is_cut_at_the_limit(limited: LiveRegistry) -> None:
    """A chunked (no Content-Length) body cannot be refused up front: it is counted."""

    def body() -> Iterator[bytes]:
        for _ in range(30):
            yield b"d" * 100

    with _client(limited) as http:
        location = _start(http, "size/streamed")
        resp = http.patch(
            location, content=body(), headers={"Content-Type": "application/octet-stream"}
        )
        assert "content-length" not in resp.request.headers
        _error(resp, 413, "SIZE_INVALID")
        _error(http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


# ---------------------------------------------------------------- open sessions per user


def test_open_upload_sessions_per_user_are_capped(limited: LiveRegistry) -> None:
    with _client(limited, "bob") as bob, _client(limited, "carol") as carol:
        held = [_start(bob, f"sessions/app{i}") for i in range(MAX_SESSIONS)]
        refused = bob.post("/v2/sessions/more/blobs/uploads/")
        message = _error(refused, 429, "TOOMANYREQUESTS")
        assert "bob" in message and str(MAX_SESSIONS) in message
        assert int(refused.headers["retry-after"]) >= 1
        # A monolithic push opens a session too.
        data = b"monolithic"
        mono = bob.post(
            "/v2/sessions/more/blobs/uploads/", params={"digest": _digest(data)}, content=data
        )
        _error(mono, 429, "TOOMANYREQUESTS")
        # Another user is not affected.
        carol_location = _start(carol, "sessions/carol")
        assert carol.delete(carol_location).status_code == 204
        # Finishing or cancelling a session frees its place.
        assert bob.delete(held[0]).status_code == 204
        done = bob.put(held[1], params={"digest": _digest(b"")})
        assert done.status_code == 201, done.text
        again = [_start(bob, "sessions/again") for _ in range(2)]
        _error(bob.post("/v2/sessions/more/blobs/uploads/"), 429, "TOOMANYREQUESTS")
        for location in [held[2], *again]:
            assert bob.delete(location).status_code == 204


# ---------------------------------------------------------------- slow bodies, idle connections


def _raw_request_head(server: LiveRegistry, method: str, path: str, length: int) -> bytes:
    credentials = httpx.BasicAuth("alice", PASSWORD)
    auth = next(credentials.auth_flow(httpx.Request("GET", server.url))).headers["Authorization"]
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {server.host}\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except OSError:  # reset: the server closed while we were still sending
            return data
        if not piece:
            return data
        data += piece


def test_slowloris_body_times_out_while_others_are_served(limited: LiveRegistry) -> None:
    with _client(limited) as http:
        location = _start(http, "slow/body")
        path = httpx.URL(location).path
        with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
            sock.sendall(_raw_request_head(limited, "PATCH", path, 1000))
            started = time.monotonic()
            answer: list[bytes] = []

            def trickle() -> None:
                # 4 bytes every 0.2 s: alive, but far below any sane rate.
                try:
                    while time.monotonic() - started < 10:
                        sock.sendall(b"xxxx")
                        time.sleep(0.2)
                except OSError:
                    pass  # the server closed the connection: what we want

            sender = threading.Thread(target=trickle, daemon=True)
            sender.start()
            # Meanwhile other clients are served promptly.
            for _ in range(5):
                t0 = time.monotonic()
                assert http.get("/v2/").status_code == 200
                assert time.monotonic() - t0 < 1.0
            answer.append(_read_response(sock))
            elapsed = time.monotonic() - started
            sender.join(timeout=15)
        assert answer[0].startswith(b"HTTP/1.1 408 "), answer[0][:300]
        assert b"connection: close" in answer[0].lower()
        assert b'"code": "BLOB_UPLOAD_INVALID"' in answer[0]
        assert BODY_TIMEOUT <= elapsed < BODY_TIMEOUT + 4, elapsed
        # The unfinished chunk was rolled back: the upload still holds nothing.
        status = http.get(location)
        assert status.status_code == 204, status.text
        assert status.headers["range"] == "0-0"
        assert http.delete(location).status_code == 204


def test_stalled_body_times_out(limited: LiveRegistry) -> None:
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(_raw_request_head(limited, "PUT", "/v2/slow/stalled/manifests/v1", 500))
        sock.sendall(b"{")
        started = time.monotonic()
        answer = _read_response(sock)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b'"code": "BLOB_UPLOAD_INVALID"' in answer.split(b"\r\n\r\n", 1)[1]
    assert BODY_TIMEOUT - 0.5 <= elapsed < BODY_TIMEOUT + 4, elapsed


def test_steady_upload_longer_than_the_timeout_completes(limited: LiveRegistry) -> None:
    """Bytes received extend the deadline, so only slow senders are cut, not long ones."""
    data = b"e" * 900  # under the size limit, sent in 2.2 s: each 100 bytes earn 0.1 s

    def body() -> Iterator[bytes]:
        for offset in range(0, len(data), 100):
            if offset:
                time.sleep(0.28)
            yield data[offset : offset + 100]

    with _client(limited) as http:
        location = _start(http, "slow/steady")
        started = time.monotonic()
        resp = http.put(location, params={"digest": _digest(data)}, content=body())
        elapsed = time.monotonic() - started
    assert resp.status_code == 201, resp.text
    # The premise: the body took longer than the bare timeout (2 s; 2.9 s with its bytes).
    assert elapsed > BODY_TIMEOUT, elapsed


def test_idle_keep_alive_connection_is_closed(limited: LiveRegistry) -> None:
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {limited.host}\r\n\r\n".encode())
        started = time.monotonic()
        everything = _read_response(sock)  # the answer, then nothing until the close
        idle = time.monotonic() - started
    assert everything.startswith(b"HTTP/1.1 200 "), everything[:200]
    assert b"connection: close" not in everything.lower()  # it was kept alive, then closed
    assert KEEP_ALIVE - 0.5 <= idle < KEEP_ALIVE + 3, idle

"""A server killed with SIGKILL mid-push shows nothing half-written and can resume."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import httpx
from tests.conftest import LiveRegistry


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_chunked_upload_resumes_after_crash(tmp_path: Path) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    data_dir = tmp_path / "data"
    server = LiveRegistry(data_dir)
    try:
        start = httpx.post(f"{server.url}/v2/crash/app/blobs/uploads/")
        location = start.headers["location"]
        first = httpx.patch(
            server.url + location,
            content=data[:1_000_000],
            headers={"Content-Range": "0-999999"},
        )
        assert first.status_code == 202
    finally:
        server.kill()

    server = LiveRegistry(data_dir)
    try:
        status = httpx.get(server.url + location)
        assert status.status_code == 204
        assert status.headers["range"] == "0-999999"
        assert httpx.head(f"{server.url}/v2/crash/app/blobs/{sha256(data)}").status_code == 404
        done = httpx.put(
            server.url + location,
            params={"digest": sha256(data)},
            content=data[1_000_000:],
            headers={"Content-Range": f"1000000-{len(data) - 1}"},
        )
        assert done.status_code == 201, done.text
        pulled = httpx.get(f"{server.url}/v2/crash/app/blobs/{sha256(data)}")
        assert pulled.content == data
    finally:
        server.stop()


def test_killed_monolithic_upload_leaves_nothing_visible(tmp_path: Path) -> None:
    data = b"x" * (8 * 1024 * 1024)
    digest = sha256(data)
    data_dir = tmp_path / "data"
    server = LiveRegistry(data_dir)
    try:
        # Send headers and part of the body by hand, then crash the server mid-body.
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                (
                    f"POST /v2/crash/mono/blobs/uploads/?digest={digest} HTTP/1.1\r\n"
                    f"Host: {server.host}\r\nContent-Length: {len(data)}\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n"
                ).encode()
                + data[: len(data) // 2]
            )
            server.kill()
    except BaseException:
        server.kill()
        raise

    server = LiveRegistry(data_dir)
    try:
        assert httpx.head(f"{server.url}/v2/crash/mono/blobs/{digest}").status_code == 404
        assert httpx.get(f"{server.url}/v2/crash/mono/tags/list").status_code == 404
        retry = httpx.post(
            f"{server.url}/v2/crash/mono/blobs/uploads/", params={"digest": digest}, content=data
        )
        assert retry.status_code == 201
        assert httpx.get(f"{server.url}/v2/crash/mono/blobs/{digest}").content == data
    finally:
        server.stop()

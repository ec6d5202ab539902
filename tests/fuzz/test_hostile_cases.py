"""Specific attacks over HTTP, against both live setups: path traversal, encoded slashes,
oversized and absurd manifests, lying sizes and digests, wrong Content-Length, slow
clients, duplicate parameters, unicode and NUL bytes, overlong names."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import quote

import httpx
import pytest
from tests.api.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    OCTET,
    assert_error,
    describe,
    digest_of,
    encode,
    error_codes,
    image_manifest,
    make_config,
    random_bytes,
    start_upload,
    unique,
    upload_blob,
)
from tests.conftest import LiveRegistry

MAX_MANIFEST = 4 * 1024 * 1024  # the default max_manifest_size


def raw_exchange(server: LiveRegistry, request: bytes, end_stream: bool = True) -> bytes:
    """Send exact bytes (no client-side path normalisation) and read until the server
    closes; `end_stream` ends our side after the bytes, as a client that gives up does."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        if end_stream:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            try:
                piece = sock.recv(65536)
            except OSError:
                break
            if not piece:
                break
            data += piece
    return data


def raw_get(server: LiveRegistry, path: str) -> tuple[int, bytes]:
    answer = raw_exchange(
        server,
        f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n".encode(),
        end_stream=False,
    )
    assert answer, f"no answer to GET {path}"
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1]


def _codes(body: bytes) -> set[str]:
    return {error["code"] for error in json.loads(body)["errors"]}


# ---------------------------------------------------------------- path traversal


@pytest.mark.parametrize(
    "path",
    [
        "/v2/team/../../etc/tags/list",
        "/v2/team/%2e%2e/%2e%2e/etc/tags/list",
        "/v2/team/..%2F..%2Fetc/tags/list",
        "/v2/%2e%2e/tags/list",
        "/v2/../tags/list",
        "/v2/team/./app/tags/list",
        "/v2/team//app/tags/list",
        "/v2/team%5c..%5capp/tags/list",
    ],
)
def test_traversal_in_names_is_name_invalid(registry: LiveRegistry, path: str) -> None:
    status, body = raw_get(registry, path)
    assert status in (400, 404), (path, status, body[:300])
    codes = _codes(body)
    assert codes & {"NAME_INVALID", "UNSUPPORTED"}, (path, body[:300])
    if status == 400:
        assert codes == {"NAME_INVALID"}, (path, body[:300])


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "sha256:%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2F..%2Fmeta.db",
        "sha256:" + "a" * 60 + "%2F..",
        "sha256:" + "a" * 62 + "..",
        "%2e%2e",
    ],
)
def test_traversal_in_digests_reads_nothing(registry: LiveRegistry, digest: str) -> None:
    repo = unique("trav")
    for path in (
        f"/v2/{repo}/blobs/{digest}",
        f"/v2/{repo}/manifests/{digest}",
        f"/v2/{repo}/referrers/{digest}",
    ):
        status, body = raw_get(registry, path)
        assert status in (400, 404), (path, status, body[:300])
        assert b"root:" not in body and b"SQLite" not in body
        codes = _codes(body)
        assert codes & {"DIGEST_INVALID", "UNSUPPORTED", "MANIFEST_INVALID"}, (path, body[:300])


def test_traversal_in_upload_ids_and_digest_parameters(client: httpx.Client) -> None:
    repo = unique("trav")
    for upload_id in ("..", "...", "..%2F..%2Fblobs", "%2e%2e", "a%00b", "x" * 300):
        resp = client.get(f"/v2/{repo}/blobs/uploads/{upload_id}")
        assert resp.status_code == 404, describe(resp)
        assert set(error_codes(resp)) & {"BLOB_UPLOAD_UNKNOWN", "UNSUPPORTED"}, describe(resp)
    data = b"traversal"
    for bad in ("sha256:../../../etc/passwd", "../x", "sha256:%2e%2e"):
        resp = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": bad}, content=data)
        assert_error(resp, 400, "DIGEST_INVALID")
        resp = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": bad, "from": "a/b"})
        assert_error(resp, 400, "DIGEST_INVALID")


def test_encoded_slash_is_a_slash(client: httpx.Client) -> None:
    """%2F in a name decodes to / (the same repository), never to another place."""
    repo = unique("enc")
    digest = upload_blob(client, f"{repo}/app", b"encoded slash")
    resp = client.get(f"/v2/{repo}%2Fapp/blobs/{digest}")
    assert resp.status_code == 200 and resp.content == b"encoded slash", describe(resp)


# ---------------------------------------------------------------- manifests


def test_manifest_over_the_size_limit_is_413(client: httpx.Client) -> None:
    repo = unique("huge")
    body = b'{"schemaVersion": 2, "annotations": {"x": "' + b"a" * MAX_MANIFEST + b'"}}'
    resp = client.put(
        f"/v2/{repo}/manifests/big", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(resp, 413, "SIZE_INVALID")

    def chunks() -> object:  # no Content-Length: the limit is counted while reading
        for _ in range(5):
            yield b" " * (MAX_MANIFEST // 4)

    resp = client.put(
        f"/v2/{repo}/manifests/big",
        content=chunks(),  # type: ignore[arg-type]
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert_error(resp, 413, "SIZE_INVALID")
    assert client.get(f"/v2/{repo}/manifests/big").status_code == 404


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_manifest_is_manifest_invalid(client: httpx.Client, depth: int) -> None:
    repo = unique("deep")
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        body = (opener * depth + "1" + closer * depth).encode()
        resp = client.put(
            f"/v2/{repo}/manifests/deep", content=body, headers={"Content-Type": OCI_MANIFEST}
        )
        assert_error(resp, 400, "MANIFEST_INVALID")


def test_manifest_with_a_huge_number_is_manifest_invalid(client: httpx.Client) -> None:
    body = b'{"schemaVersion": ' + b"9" * 5000 + b"}"
    resp = client.put(
        f"/v2/{unique('num')}/manifests/n", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(resp, 400, "MANIFEST_INVALID")


def test_manifest_claiming_a_huge_blob_size_is_refused(client: httpx.Client) -> None:
    repo = unique("liar")
    config = make_config()
    layer = random_bytes(100)
    upload_blob(client, repo, config)
    upload_blob(client, repo, layer)
    manifest = image_manifest(config, [layer])
    manifest["layers"][0]["size"] = 2**62  # the stored layer has 100 bytes
    resp = client.put(
        f"/v2/{repo}/manifests/v1", content=encode(manifest), headers={"Content-Type": OCI_MANIFEST}
    )
    assert resp.status_code == 400, describe(resp)
    assert set(error_codes(resp)) & {"MANIFEST_INVALID", "SIZE_INVALID"}, describe(resp)
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 404
    manifest["layers"][0]["size"] = 2**64  # beyond any integer a descriptor may hold
    resp = client.put(
        f"/v2/{repo}/manifests/v1", content=encode(manifest), headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(resp, 400, "MANIFEST_INVALID")


@pytest.mark.parametrize(
    "poison",
    [
        {"artifactType": "application/x\u0000"},
        {"annotations": {"k\u0000": "v"}},
        {"annotations": {"k": "\ud800"}},
        {"artifactType": "\udfff"},
    ],
)
def test_nul_and_lone_surrogates_in_manifests_are_manifest_invalid(
    client: httpx.Client, poison: dict[str, object]
) -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], **poison})
    resp = client.put(
        f"/v2/{unique('nul')}/manifests/v1",
        content=body.encode(),
        headers={"Content-Type": OCI_INDEX},
    )
    assert_error(resp, 400, "MANIFEST_INVALID")


# ---------------------------------------------------------------- blobs and uploads


def test_blob_not_matching_its_digest_is_digest_invalid_and_not_stored(
    client: httpx.Client,
) -> None:
    repo = unique("lie")
    data, claimed = b"the real bytes", digest_of(b"other bytes")
    resp = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=data)
    assert_error(resp, 400, "DIGEST_INVALID")
    location = start_upload(client, repo)
    assert client.patch(location, content=data, headers={"Content-Type": OCTET}).status_code == 202
    resp = client.put(location, params={"digest": claimed})
    assert_error(resp, 400, "DIGEST_INVALID")
    for digest in (claimed, digest_of(data)):
        assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def _request_head(server: LiveRegistry, method: str, path: str, length: int) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {server.host}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_body_shorter_than_content_length_stores_nothing(
    registry: LiveRegistry, client: httpx.Client
) -> None:
    repo = unique("short")
    data = b"x" * 50
    location = start_upload(client, repo)
    path = httpx.URL(location).path
    raw_exchange(registry, _request_head(registry, "PATCH", path, 100) + data)
    # The client gave up half-way (end of stream): the chunk was rolled back.
    status = client.get(location)
    assert status.status_code == 204 and status.headers["range"] == "0-0", describe(status)
    query = f"?digest={digest_of(data)}"
    raw_exchange(
        registry, _request_head(registry, "POST", f"/v2/{repo}/blobs/uploads/{query}", 100) + data
    )
    assert client.head(f"/v2/{repo}/blobs/{digest_of(data)}").status_code == 404


def test_body_longer_than_content_length_is_cut_at_it(
    registry: LiveRegistry, client: httpx.Client
) -> None:
    """The server takes Content-Length bytes as the body; the rest is no valid request."""
    repo = unique("long")
    data = b"0123456789" * 2
    answer = raw_exchange(
        registry,
        _request_head(registry, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest_of(data)}", 10)
        + data,
        end_stream=False,
    )
    # The registry refuses the digest, or HTTP parsing the surplus closes the connection.
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"DIGEST_INVALID" in answer or b"Invalid HTTP request" in answer, answer[:300]
    assert client.head(f"/v2/{repo}/blobs/{digest_of(data)}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{digest_of(data[:10])}").status_code == 404
    location = start_upload(client, repo)
    answer = raw_exchange(
        registry,
        _request_head(registry, "PATCH", httpx.URL(location).path, 10) + data,
        end_stream=False,
    )
    # The chunk holds exactly its announced 10 bytes, or nothing: never the surplus.
    status = client.get(location)
    assert status.status_code == 204, describe(status)
    assert status.headers["range"] in ("0-9", "0-0"), describe(status)
    if answer.startswith(b"HTTP/1.1 202 "):
        assert status.headers["range"] == "0-9"


def test_invalid_content_length_is_refused(registry: LiveRegistry) -> None:
    for value in (b"-1", b"abc", b"1e3", b"99999999999999999999999999"):
        answer = raw_exchange(
            registry,
            b"POST /v2/cl/x/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + value
            + b"\r\n\r\nabc",
        )
        assert answer.split(b" ", 2)[1] in (b"400", b"413"), (value, answer[:300])


def test_slow_headers_and_bodies_do_not_stop_other_clients(
    registry: LiveRegistry, client: httpx.Client
) -> None:
    """Dozens of connections trickling headers or bodies; everyone else is still served."""
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def dribble(index: int) -> None:
        with socket.create_connection(("127.0.0.1", registry.port), timeout=30) as sock:
            sockets.append(sock)
            head = _request_head(registry, "PATCH", f"/v2/slow/x/blobs/uploads/{index}", 10**6)
            try:
                for byte in head if index % 2 else b"":
                    if stop.is_set():
                        return
                    sock.sendall(bytes([byte]))
                    time.sleep(0.05)
                if not index % 2:
                    sock.sendall(head)
                while not stop.is_set():
                    sock.sendall(b"z")
                    time.sleep(0.2)
            except OSError:
                return

    threads = [threading.Thread(target=dribble, args=(i,), daemon=True) for i in range(40)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        for _ in range(10):
            started = time.monotonic()
            assert client.get("/v2/").status_code == 200
            assert time.monotonic() - started < 2
        digest = upload_blob(client, unique("slow"), b"served while others dribble")
        assert digest
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


# ---------------------------------------------------------------- parameters and text


def test_duplicate_query_parameters_are_refused(client: httpx.Client) -> None:
    repo = unique("dup")
    upload_blob(client, repo, b"dup")
    resp = client.get(f"/v2/{repo}/tags/list?n=1&n=2")
    assert resp.status_code == 400 and error_codes(resp), describe(resp)
    resp = client.get("/v2/_catalog?last=a&last=b")
    assert resp.status_code == 400 and error_codes(resp), describe(resp)
    data = b"twice"
    resp = client.post(
        f"/v2/{repo}/blobs/uploads/?digest={digest_of(data)}&digest={digest_of(b'x')}", content=data
    )
    assert resp.status_code == 400 and error_codes(resp), describe(resp)
    assert client.head(f"/v2/{repo}/blobs/{digest_of(data)}").status_code == 404


@pytest.mark.parametrize(
    "tag",
    [
        "v1.0-ß",
        "标签",
        "tag\u200b",
        "\uff561",
        "v1%20x",
        "emoji-😀",
        ".hidden",
        "-dash",
        "a" * 129,
        "latest\n",
    ],
)
def test_unicode_and_malformed_tags_are_refused(client: httpx.Client, tag: str) -> None:
    repo = unique("uni")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
    resp = client.put(
        f"/v2/{repo}/manifests/{quote(tag, safe='')}",
        content=body,
        headers={"Content-Type": OCI_INDEX},
    )
    assert resp.status_code == 400, describe(resp)
    assert set(error_codes(resp)) & {"MANIFEST_INVALID", "TAG_INVALID"}, describe(resp)
    resp = client.put(
        f"/v2/{repo}/manifests/{digest_of(body)}",
        params={"tag": tag},
        content=body,
        headers={"Content-Type": OCI_INDEX},
    )
    assert resp.status_code == 400, describe(resp)
    resp = client.get(f"/v2/{repo}/tags/list", params={"last": tag})
    assert resp.status_code in (400, 404), describe(resp)
    assert error_codes(resp), describe(resp)


@pytest.mark.parametrize(
    "path",
    [
        "/v2/a%00b/tags/list",
        "/v2/nul/app/manifests/v1%00",
        "/v2/nul/app/blobs/sha256%00:" + "a" * 64,
        "/v2/nul/app/blobs/uploads/%00",
        "/v2/_catalog?last=%00",
        "/v2/_catalog?n=%00",
        "/v2/nul/app/tags/list?last=a%00",
        "/v2/nul/app/referrers/sha256:" + "a" * 64 + "?artifactType=%00",
        "/token?scope=repository:a%00:pull&service=%00",
        "/api/v1/users/a%00b",
        "/api/v1/namespaces/a%00b",
        "/api/v1/repositories/a%00/b/tags",
        "/api/v1/audit?actor=%00",
    ],
)
def test_nul_bytes_are_refused_not_crashed_on(registry: LiveRegistry, path: str) -> None:
    status, body = raw_get(registry, path)
    if "artifactType" in path:  # a filter no artifact type can match: an empty list
        assert status == 200 and json.loads(body)["manifests"] == [], body[:300]
        return
    assert 400 <= status < 500, (path, status, body[:300])
    assert json.loads(body)["errors"], body[:300]


def test_overlong_names_are_name_invalid(registry: LiveRegistry, client: httpx.Client) -> None:
    for name in ("a" * 256, "/".join(["abc"] * 100), "a" * 10_000):
        resp = client.get(f"/v2/{name}/tags/list")
        assert_error(resp, 400, "NAME_INVALID")
        resp = client.post(f"/v2/{name}/blobs/uploads/")
        assert_error(resp, 400, "NAME_INVALID")
    status, _ = raw_get(registry, f"/v2/{'a' * 100_000}/tags/list")
    assert status in (400, 414, 431), status

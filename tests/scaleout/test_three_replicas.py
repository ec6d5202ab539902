"""Three replicas with their own data folders, sharing PostgreSQL, S3 (moto) and Redis."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from tests.conftest import LiveRegistry, scaleout_environment

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        env = {
            **scaleout_environment(stack),
            "CARGOHOLD_SIGNING_KEYS_DIR": str(tmp_path_factory.mktemp("keys")),
            "CARGOHOLD_TEST_WORKERS": "1",
        }
        yield env


@pytest.fixture(scope="module")
def replicas(
    shared: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LiveRegistry]]:
    # Each replica has its own local folder: everything shared lives in the services.
    servers = [
        LiveRegistry(tmp_path_factory.mktemp(f"replica{i}") / "data", shared) for i in range(3)
    ]
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.stop()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_push_via_a_pull_via_b_delete_via_c(replicas: list[LiveRegistry]) -> None:
    a, b, c = replicas
    config = b"{}"
    layer = os.urandom(200_000)
    for data in (config, layer):
        resp = httpx.post(
            f"{a.url}/v2/three/app/blobs/uploads/", params={"digest": digest_of(data)}, content=data
        )
        assert resp.status_code == 201, resp.text
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": digest_of(config),
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_of(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    put = httpx.put(
        f"{a.url}/v2/three/app/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert put.status_code == 201
    assert httpx.get(f"{b.url}/v2/three/app/manifests/v1").content == body
    assert httpx.get(f"{b.url}/v2/three/app/blobs/{digest_of(layer)}").content == layer
    ranged = httpx.get(
        f"{b.url}/v2/three/app/blobs/{digest_of(layer)}", headers={"Range": "bytes=10-19"}
    )
    assert ranged.status_code == 206 and ranged.content == layer[10:20]
    assert httpx.delete(f"{c.url}/v2/three/app/manifests/v1").status_code == 202
    for server in (a, b, c):
        assert httpx.get(f"{server.url}/v2/three/app/manifests/v1").status_code == 404


def test_chunked_upload_over_three_replicas_survives_a_killed_one(
    replicas: list[LiveRegistry],
) -> None:
    a, b, c = replicas
    data = os.urandom(3 * 700_000)
    chunks = [data[i : i + 700_000] for i in range(0, len(data), 700_000)]
    location = httpx.post(f"{a.url}/v2/three/chunks/blobs/uploads/").headers["location"]
    offset = 0
    for server, chunk in zip((a, b), chunks[:2], strict=True):
        resp = httpx.patch(
            f"{server.url}{location}",
            content=chunk,
            headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
        )
        assert resp.status_code == 202, resp.text
        offset += len(chunk)
    b.kill()  # a replica dies after taking a chunk: nothing it acknowledged may be lost
    status = httpx.get(f"{c.url}{location}")
    assert status.status_code == 204 and status.headers["range"] == f"0-{offset - 1}"
    assert httpx.head(f"{c.url}/v2/three/chunks/blobs/{digest_of(data)}").status_code == 404
    done = httpx.put(
        f"{c.url}{location}",
        params={"digest": digest_of(data)},
        content=chunks[2],
        headers={"Content-Range": f"{offset}-{len(data) - 1}"},
    )
    assert done.status_code == 201, done.text
    assert httpx.get(f"{a.url}/v2/three/chunks/blobs/{digest_of(data)}").content == data


def test_token_from_one_replica_works_on_another(
    replicas: list[LiveRegistry], shared: dict[str, str]
) -> None:
    # Runs last in this module: the first user turns access control on for every replica.
    a, _, c = replicas
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cargohold",
            "user",
            "add",
            "root",
            "--admin",
            "--password-stdin",
            "--data-dir",
            str(a.data_dir),
        ],
        input="replica-root-pw",
        text=True,
        env={**os.environ, **shared},
        check=True,
        capture_output=True,
        timeout=60,
    )
    deadline = time.monotonic() + 10
    while httpx.get(f"{c.url}/v2/").status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert httpx.get(f"{c.url}/v2/").status_code == 401
    token = httpx.get(
        f"{a.url}/token",
        params={"service": "cargohold", "scope": "repository:three/app:pull"},
        auth=("root", "replica-root-pw"),
    ).json()["token"]
    resp = httpx.get(
        f"{c.url}/v2/three/app/tags/list", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 200, resp.text  # C verifies A's token: the keys are shared


def test_redirect_to_presigned_storage_urls(
    shared: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {
        **shared,
        "CARGOHOLD_STORAGE_REDIRECT": "true",
        "CARGOHOLD_ADMIN_USER": "root",
        "CARGOHOLD_ADMIN_PASSWORD": "replica-root-pw",
    }
    server = LiveRegistry(tmp_path_factory.mktemp("redirecting") / "data", env)
    try:
        auth = ("root", "replica-root-pw")
        data = os.urandom(50_000)
        pushed = httpx.post(
            f"{server.url}/v2/three/redir/blobs/uploads/",
            params={"digest": digest_of(data)},
            content=data,
            auth=auth,
        )
        assert pushed.status_code == 201, pushed.text
        url = f"{server.url}/v2/three/redir/blobs/{digest_of(data)}"
        moved = httpx.get(url, auth=auth)
        assert moved.status_code == 307
        assert moved.headers["docker-content-digest"] == digest_of(data)
        assert httpx.get(moved.headers["location"]).content == data  # no credentials needed
        assert httpx.head(url, auth=auth).status_code == 200  # HEAD is answered directly
    finally:
        server.stop()

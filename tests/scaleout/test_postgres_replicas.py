"""Two registry servers (replicas) on one PostgreSQL database and one blob folder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveRegistry, scratch_postgres_database

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def push_blob(url: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    resp = httpx.post(f"{url}/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert resp.status_code == 201, resp.text
    return digest


def manifest(config: str, layer: str, layer_size: int, note: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": config,
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer,
                    "size": layer_size,
                }
            ],
            "annotations": {"note": note},
        }
    ).encode()


@pytest.fixture(scope="module")
def database() -> Iterator[dict[str, str]]:
    with scratch_postgres_database() as url:
        yield {"CARGOHOLD_DATABASE_URL": url}


def test_outdated_schema_refuses_to_start_until_upgraded(
    database: dict[str, str], tmp_path: Path
) -> None:
    refused = cli("serve", "--port", "0", "--data-dir", str(tmp_path / "d"), env=database)
    assert refused.returncode == 2
    assert "cargohold db upgrade" in refused.stderr
    status = json.loads(cli("db", "status", "--json", env=database).stdout)
    assert status["current"] is None and status["current_ok"] is False
    upgraded = cli("db", "upgrade", env=database)
    assert upgraded.returncode == 0 and "upgraded the schema" in upgraded.stdout
    again = cli("db", "upgrade", env=database)
    assert "the schema is current" in again.stdout
    assert json.loads(cli("db", "status", "--json", env=database).stdout)["current_ok"]


@pytest.fixture(scope="module")
def replicas(
    database: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveRegistry, LiveRegistry]]:
    assert cli("db", "upgrade", env=database).returncode == 0
    shared = tmp_path_factory.mktemp("shared") / "data"
    first = LiveRegistry(shared, database)
    second = LiveRegistry(shared, database)
    yield first, second
    first.stop()
    second.stop()


def test_push_to_one_replica_pull_from_the_other(
    replicas: tuple[LiveRegistry, LiveRegistry],
) -> None:
    a, b = replicas
    config = push_blob(a.url, "team/app", b"{}")
    layer_data = os.urandom(100_000)
    layer = push_blob(a.url, "team/app", layer_data)
    body = manifest(config, layer, len(layer_data), "v1")
    put = httpx.put(
        f"{a.url}/v2/team/app/manifests/1.0", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert put.status_code == 201, put.text
    got = httpx.get(f"{b.url}/v2/team/app/manifests/1.0")
    assert got.status_code == 200 and got.content == body
    assert httpx.get(f"{b.url}/v2/team/app/blobs/{layer}").content == layer_data
    assert httpx.get(f"{b.url}/v2/team/app/tags/list").json()["tags"] == ["1.0"]
    assert "team/app" in httpx.get(f"{b.url}/v2/_catalog").json()["repositories"]
    assert httpx.delete(f"{b.url}/v2/team/app/manifests/1.0").status_code == 202
    assert httpx.get(f"{a.url}/v2/team/app/manifests/1.0").status_code == 404


def test_chunked_upload_across_replicas(replicas: tuple[LiveRegistry, LiveRegistry]) -> None:
    a, b = replicas
    data = os.urandom(300_000)
    location = httpx.post(f"{a.url}/v2/team/chunks/blobs/uploads/").headers["location"]
    first = httpx.patch(
        f"{a.url}{location}", content=data[:100_000], headers={"Content-Range": "0-99999"}
    )
    assert first.status_code == 202
    second = httpx.patch(
        f"{b.url}{location}",
        content=data[100_000:],
        headers={"Content-Range": f"100000-{len(data) - 1}"},
    )
    assert second.status_code == 202, second.text
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    done = httpx.put(f"{a.url}{location}", params={"digest": digest})
    assert done.status_code == 201, done.text
    assert httpx.get(f"{b.url}/v2/team/chunks/blobs/{digest}").content == data


def test_same_tag_pushed_at_once_on_both_replicas(
    replicas: tuple[LiveRegistry, LiveRegistry],
) -> None:
    a, b = replicas
    config = push_blob(a.url, "team/race", b"{}")
    layer_data = b"layer"
    layer = push_blob(a.url, "team/race", layer_data)
    bodies = [manifest(config, layer, len(layer_data), f"racer-{i}") for i in range(8)]
    statuses: list[int] = []

    def push(url: str, body: bytes) -> None:
        resp = httpx.put(
            f"{url}/v2/team/race/manifests/latest",
            content=body,
            headers={"Content-Type": OCI_MANIFEST},
        )
        statuses.append(resp.status_code)

    threads = [
        threading.Thread(target=push, args=((a if i % 2 else b).url, body))
        for i, body in enumerate(bodies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * len(bodies)
    from_a = httpx.get(f"{a.url}/v2/team/race/manifests/latest").content
    from_b = httpx.get(f"{b.url}/v2/team/race/manifests/latest").content
    assert from_a == from_b and from_a in bodies
    assert httpx.get(f"{b.url}/v2/team/race/tags/list").json()["tags"] == ["latest"]

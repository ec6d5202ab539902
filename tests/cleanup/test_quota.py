"""Namespace quotas against a live server: embedded (SQLite + files, two worker processes)
and scale-out (PostgreSQL + S3 + Redis).

A push over quota is refused with 403 DENIED naming usage and limit, before its data is
stored where the request says how much is coming, and leaves nothing behind: no blob row,
link, file or upload data, and the namespace's usage unchanged. Two pushes that each fit
alone but not together leave the namespace within its quota.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest
from tests.conftest import LiveRegistry, scaleout_environment

from cargohold.config import Settings
from cargohold.sizes import format_size
from cargohold.storage.meta.base import UsageRecord
from cargohold.stores import Stores, open_stores

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


@dataclass
class Live:
    server: LiveRegistry
    stores: Stores

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=60)

    def usage(self, namespace: str) -> UsageRecord:
        rows = self.stores.meta.namespace_usage(namespace)
        return rows[0] if rows else UsageRecord(namespace)

    def state(self, namespace: str) -> tuple:
        """Everything a refused push must leave as it was."""
        return (
            self.usage(namespace),
            self.stores.meta.repository_usage(namespace=namespace),
            set(self.stores.blobs.digests()),
            set(self.stores.blobs.upload_ids()),
            self.stores.meta.count_uploads(),
        )


@pytest.fixture(scope="module", params=["embedded", "scaleout"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp(f"quota-{request.param}") / "data"
    with ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
        env: dict[str, str] = {}
        if request.param == "scaleout":
            env = scaleout_environment(stack)
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                patch.setenv(name, env[name])
        server = LiveRegistry(data_dir, env)
        stack.callback(server.stop)
        settings = Settings(
            data_dir=data_dir,
            database_url=env.get("CARGOHOLD_DATABASE_URL"),
            storage_url=env.get("CARGOHOLD_STORAGE_URL"),
            redis_url=env.get("CARGOHOLD_REDIS_URL"),
            redis_prefix=env.get("CARGOHOLD_REDIS_PREFIX", "cargohold"),
        )
        stores = open_stores(settings)
        stack.callback(stores.close)
        yield Live(server, stores)


def assert_quota_refusal(resp: httpx.Response, usage: int, limit: int) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    [error] = resp.json()["errors"]
    assert error["code"] == "DENIED"
    assert f"of its {format_size(limit)} quota (now {format_size(usage)})" in error["message"]
    assert "garbage collection" in error["message"]
    assert error["detail"]["usage"] == usage and error["detail"]["limit"] == limit


def post_whole(http: httpx.Client, repository: str, data: bytes) -> httpx.Response:
    return http.post(f"/v2/{repository}/blobs/uploads/", params={"digest": sha(data)}, content=data)


def start(http: httpx.Client, repository: str) -> str:
    resp = http.post(f"/v2/{repository}/blobs/uploads/", headers={"Content-Length": "0"})
    assert resp.status_code == 202, resp.text
    return resp.headers["location"]


def patch(http: httpx.Client, location: str, data: bytes, offset: int) -> httpx.Response:
    return http.patch(
        location,
        content=data,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(data) - 1}",
        },
    )


def test_a_monolithic_push_over_quota_is_refused_and_usage_is_unchanged(live: Live) -> None:
    namespace = unique("mono")
    live.stores.meta.set_quota(namespace, 1000, "test")
    first, second = os.urandom(600), os.urandom(500)
    with live.http() as http:
        assert post_whole(http, f"{namespace}/app", first).status_code == 201
        before = live.state(namespace)
        assert before[0].stored_bytes == 600
        # POST ?digest= with the whole blob: refused before the body is read.
        assert_quota_refusal(post_whole(http, f"{namespace}/web", second), 600, 1000)
        # POST, then PUT ?digest= with the whole blob.
        location = start(http, f"{namespace}/web")
        resp = http.put(location, params={"digest": sha(second)}, content=second)
        assert_quota_refusal(resp, 600, 1000)
        assert http.get(location).status_code == 404  # the session is gone
        # A failed push that would fit (wrong digest) leaves nothing either.
        location = start(http, f"{namespace}/web")
        small = os.urandom(300)
        assert http.put(location, params={"digest": sha(b"x")}, content=small).status_code == 400
        assert http.head(f"/v2/{namespace}/web/blobs/{sha(second)}").status_code == 404
    assert live.state(namespace) == before
    assert sha(second) not in before[2]
    assert not live.stores.meta.repository_exists(f"{namespace}/web")


def test_a_chunked_push_over_quota_is_refused_and_usage_is_unchanged(live: Live) -> None:
    namespace = unique("chunked")
    live.stores.meta.set_quota(namespace, 1000, "test")
    first, second, third = os.urandom(600), os.urandom(500), os.urandom(700)
    with live.http() as http:
        assert post_whole(http, f"{namespace}/app", first).status_code == 201
        before = live.state(namespace)
        # 500 bytes might be a blob the namespace holds (its largest has 600): the chunks
        # are taken, and the closing PUT refused once the digest says it is new.
        location = start(http, f"{namespace}/app")
        resp = patch(http, location, second[:300], 0)
        assert resp.status_code == 202, resp.text
        resp = patch(http, resp.headers["location"], second[300:], 300)
        assert resp.status_code == 202, resp.text
        closing = resp.headers["location"]
        assert_quota_refusal(http.put(closing, params={"digest": sha(second)}), 600, 1000)
        assert http.get(closing).status_code == 404
        # 700 bytes cannot be anything the namespace holds: refused at the PATCH that
        # announces them, before they are read.
        location = start(http, f"{namespace}/app")
        assert patch(http, location, third[:100], 0).status_code == 202
        assert_quota_refusal(patch(http, location, third[100:], 100), 600, 1000)
        assert http.get(location).status_code == 404
    assert live.state(namespace) == before
    assert {sha(second), sha(third)}.isdisjoint(before[2])


def manifest_for(config: bytes, layers: list[bytes]) -> bytes:
    def descriptor(data: bytes, media_type: str) -> dict:
        return {"mediaType": media_type, "digest": sha(data), "size": len(data)}

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": descriptor(config, "application/vnd.oci.image.config.v1+json"),
            "layers": [
                descriptor(layer, "application/vnd.oci.image.layer.v1.tar") for layer in layers
            ],
        }
    ).encode()


def push_image(
    http: httpx.Client, repository: str, tag: str, config: bytes, layers: list[bytes]
) -> list[httpx.Response]:
    """Each blob (POST ?digest=, skipped when HEAD finds it), then the manifest."""
    responses = []
    for data in (config, *layers):
        if http.head(f"/v2/{repository}/blobs/{sha(data)}").status_code == 200:
            continue
        responses.append(post_whole(http, repository, data))
    responses.append(
        http.put(
            f"/v2/{repository}/manifests/{tag}",
            content=manifest_for(config, layers),
            headers={"Content-Type": MANIFEST},
        )
    )
    return responses


def test_pushes_that_fit_succeed_and_shared_layers_count_once(live: Live) -> None:
    namespace = unique("fits")
    config, layer = b'{"fits": true}', os.urandom(800)
    live.stores.meta.set_quota(namespace, 800 + len(config), "test")
    with live.http() as http:
        responses = push_image(http, f"{namespace}/app", "v1", config, [layer])
        assert [r.status_code for r in responses] == [201, 201, 201], responses[-1].text
        full = live.usage(namespace)
        assert full.stored_bytes == 800 + len(config)
        # The same layer and config pushed to another repository of the full namespace:
        # uploaded again (no HEAD hit there), and accepted, since they count once.
        responses = push_image(http, f"{namespace}/web", "v1", config, [layer])
        assert [r.status_code for r in responses] == [201, 201, 201], responses[-1].text
        # Mounted into a third repository: accepted too.
        mounted = http.post(
            f"/v2/{namespace}/db/blobs/uploads/",
            params={"mount": sha(layer), "from": f"{namespace}/app"},
        )
        assert mounted.status_code == 201, mounted.text
        # Any new byte is refused.
        assert_quota_refusal(
            post_whole(http, f"{namespace}/app", b"1"), full.stored_bytes, full.stored_bytes
        )
    usage = live.usage(namespace)
    assert usage.stored_bytes == full.stored_bytes
    assert usage.logical_bytes == 2 * full.logical_bytes
    assert usage.repositories == 3


def test_a_mount_from_another_namespace_counts_and_is_refused_over_quota(live: Live) -> None:
    source, namespace = unique("source"), unique("target")
    layer = os.urandom(700)
    live.stores.meta.set_quota(namespace, 1000, "test")
    with live.http() as http:
        assert post_whole(http, f"{source}/app", layer).status_code == 201
        assert post_whole(http, f"{namespace}/app", os.urandom(400)).status_code == 201
        before = live.state(namespace)
        resp = http.post(
            f"/v2/{namespace}/app/blobs/uploads/",
            params={"mount": sha(layer), "from": f"{source}/app"},
        )
        assert_quota_refusal(resp, 400, 1000)
        assert live.state(namespace) == before
        live.stores.meta.set_quota(namespace, 1100, "test")
        resp = http.post(
            f"/v2/{namespace}/app/blobs/uploads/",
            params={"mount": sha(layer), "from": f"{source}/app"},
        )
        assert resp.status_code == 201, resp.text
    assert live.usage(namespace).stored_bytes == 1100


def close_together(live: Live, closing: list[str], blobs: list[bytes]) -> list[httpx.Response]:
    """The closing PUTs of uploads, sent at the same moment from separate clients."""
    together = threading.Barrier(len(closing))
    results: list[httpx.Response | None] = [None] * len(closing)

    def close(n: int) -> None:
        with live.http() as http:
            together.wait(timeout=10)
            results[n] = http.put(closing[n], params={"digest": sha(blobs[n])})

    threads = [threading.Thread(target=close, args=(n,)) for n in range(len(closing))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(resp is not None for resp in results)
    return results  # type: ignore[return-value]


def test_concurrent_pushes_that_fit_alone_but_not_together(live: Live) -> None:
    """Chunked uploads that both fit when their data arrives, closed at the same moment by
    two clients (landing on either worker process): one wins, one is refused."""
    for _ in range(4):
        namespace = unique("race")
        live.stores.meta.set_quota(namespace, 1000, "test")
        blobs = [os.urandom(600), os.urandom(600)]
        closing: list[str] = []
        with live.http() as http:
            for n, data in enumerate(blobs):
                location = start(http, f"{namespace}/repo{n}")
                resp = patch(http, location, data, 0)
                assert resp.status_code == 202, resp.text
                closing.append(resp.headers["location"])
        results = close_together(live, closing, blobs)
        statuses = sorted(resp.status_code for resp in results)
        assert statuses == [201, 403], [resp.text for resp in results]
        refused = next(n for n in range(2) if results[n].status_code == 403)
        assert_quota_refusal(results[refused], 600, 1000)
        assert live.usage(namespace).stored_bytes == 600
        digests = set(live.stores.blobs.digests())
        assert sha(blobs[1 - refused]) in digests
        assert sha(blobs[refused]) not in digests
        assert live.stores.meta.blob_size(f"{namespace}/repo{refused}", sha(blobs[refused])) is None

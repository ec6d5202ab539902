"""Rule options, pushes into a cached namespace, garbage collection and permissions."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
from tests.adminapi.conftest import CHEAP, ThreadServer
from tests.e2e.oci_layout import build_image_layout, compare_layouts, read_layout
from tests.e2e.skopeo import Skopeo

from cargohold.auth.store import AuthStore
from cargohold.config import Settings
from cargohold.core.gc import GcOptions, collect
from cargohold.core.retention import RetentionService
from cargohold.http.app import create_app
from cargohold.setup import prepare_storage
from cargohold.storage.meta.sqlbase import create_sql_engine

from .conftest import Cache, Upstream
from .test_pull_through import ACCEPT, add_rule, pull, push


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def digest_of(client: httpx.Client, path: str) -> httpx.Response:
    return client.get(path, headers={"Accept": ACCEPT})


def test_upstream_first_and_stale_on_404(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    first = build_image_layout(tmp_path / "a", "1.0", seed="uf-a")
    second = build_image_layout(tmp_path / "b", "1.0", seed="uf-b")
    push(skopeo, upstream, first.path, "app", "1.0")
    add_rule(cache, upstream, mode="upstream-first", tag_ttl_seconds=3600)
    with cache.client() as client:
        assert (
            digest_of(client, "/v2/hub/app/manifests/1.0").headers["docker-content-digest"]
            == first.digest
        )
        push(skopeo, upstream, second.path, "app", "1.0")
        # upstream-first: seen at once, whatever the TTL
        assert (
            digest_of(client, "/v2/hub/app/manifests/1.0").headers["docker-content-digest"]
            == second.digest
        )
        skopeo.run(
            "delete",
            "--tls-verify=false",
            "--creds",
            upstream.creds,
            f"docker://{upstream.host}/{upstream.user}/app:1.0",
        )
        gone = digest_of(client, "/v2/hub/app/manifests/1.0")
        assert gone.status_code == 404
        assert gone.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        cache.rules.update("hub", {"serve_stale_on_404": True})
        kept = digest_of(client, "/v2/hub/app/manifests/1.0")
        assert kept.status_code == 200
        assert kept.headers["docker-content-digest"] == second.digest


def test_tags_pushed_into_a_cached_namespace_stay_local(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    local = build_image_layout(tmp_path / "local", "mine", seed="local-push")
    add_rule(cache, upstream, tag_ttl_seconds=0)
    skopeo.copy(
        f"oci:{local.path}:mine",
        f"docker://{cache.host}/hub/app:mine",
        "--dest-tls-verify=false",
    )
    upstream.stop()
    with cache.client() as client:
        pushed = digest_of(client, "/v2/hub/app/manifests/mine")
        assert pushed.status_code == 200
        assert pushed.headers["docker-content-digest"] == local.digest


def test_garbage_collection_with_blobs_not_fetched_yet(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = build_image_layout(tmp_path / "src", "1.0", seed="gc-proxy")
    push(skopeo, upstream, layout.path, "app", "1.0")
    add_rule(cache, upstream)
    registry = cache.extra[0].state.registry  # type: ignore[attr-defined]
    proxy = registry.proxy
    everything = GcOptions(grace=timedelta(0), delete_untagged=True)

    def gc() -> None:
        collect(registry.meta, registry.blob_store, everything, "test")

    with cache.client() as client:
        manifest = json.loads(digest_of(client, "/v2/hub/app/manifests/1.0").content)
        waiting = 1 + len(manifest["layers"])
        assert proxy.store.pending_count("hub/app") == waiting
        gc()  # nothing fetched yet: nothing to collect, the references wait
        assert proxy.store.pending_count("hub/app") == waiting
        config = manifest["config"]["digest"]
        assert client.get(f"/v2/hub/app/blobs/{config}").status_code == 200
        # The commit follows the last byte sent, in the fetch's thread.
        wait_until(lambda: proxy.store.pending_count("hub/app") == waiting - 1)
        gc()  # the fetched blob is referenced by the manifest now
        assert registry.meta.blob_size("hub/app", config) is not None
    pull(skopeo, cache, "hub/app:1.0", tmp_path / "pulled", "1.0")
    wait_until(lambda: proxy.store.pending_count("hub/app") == 0)
    gc()
    upstream.stop()
    pull(skopeo, cache, "hub/app:1.0", tmp_path / "offline", "1.0")
    assert compare_layouts(layout, read_layout(tmp_path / "offline", "1.0")) == []

    # Deleting the cached image lets collection reclaim it, pending rows included.
    with cache.client() as client:
        assert client.delete(f"/v2/hub/app/manifests/{layout.digest}").status_code == 202
    gc()
    assert registry.meta.blob_size("hub/app", config) is None


def test_pulls_of_a_cached_namespace_need_pull_access(
    upstream: Upstream, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = build_image_layout(tmp_path / "src", "1.0", seed="access")
    push(skopeo, upstream, layout.path, "app", "1.0")
    settings = Settings(data_dir=tmp_path / "guarded", access_log=False, workers=1)
    prepare_storage(settings)
    store = AuthStore(create_sql_engine(settings.resolved_database_url))
    password = f"pw-{os.urandom(6).hex()}"
    store.add_user("boss", CHEAP.hash(password), True)
    outsider_password = f"pw-{os.urandom(6).hex()}"
    store.add_user("outsider", CHEAP.hash(outsider_password), False)
    store.close()
    app = create_app(settings)
    app.state.registry.proxy._rule_cache_seconds = 0
    app.state.registry.proxy.rules.add(
        "hub",
        upstream.url,
        username=upstream.user,
        password=upstream.password,
        remote_prefix=upstream.user,
    )
    server = ThreadServer(app)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            anonymous = digest_of(client, "/v2/hub/app/manifests/1.0")
            assert anonymous.status_code == 401
            assert upstream.counter.count("GET", "/manifests/1.0") == 0  # nothing fetched
            client.auth = ("outsider", outsider_password)
            refused = digest_of(client, "/v2/hub/app/manifests/1.0")
            assert refused.status_code in (401, 403), refused.text
            assert upstream.counter.count("GET", "/manifests/1.0") == 0
        pull(
            skopeo,
            Cache(server.url, server.url.split("://")[1], settings.data_dir, None, server),  # type: ignore[arg-type]
            "hub/app:1.0",
            tmp_path / "pulled",
            "1.0",
            "--src-creds",
            f"boss:{password}",
        )
        assert compare_layouts(layout, read_layout(tmp_path / "pulled", "1.0")) == []
    finally:
        server.stop()
        app.state.registry.proxy.close()


def test_cached_tags_are_subject_to_retention(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    old = build_image_layout(tmp_path / "old", "1.0", seed="ret-old")
    new = build_image_layout(tmp_path / "new", "2.0", seed="ret-new")
    push(skopeo, upstream, old.path, "app", "1.0")
    push(skopeo, upstream, new.path, "app", "2.0")
    add_rule(cache, upstream)
    registry = cache.extra[0].state.registry  # type: ignore[attr-defined]
    pull(skopeo, cache, "hub/app:1.0", tmp_path / "p1", "1.0")
    time.sleep(0.05)
    pull(skopeo, cache, "hub/app:2.0", tmp_path / "p2", "2.0")
    retention = RetentionService(registry.meta)
    retention.add_policy("hub", "*", None, keep_last=1, keep_days=None, actor="test")
    report = retention.run("hub", dry_run=False, actor="test")
    assert [r["tag"] for r in report.repositories["hub/app"]["removed"]] == ["1.0"]
    with cache.client() as client:
        assert client.get("/v2/hub/app/tags/list").json()["tags"] == ["2.0"]
        # pulled again, the tag comes back from the upstream
        before = upstream.counter.count("GET", "/manifests/1.0", 200)
        again = digest_of(client, "/v2/hub/app/manifests/1.0")
        assert again.headers["docker-content-digest"] == old.digest
        assert upstream.counter.count("GET", "/manifests/1.0", 200) == before + 1

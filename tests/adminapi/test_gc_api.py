"""/api/v1/gc: garbage collection on demand, its reports, and its metrics."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.oci import blob_path, manifest_path, push_image

from cargohold.auth.store import AuthStore
from cargohold.config import Settings
from cargohold.setup import prepare_storage
from cargohold.storage.meta.sqlbase import create_sql_engine

from .conftest import CHEAP, Api, ThreadServer, build_app, expect


@pytest.fixture(scope="module")
def gc_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A registry of its own (collections here must not touch other tests' content),
    configured to collect everything unreferenced at once."""
    data_dir: Path = tmp_path_factory.mktemp("gcapi") / "data"
    settings = Settings(
        data_dir=data_dir,
        access_log=False,
        workers=1,
        gc_grace_hours=0,
        gc_delete_untagged=True,
        tag_history_keep_days=0,
    )
    prepare_storage(settings)
    store = AuthStore(create_sql_engine(settings.resolved_database_url))
    password = f"pw-{os.urandom(6).hex()}"
    store.add_user("root", CHEAP.hash(password), True)
    server = ThreadServer(build_app(settings))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield Api(server.url, store, ("root", password), http)
    finally:
        server.stop()
        store.close()


def test_collect_dry_run_then_for_real_and_read_the_reports(gc_api: Api) -> None:
    admin = gc_api.admin
    with httpx.Client(base_url=gc_api.url, auth=admin, timeout=30) as v2:
        kept = push_image(v2, "root/app", "keep", layers=2)
        gone = push_image(v2, "root/app", "gone", layers=2)
        assert v2.delete(manifest_path("root/app", "gone")).status_code == 202
    unique = {d: b for d, b in gone.blobs.items() if d not in kept.blobs}
    dry = expect(gc_api.call("POST", "/v1/gc", admin, json={"dry_run": True}), 200)
    real = expect(gc_api.call("POST", "/v1/gc", admin, json={}), 200)
    assert dry["dry_run"] and not real["dry_run"]
    for report in (dry, real):
        assert report["manifests_deleted"] == 1
        assert report["blobs_deleted"] == len(unique)
        assert report["bytes_freed"] == sum(len(b) for b in unique.values())
    with httpx.Client(base_url=gc_api.url, auth=admin, timeout=30) as v2:
        for digest in unique:
            assert v2.get(blob_path("root/app", digest)).status_code == 404
        for digest, data in kept.blobs.items():
            assert v2.get(blob_path("root/app", digest)).content == data
        assert v2.get(manifest_path("root/app", "keep"), headers={"Accept": "*/*"}).content == (
            kept.body
        )
        metrics = v2.get("/metrics").text
    runs = expect(gc_api.call("GET", "/v1/gc/runs", admin), 200)["runs"]
    assert [run["dry_run"] for run in runs[:2]] == [False, True]
    assert {run["trigger"] for run in runs[:2]} == {"api"}
    assert runs[0]["bytes_freed"] == real["bytes_freed"]
    assert f"\ncargohold_gc_last_run_bytes_freed {real['bytes_freed']}\n" in metrics


def test_only_registry_admins_collect(gc_api: Api) -> None:
    user = gc_api.add_user("plain")
    expect(gc_api.call("POST", "/v1/gc", user, json={}), 403, "DENIED")
    expect(gc_api.call("GET", "/v1/gc/runs", user), 403, "DENIED")
    expect(gc_api.call("POST", "/v1/gc", None, json={}), 401)


def test_a_grace_period_asked_for_keeps_what_is_younger(gc_api: Api) -> None:
    admin = gc_api.admin
    with httpx.Client(base_url=gc_api.url, auth=admin, timeout=30) as v2:
        gone = push_image(v2, "root/young", "gone")
        assert v2.delete(manifest_path("root/young", "gone")).status_code == 202
        # The server's own setting is 0 hours; an hour asked for keeps this minute's garbage,
        # and a grace longer than anything has lived keeps everything (no overflow).
        for hours in (1, 1e300):
            kept = expect(gc_api.call("POST", "/v1/gc", admin, json={"grace_hours": hours}), 200)
            assert kept["blobs_deleted"] == 0 and kept["manifests_deleted"] == 0
        expect(
            gc_api.call("POST", "/v1/gc", admin, json={"grace_hours": -1}), 400, "INVALID_REQUEST"
        )
        swept = expect(gc_api.call("POST", "/v1/gc", admin, json={"grace_hours": 0}), 200)
        assert swept["manifests_deleted"] == 1 and swept["blobs_deleted"] >= 1
        for digest in gone.blobs:
            assert v2.head(blob_path("root/young", digest)).status_code == 404

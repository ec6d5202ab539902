"""Any OCI registry as the upstream: CNCF Distribution with Basic (htpasswd) auth."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.oci_layout import build_image_layout, compare_layouts, read_layout
from tests.e2e.skopeo import Skopeo

from .conftest import Cache
from .distribution import Distribution
from .test_pull_through import ACCEPT, pull


@pytest.fixture
def distribution(tmp_path: Path) -> Iterator[Distribution]:
    server = Distribution(tmp_path / "distribution", "dist-user", "dist-password")
    try:
        yield server
    finally:
        server.stop()


def test_distribution_with_basic_auth(
    distribution: Distribution, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = build_image_layout(
        tmp_path / "src", "1.0", seed="dist", layers=2, payload_bytes=2_000_000
    )
    skopeo.copy(
        f"oci:{layout.path}:1.0",
        f"docker://{distribution.host}/library/app:1.0",
        "--dest-tls-verify=false",
        "--dest-creds",
        distribution.creds,
    )
    cache.rules.add(
        "dist",
        distribution.url,
        username=distribution.user,
        password=distribution.password,
        remote_prefix="library",
    )
    cache.rules.add("wrong", distribution.url, username=distribution.user, password="not-it")
    with cache.client() as client:
        manifest = json.loads(
            client.get("/v2/dist/app/manifests/1.0", headers={"Accept": ACCEPT}).content
        )
        layer = manifest["layers"][0]["digest"]
        statuses: list[int] = []

        def fetch() -> None:
            with httpx.Client(base_url=cache.url, timeout=60) as own:
                statuses.append(own.get(f"/v2/dist/app/blobs/{layer}").status_code)

        threads = [threading.Thread(target=fetch) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [200] * 10
        denied = client.get("/v2/wrong/library/app/manifests/1.0", headers={"Accept": ACCEPT})
        assert denied.status_code == 502, denied.text
        assert denied.json()["errors"][0]["code"] == "DENIED"
    pull(skopeo, cache, "dist/app:1.0", tmp_path / "pulled", "1.0")
    assert compare_layouts(layout, read_layout(tmp_path / "pulled", "1.0")) == []
    # 10 concurrent misses of the layer: one GET in Distribution's access log
    assert distribution.blob_gets(layer) == 1
    distribution.stop()
    pull(skopeo, cache, "dist/app:1.0", tmp_path / "offline", "1.0")
    assert compare_layouts(layout, read_layout(tmp_path / "offline", "1.0")) == []

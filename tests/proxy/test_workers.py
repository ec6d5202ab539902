"""A cache served by several worker processes (`cargohold serve --workers 2`): concurrent
misses of one blob, spread over the workers, still make one upstream GET."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import httpx
from tests.conftest import LiveRegistry
from tests.e2e.oci_layout import build_image_layout
from tests.e2e.skopeo import Skopeo

from cargohold.proxy.manage import ProxyRules
from cargohold.proxy.secrets import SecretBox
from cargohold.proxy.store import ProxyStore
from cargohold.storage.meta.sqlbase import create_sql_engine

from .conftest import Upstream
from .test_pull_through import ACCEPT, push


def test_one_upstream_fetch_across_worker_processes(
    upstream: Upstream, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = build_image_layout(
        tmp_path / "src", "1.0", seed="workers", layers=1, payload_bytes=8_000_000
    )
    push(skopeo, upstream, layout.path, "big", "1.0")
    server = LiveRegistry(tmp_path / "cache", {"CARGOHOLD_TEST_WORKERS": "2"})
    engine = create_sql_engine(f"sqlite:///{server.data_dir / 'meta.db'}")
    try:
        rules = ProxyRules(ProxyStore(engine), SecretBox(server.data_dir / "keys" / "secrets.key"))
        rules.add(
            "hub",
            upstream.url,
            username=upstream.user,
            password=upstream.password,
            remote_prefix=upstream.user,
        )
        with httpx.Client(base_url=server.url, timeout=60) as client:
            deadline = time.monotonic() + 15
            while True:  # each worker reads the rules again within 2 s
                response = client.get("/v2/hub/big/manifests/1.0", headers={"Accept": ACCEPT})
                if response.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert response.status_code == 200, response.text
        time.sleep(2.5)  # every worker sees the rule
        layer = json.loads(response.content)["layers"][0]["digest"]
        bodies: list[bytes | Exception] = []

        def fetch() -> None:
            try:
                with httpx.Client(base_url=server.url, timeout=60) as own:
                    got = own.get(f"/v2/hub/big/blobs/{layer}")
                    got.raise_for_status()
                    bodies.append(got.content)
            except Exception as exc:  # reported below
                bodies.append(exc)

        threads = [threading.Thread(target=fetch) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for body in bodies:
            assert isinstance(body, bytes), body
            assert "sha256:" + hashlib.sha256(body).hexdigest() == layer
        assert len(bodies) == 12
        assert upstream.counter.count("GET", f"/blobs/{layer}", 200) == 1
    finally:
        engine.dispose()
        server.stop()

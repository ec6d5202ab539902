"""Scan results and the scan queue over the admin API: reading needs pull, queuing a scan
push, the queue is for registry admins; tag listings carry a summary; /metrics the queue."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scan.test_diff import ADVISORIES, BASE, OLD_DPKG, OLD_PYTHON

from cargohold.config import Settings
from cargohold.core.registry import Registry
from cargohold.scan.worker import ScanWorker
from cargohold.stores import open_stores
from cargohold.vulndb.osv import parse_record
from cargohold.vulndb.store import AdvisoryStore

from .conftest import Api, expect
from .test_diff_api import _push
from .test_tags_api import crew, v2


def run_scanner(api: Api) -> None:
    """The background scanner's work, done here: every due job (no SBOMs, which would
    change what other tests of this session's server count)."""
    data_dir = Path(str(api.store.engine.url.database)).parent
    stores = open_stores(Settings(data_dir=data_dir))
    try:
        registry = Registry(stores.blobs, stores.meta, 4 << 20)
        worker = ScanWorker(registry, stores.engine, attach_sbom=False, name="api-test")
        while worker.run_once():
            pass
    finally:
        stores.close()


def test_scan_results_need_pull_and_a_rescan_needs_push(api: Api) -> None:
    AdvisoryStore(api.store.engine).save([(parse_record(r), json.dumps(r)) for r in ADVISORIES])
    team = crew(api)
    repo = f"{team.org}/app"
    with v2(api, team.writer) as http:
        digest = _push(http, repo, "1.0", [BASE, OLD_DPKG, OLD_PYTHON])
    path = f"/v1/repositories/{repo}/scans/1.0"

    waiting = expect(api.call("GET", path, team.reader), 404, "SCAN_UNKNOWN")
    assert "a scan is queued" in waiting["errors"][0]["message"]
    tags = expect(api.call("GET", f"/v1/repositories/{repo}/tags", team.reader), 200)
    assert tags["tags"][0]["scan"] is None

    run_scanner(api)
    report = expect(api.call("GET", path, team.reader), 200)
    assert report["digest"] == digest and report["reference"] == "1.0"
    assert report["pending"] is False
    assert report["status"] == "scanned"
    found = {f["advisory"] for f in report["images"][0]["findings"]}
    assert found and found <= {r["id"] for r in ADVISORIES}
    by_digest = expect(api.call("GET", f"/v1/repositories/{repo}/scans/{digest}", team.reader), 200)
    assert by_digest["severity_counts"] == report["severity_counts"]

    [tag] = expect(api.call("GET", f"/v1/repositories/{repo}/tags", team.reader), 200)["tags"]
    assert tag["scan"]["status"] == "scanned"
    assert tag["scan"]["severity_counts"] == report["severity_counts"]

    expect(api.call("GET", path, team.outsider), 403, "DENIED")
    expect(api.call("POST", path, team.reader), 403, "DENIED")
    expect(api.call("GET", f"/v1/repositories/{repo}/scans/9.9", team.reader), 404)
    expect(api.call("GET", f"/v1/repositories/{repo}/scans/bad:tag!", team.reader), 400)

    queued = expect(api.call("POST", path, team.writer), 202)
    assert queued["digest"] == digest and queued["job"] > 0
    assert expect(api.call("GET", path, team.reader), 200)["pending"] is True
    run_scanner(api)
    assert expect(api.call("GET", path, team.reader), 200)["pending"] is False


def test_the_queue_is_for_registry_admins_and_shows_at_metrics(api: Api) -> None:
    team = crew(api)
    expect(api.call("GET", "/v1/scan-queue", team.admin), 403, "DENIED")
    expect(api.call("POST", "/v1/scan-queue/rescan-all", team.admin), 403, "DENIED")

    job = expect(api.call("POST", "/v1/scan-queue/rescan-all", api.admin), 202)["job"]
    queue = expect(api.call("GET", "/v1/scan-queue", api.admin, params={"state": "queued"}), 200)
    assert queue["counts"]["queued"] >= 1
    assert job in [j["id"] for j in queue["jobs"]]
    assert all(j["state"] == "queued" for j in queue["jobs"])
    expect(api.call("GET", "/v1/scan-queue", api.admin, params={"state": "lost"}), 400)

    metrics = api.http.get("/metrics").text
    assert f"cargohold_scan_jobs_queued {float(queue['counts']['queued'])}" in metrics
    assert "cargohold_scan_queue_oldest_seconds" in metrics
    run_scanner(api)
    after = expect(api.call("GET", "/v1/scan-queue", api.admin), 200)
    assert after["counts"]["queued"] == 0
    assert "cargohold_scan_jobs_queued 0.0" in api.http.get("/metrics").text

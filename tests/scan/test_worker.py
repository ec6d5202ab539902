"""The scan queue and the background scanner over real stores: jobs queued by pushes,
results stored, SBOMs attached once, index platforms reused, rescans after an advisory
import, leases taken over from a dead worker, failures retried then given up."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cargohold.core.registry import Registry
from cargohold.scan.queue import MANUAL, ScanQueue
from cargohold.scan.results import ScanResultStore
from cargohold.scan.sbom import CYCLONEDX_JSON
from cargohold.scan.worker import MAX_ATTEMPTS, ScanWorker
from cargohold.storage.meta import models as m
from cargohold.stores import Stores

from .test_sbom import push_index
from .test_service import app_layers, cargohold, push_image, write_advisories


def drain(worker: ScanWorker, limit: int = 50) -> int:
    """Run jobs until none is due; how many ran."""
    ran = 0
    while worker.run_once():
        ran += 1
        assert ran < limit, "the queue does not drain"
    return ran


def import_advisories(data_dir: Path, tmp_path: Path) -> None:
    cargohold(data_dir, "vulndb", "import", str(write_advisories(tmp_path / "osv")))


def sboms(registry: Registry, repository: str, digest: str) -> list[str]:
    return [r.digest for r in registry.manifests.referrers(repository, digest, CYCLONEDX_JSON)]


def results_of(stores: Stores, repository: str, digest: str) -> int:
    with stores.engine.connect() as conn:
        return len(
            conn.execute(
                m.scan_results.select().where(
                    m.scan_results.c.repository == repository,
                    m.scan_results.c.manifest_digest == digest,
                )
            ).all()
        )


def test_a_push_queues_a_scan_that_stores_findings_and_attaches_one_sbom(
    registry: Registry, stores: Stores, data_dir: Path, tmp_path: Path
):
    import_advisories(data_dir, tmp_path)
    queue = ScanQueue(stores.engine)
    queue.purge_finished(timedelta(0))
    stats = queue.stats()
    assert stats.counts["queued"] == 1  # the import's rescan-all, nothing to scan yet

    digest = push_image(registry, "team/app", "1.0", app_layers())
    assert queue.pending("team/app", digest)
    worker = ScanWorker(registry, stores.engine, name="test")
    # The rescan-all queues the image again, the push's job scans it, and the rescan's job
    # finds it scanned since it was queued: one scan.
    assert drain(worker) == 3
    assert not queue.pending("team/app", digest)
    assert results_of(stores, "team/app", digest) == 1

    stored = ScanResultStore(stores.engine).latest("team/app", digest)
    assert stored is not None and stored.vulndb_import_id is not None
    found = {(f["advisory"], f["package"]) for f in stored.report.findings}
    assert found == {
        ("TEST-DEB12-SSL1", "openssl"),
        ("TEST-DEB12-SSL1", "libssl3"),
        ("TEST-PYPI-REQ1", "requests"),
    }
    [sbom] = sboms(registry, "team/app", digest)
    # The SBOM referrer is an artifact: pushing it queued nothing.
    assert not queue.pending("team/app", sbom)
    assert worker.run_once() is False

    # A manual rescan stores a new result but attaches no second SBOM.
    queue.enqueue("team/app", digest, MANUAL)
    time.sleep(0.01)
    assert drain(worker) == 1
    assert results_of(stores, "team/app", digest) == 2
    assert sboms(registry, "team/app", digest) == [sbom]
    assert queue.stats().counts["done"] == 4


def test_an_index_reuses_its_platform_results_and_each_platform_gets_its_own(
    registry: Registry, stores: Stores, data_dir: Path, tmp_path: Path
):
    import_advisories(data_dir, tmp_path)
    index, amd, arm = push_index(registry, "team/multi", "2.0")
    worker = ScanWorker(registry, stores.engine, name="test")
    drain(worker)
    results = ScanResultStore(stores.engine)
    report = results.latest("team/multi", index).report
    assert [(i.digest, i.platform) for i in report.images] == [
        (amd, "linux/amd64"),
        (arm, "linux/arm64"),
    ]
    # Each platform was scanned once (when pushed) and reused by the index.
    assert results_of(stores, "team/multi", amd) == 1
    assert results_of(stores, "team/multi", arm) == 1
    for platform in (amd, arm):
        assert results.latest("team/multi", platform).report.images[0].digest == platform
        assert len(sboms(registry, "team/multi", platform)) == 1
    assert sboms(registry, "team/multi", index) == []


def test_an_index_whose_platforms_were_never_scanned_scans_and_stores_them(
    registry: Registry, stores: Stores, data_dir: Path, tmp_path: Path
):
    import_advisories(data_dir, tmp_path)
    index, amd, arm = push_index(registry, "team/multi", "2.0")
    queue = ScanQueue(stores.engine)
    # Only the index's job survives (as after an upgrade from a release without the queue).
    with stores.engine.begin() as conn:
        conn.execute(
            m.scan_jobs.delete().where(
                m.scan_jobs.c.manifest_digest.is_(None) | (m.scan_jobs.c.manifest_digest != index)
            )
        )
    drain(ScanWorker(registry, stores.engine, name="test"))
    assert queue.stats().counts["done"] == 1
    for platform in (amd, arm):
        assert results_of(stores, "team/multi", platform) == 1
        assert len(sboms(registry, "team/multi", platform)) == 1


def test_importing_advisories_rescans_every_image(
    registry: Registry, stores: Stores, data_dir: Path, tmp_path: Path
):
    digest = push_image(registry, "team/app", "1.0", app_layers())
    worker = ScanWorker(registry, stores.engine, name="test")
    drain(worker)
    results = ScanResultStore(stores.engine)
    before = results.latest("team/app", digest)
    assert before.vulndb_import_id is None and before.report.findings == []

    import_advisories(data_dir, tmp_path)
    ran = drain(worker)
    assert ran == 2  # the rescan-all, then the image (the SBOM is not an image)
    after = results.latest("team/app", digest)
    assert after.vulndb_import_id is not None
    assert after.report.severity_counts["critical"] == 1
    assert len(sboms(registry, "team/app", digest)) == 1


def test_a_job_whose_worker_died_is_taken_over_when_its_lease_ends(
    registry: Registry, stores: Stores
):
    digest = push_image(registry, "team/app", "1.0", app_layers())
    queue = ScanQueue(stores.engine)
    dead = queue.claim("dead-worker", lease_seconds=0.2)
    assert dead is not None and dead.manifest_digest == digest and dead.attempts == 1
    live = ScanWorker(registry, stores.engine, name="live")
    assert live.run_once() is False  # leased: not due yet
    time.sleep(0.3)
    assert live.run_once() is True
    assert ScanResultStore(stores.engine).latest("team/app", digest) is not None
    # The dead worker coming back cannot overwrite the outcome.
    assert queue.finish(dead, "late") is False
    [job] = queue.jobs()
    assert (job["state"], job["attempts"], job["worker"]) == ("done", 2, "live")


def test_a_missing_layer_is_a_warning_in_the_result_not_a_failed_job(
    registry: Registry, stores: Stores
):
    digest = push_image(registry, "team/app", "1.0", app_layers())
    first_layer = json.loads(registry.manifests.get("team/app", digest).content)["layers"][0]
    registry.blob_store.delete(first_layer["digest"])
    assert ScanWorker(registry, stores.engine, name="test").run_once() is True
    [job] = ScanQueue(stores.engine).jobs()
    assert job["state"] == "done"
    [image] = ScanResultStore(stores.engine).latest("team/app", digest).report.images
    assert image.warnings


def test_a_failing_scan_is_retried_then_marked_failed(registry: Registry, stores: Stores):
    push_image(registry, "team/app", "1.0", app_layers())
    # The advisory table is gone: every match fails until an operator repairs the database.
    with stores.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE advisory_affected")
    queue = ScanQueue(stores.engine)
    worker = ScanWorker(registry, stores.engine, name="test")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert worker.run_once() is True
        [job] = queue.jobs()
        assert job["attempts"] == attempt
        if attempt < MAX_ATTEMPTS:
            assert job["state"] == "queued" and "advisory_affected" in job["error"]
            assert worker.run_once() is False  # backing off
            with stores.engine.begin() as conn:
                conn.execute(
                    m.scan_jobs.update().values(not_before=datetime(2000, 1, 1, tzinfo=UTC))
                )
    [job] = queue.jobs()
    assert job["state"] == "failed" and "advisory_affected" in job["error"]
    assert worker.run_once() is False
    assert queue.stats().counts["failed"] == 1


def test_a_manifest_deleted_before_its_scan_finishes_the_job(registry: Registry, stores: Stores):
    digest = push_image(registry, "team/app", "1.0", app_layers())
    registry.manifests.delete("team/app", digest)
    worker = ScanWorker(registry, stores.engine, name="test")
    assert worker.run_once() is True
    [job] = ScanQueue(stores.engine).jobs()
    assert job["state"] == "done"
    assert ScanResultStore(stores.engine).latest("team/app", digest) is None


def test_old_results_are_trimmed_and_those_of_deleted_images_purged(
    registry: Registry, stores: Stores
):
    from cargohold.gc_schedule import purge_scan_records

    kept = push_image(registry, "team/app", "1.0", app_layers())
    gone = push_image(registry, "team/app", "2.0", app_layers()[:1])
    queue = ScanQueue(stores.engine)
    worker = ScanWorker(registry, stores.engine, keep_results=2, attach_sbom=False, name="t")
    for _ in range(3):
        queue.enqueue("team/app", kept, MANUAL)
        time.sleep(0.01)
        drain(worker)
    assert results_of(stores, "team/app", kept) == 2
    assert results_of(stores, "team/app", gone) == 1
    registry.manifests.delete("team/app", gone)

    results, jobs = purge_scan_records(stores, keep_results=1)
    assert results == 2  # one old result of 1.0, the one of the deleted 2.0
    assert jobs == 0  # finished within the week
    assert results_of(stores, "team/app", kept) == 1
    assert results_of(stores, "team/app", gone) == 0
    assert ScanResultStore(stores.engine).latest("team/app", kept) is not None

"""The background scanner: runs the scan queue, stores results, attaches SBOMs.

    worker = ScanWorker(registry, engine, attach_sbom=True)
    while worker.run_once():
        pass

Each job scans one manifest. An image gets its result stored and, the first time, its
CycloneDX SBOM attached as a referrer. An index gets a result covering every platform;
its platform images were queued when they were pushed (before the index), so their
current results are reused rather than scanned twice. A result is current when it was
matched against the newest advisory import; importing advisories queues a rescan of
every image (``ScanQueue.enqueue_rescan_all``).

The serving process runs ``scan_workers`` threads of this (``start_scan_workers``); the
queue's leases let any number of replicas share it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from cargohold.background import start_workers
from cargohold.config import Settings
from cargohold.core.registry import Registry
from cargohold.errors import ManifestUnknown, NameUnknown, QuotaExceeded, RegistryError
from cargohold.scan.queue import RESCAN_ALL, Job, ScanQueue
from cargohold.scan.results import ScanResultStore
from cargohold.scan.sbom import CYCLONEDX_JSON, FORMAT_ANNOTATION, attach_sbom, bom_bytes, cyclonedx
from cargohold.scan.service import ImageAnalysis, ImageResult, ScanReport, ScanService
from cargohold.storage.meta.sqlbase import now
from cargohold.vulndb.store import AdvisoryStore

log = logging.getLogger(__name__)

SCANNER_ACTOR = "scanner"  # who pushed the SBOM referrers (tag history, audit log)
LEASE_SECONDS = 600.0  # a scan of a large image takes seconds; a lost worker, this long
MAX_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 30.0  # times the attempt number


class ScanWorker:
    def __init__(
        self,
        registry: Registry,
        engine: Engine,
        *,
        attach_sbom: bool = True,
        keep_results: int | None = None,
        name: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        quiet_seconds: float = 0.0,
        max_delay_seconds: float = 60.0,
    ) -> None:
        self._registry = registry
        self._queue = ScanQueue(engine)
        self._results = ScanResultStore(engine)
        self._service = ScanService(registry, AdvisoryStore(engine))
        self._attach_sbom = attach_sbom
        self._keep = keep_results
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self._lease = lease_seconds
        self._quiet = quiet_seconds
        self._max_delay = max_delay_seconds

    def run_once(self) -> bool:
        """Claim and run one job; False when none is due, or pushes are under way.

        A burst of pushes is scanned after it, not during: scanning costs more CPU than
        the push of a small image, and on a small machine would halve the push rate."""
        if self._quiet > 0 and self._queue.pushes_settling(self._quiet, self._max_delay):
            return False
        job = self._queue.claim(self.name, self._lease)
        if job is None:
            return False
        try:
            if job.kind == RESCAN_ALL:
                count = self._queue.expand_rescan_all(job)
                log.info("advisories changed: %d images queued for a rescan", count)
                return True
            outcome = self.scan(job)
        except Exception as exc:  # one bad image must not stop the queue
            log.exception("scan of %s@%s failed", job.repository, job.manifest_digest)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            if job.attempts >= MAX_ATTEMPTS:
                self._queue.finish(job, error)
            else:
                self._queue.retry_later(job, error, RETRY_DELAY_SECONDS * job.attempts)
            return True
        self._queue.finish(job)
        log.info("scan of %s@%s: %s", job.repository, job.manifest_digest, outcome)
        return True

    def scan(self, job: Job) -> str:
        """Scan the job's manifest and store the result; returns what happened, in words."""
        repository, digest = str(job.repository), str(job.manifest_digest)
        db_version = self._results.advisory_db_version()
        import_id = db_version["import_id"] if db_version else None
        stored = self._results.latest(repository, digest)
        if (
            stored is not None
            and stored.scanned_at >= job.enqueued_at
            and stored.vulndb_import_id == import_id
        ):
            return "already scanned since queued"
        try:
            record = self._registry.manifests.get(repository, digest)
        except (ManifestUnknown, NameUnknown):
            return "manifest deleted before its scan"

        def known(child: str) -> ImageResult | None:
            result = self._results.latest(repository, child)
            if result is None or result.vulndb_import_id != import_id:
                return None
            images = result.report.images
            return images[0] if len(images) == 1 else None

        def analyzed(analysis: ImageAnalysis, descriptor: dict[str, Any]) -> None:
            if descriptor["digest"] != record.digest:
                # A platform image scanned as part of its index: it is pulled by digest
                # too, so it gets its own stored result (and SBOM) as if pushed alone.
                self._results.save(
                    ScanReport(
                        repository=repository,
                        reference=descriptor["digest"],
                        digest=descriptor["digest"],
                        media_type=descriptor["mediaType"],
                        scanned_at=now(),
                        advisory_db=db_version,
                        images=[analysis.result],
                    ),
                    self._keep,
                )
            self._maybe_attach_sbom(repository, analysis, descriptor)

        report = self._service.scan(repository, record.digest, known, analyzed)
        report.reference = record.digest
        report.advisory_db = db_version
        self._results.save(report, self._keep)
        from cargohold import events as ev

        ev.record_event(
            self._results.engine,
            ev.SCAN_COMPLETED,
            repository,
            digest=record.digest,
            media_type=record.media_type,
            actor=SCANNER_ACTOR,
            data={"status": report.status, "severity_counts": report.severity_counts},
        )
        counts = ", ".join(f"{n} {s}" for s, n in report.severity_counts.items() if n)
        return f"{report.status} in {report.duration_seconds:.2f} s ({counts or 'no findings'})"

    def _maybe_attach_sbom(
        self, repository: str, analysis: ImageAnalysis, descriptor: dict[str, Any]
    ) -> None:
        if not self._attach_sbom or analysis.inventory is None:
            return
        digest = descriptor["digest"]
        referrers = self._registry.manifests.referrers(repository, digest, CYCLONEDX_JSON)
        if any((r.annotations or {}).get(FORMAT_ANNOTATION) for r in referrers):
            return  # the inventory of a stored image does not change: one SBOM is enough
        bom = bom_bytes(cyclonedx(analysis.inventory, repository, digest))
        try:
            attach_sbom(self._registry, repository, descriptor, bom, actor=SCANNER_ACTOR)
        except (QuotaExceeded, RegistryError) as exc:
            # The scan result stands without its SBOM; `cargohold scan sbom --attach` can
            # add it once there is room.
            log.warning("SBOM of %s@%s not attached: %s", repository, digest, exc)


def start_scan_workers(settings: Settings) -> threading.Event | None:
    """Start ``settings.scan_workers`` scanner threads; set the event to stop them."""

    def opener() -> tuple[Callable[[], bool], Callable[[], None]]:
        from cargohold.stores import open_stores

        stores = open_stores(settings)
        registry = Registry(stores.blobs, stores.meta, settings.max_manifest_size)
        worker = ScanWorker(
            registry,
            stores.engine,
            attach_sbom=settings.scan_attach_sbom,
            keep_results=settings.scan_keep_results,
            quiet_seconds=settings.scan_quiet_seconds,
            max_delay_seconds=settings.scan_max_delay_seconds,
        )
        return worker.run_once, stores.close

    return start_workers("scan", settings.scan_workers, opener, settings.scan_poll_seconds)

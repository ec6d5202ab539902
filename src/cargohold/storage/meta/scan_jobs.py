"""Rows of the scan queue (``scan_jobs``), shared by the metadata store, which queues a
scan of each pushed image in the push's own transaction, and ``cargohold.scan.queue``."""

from __future__ import annotations

from typing import Any

from cargohold.storage.meta.sqlbase import now

# kind: why a job was queued
PUSH = "push"
MANUAL = "manual"
ADVISORIES = "advisories"
RESCAN_ALL = "rescan-all"  # no manifest: queue one ADVISORIES job per stored image

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)


def job_values(repository: str | None, digest: str | None, kind: str) -> dict[str, Any]:
    """The row of a new queued job."""
    at = now()
    return {
        "repository": repository,
        "manifest_digest": digest,
        "kind": kind,
        "state": QUEUED,
        "attempts": 0,
        "enqueued_at": at,
        "not_before": at,
    }

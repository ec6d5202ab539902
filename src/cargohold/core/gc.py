"""Online garbage collection: mark on a snapshot, sweep with re-checked deletes.

The registry keeps serving while this runs. Marking (storage/meta/gcgraph.py) decides
what nothing references and what is older than the grace period; the sweep removes, in
order, manifests (round by round, so an index goes before its children), links, blob
rows and finally blob bytes, each step re-checking in the database that nothing came to
reference what it removes (storage/meta/sql_gc.py says why that is enough). A dry run
marks and reports without sweeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cargohold.errors import Conflict
from cargohold.storage.blobs import BlobStore
from cargohold.storage.meta import MetadataStore
from cargohold.storage.meta.gcgraph import Garbage, mark

log = logging.getLogger(__name__)

# phase, done, total: for progress bars
Progress = Callable[[str, int, int], None]
# Nothing stored is older than this (114 years); a longer grace means the same, and
# datetime arithmetic overflows long before a float of hours does.
MAX_GRACE_HOURS = 1_000_000.0


def grace_period(hours: float) -> timedelta:
    return timedelta(hours=min(hours, MAX_GRACE_HOURS))


@dataclass(frozen=True, slots=True)
class GcOptions:
    grace: timedelta = timedelta(hours=24)
    delete_untagged: bool = False
    history_window: timedelta = timedelta(days=14)
    upload_max_age: timedelta = timedelta(hours=24)
    dry_run: bool = False


@dataclass(slots=True)
class GcReport:
    dry_run: bool
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    manifests_deleted: int = 0
    links_removed: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    uploads_removed: int = 0
    repositories: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


class GarbageCollector:
    def __init__(self, meta: MetadataStore, blobs: BlobStore) -> None:
        self._meta = meta
        self._blobs = blobs

    def run(self, options: GcOptions, progress: Progress | None = None) -> GcReport:
        progress = progress or _no_progress
        started = time.monotonic()
        now = datetime.now(UTC)
        report = GcReport(dry_run=options.dry_run, started_at=now.isoformat())
        older_than = now - options.grace
        history_since = now - options.history_window

        progress("mark", 0, 1)
        graph = self._meta.gc_graph(history_since)
        garbage = mark(graph, older_than, options.delete_untagged)
        progress("mark", 1, 1)
        names = graph.repositories

        if options.dry_run:
            self._report_marked(report, garbage, names)
        else:
            self._sweep(report, garbage, names, older_than, history_since, progress)
        report.uploads_removed = self._abandoned_uploads(
            now - options.upload_max_age, options.dry_run, progress
        )
        report.finished_at = datetime.now(UTC).isoformat()
        report.seconds = round(time.monotonic() - started, 3)
        log.info("garbage collection %s", report.to_dict())
        return report

    @staticmethod
    def _count(report: GcReport, repository: str, key: str, amount: int) -> None:
        if amount:
            counts = report.repositories.setdefault(repository, {})
            counts[key] = counts.get(key, 0) + amount

    def _report_marked(self, report: GcReport, garbage: Garbage, names: dict[int, str]) -> None:
        for repo_id, nodes in garbage.manifests.items():
            self._count(report, names[repo_id], "manifests", len(nodes))
        for repo_id, digests in garbage.links.items():
            self._count(report, names[repo_id], "links", len(digests))
        report.manifests_deleted = garbage.manifest_count
        report.links_removed = garbage.link_count
        report.blobs_deleted = len(garbage.blobs)
        report.bytes_freed = garbage.blob_bytes

    def _sweep(
        self,
        report: GcReport,
        garbage: Garbage,
        names: dict[int, str],
        older_than: datetime,
        history_since: datetime,
        progress: Progress,
    ) -> None:
        total = garbage.manifest_count
        for repo_id, nodes in garbage.manifests.items():
            repository = names[repo_id]
            pending = {node.id for node in nodes}
            # Rounds: an index goes first, the manifests it listed in the next round.
            while pending:
                removed = self._meta.gc_delete_manifests(
                    repository, sorted(pending), older_than, history_since
                )
                if not removed:
                    break
                pending -= set(removed)
                report.manifests_deleted += len(removed)
                self._count(report, repository, "manifests", len(removed))
                progress("manifests", report.manifests_deleted, total)

        total = garbage.link_count
        for repo_id, digests in garbage.links.items():
            repository = names[repo_id]
            removed_links = self._meta.gc_unlink(repository, digests, older_than)
            report.links_removed += len(removed_links)
            self._count(report, repository, "links", len(removed_links))
            progress("links", report.links_removed, total)

        candidates = list(garbage.blobs)
        gone = self._meta.gc_delete_blobs(candidates, older_than)
        progress("blobs", len(gone), len(candidates))
        done = 0

        def delete_files(digests: list[str]) -> None:
            nonlocal done
            self._blobs.delete_many(digests)
            done += len(digests)
            progress("files", done, len(gone))

        deleted = self._meta.gc_delete_files(gone, delete_files)
        progress("files", len(deleted), len(gone))
        report.blobs_deleted = len(deleted)
        report.bytes_freed = sum(garbage.blobs[digest] for digest in deleted)

    def _abandoned_uploads(self, older_than: datetime, dry_run: bool, progress: Progress) -> int:
        """Upload sessions idle since before `older_than`: their rows, their temporary
        data (also data whose row a crash lost), and half-done storage-level commits."""
        candidates = {record.upload_id for record in self._meta.uploads_older_than(older_than)}
        stored = list(self._blobs.upload_ids())
        known = self._meta.upload_ids_known(stored)
        candidates.update(upload_id for upload_id in stored if upload_id not in known)
        idle = sorted(
            upload_id
            for upload_id in candidates
            if (touched := self._blobs.upload_touched_at(upload_id)) is None or touched < older_than
        )
        if dry_run:
            return len(idle)
        for done, upload_id in enumerate(idle, 1):
            self._blobs.cancel_upload(upload_id)
            self._meta.delete_upload(upload_id)
            progress("uploads", done, len(idle))
        self._blobs.purge_incomplete(older_than)
        return len(idle)


class GcBusy(Conflict):
    """Another process or replica is collecting garbage right now."""


def options_from(
    grace_hours: float,
    delete_untagged: bool,
    history_days: float,
    upload_max_age_hours: float,
    dry_run: bool = False,
) -> GcOptions:
    return GcOptions(
        grace=grace_period(grace_hours),
        delete_untagged=delete_untagged,
        history_window=timedelta(days=history_days),
        upload_max_age=timedelta(hours=upload_max_age_hours),
        dry_run=dry_run,
    )


def collect(
    meta: MetadataStore,
    blobs: BlobStore,
    options: GcOptions,
    trigger: str,
    progress: Progress | None = None,
) -> GcReport:
    """Run a collection and keep its report in the log of runs; GcBusy when another
    process or replica is collecting right now."""
    with meta.gc_exclusive() as alone:
        if not alone:
            raise GcBusy("another garbage collection is running; try again when it ends")
        report = GarbageCollector(meta, blobs).run(options, progress)
    meta.record_gc_run(trigger, options.dry_run, report.to_dict())
    return report

"""Scheduled retention and garbage collection, run by the serving process (not its workers).

Every gc_interval_minutes the retention policies of every namespace run first (so the
collection that follows sees the tags they removed), then garbage collection, then the
cleanup of old scan results and jobs; a failure of one does not stop the others. Every
replica runs the schedule; the collection lock in the metadata store lets one of them
collect per interval and the others skip, and retention removes a tag only if it is still
what it planned, so replicas running it at once remove (and record) each tag once.

Whatever the GC interval, every replica also samples each repository's storage usage once
a day (table usage_samples, read by /v1/usage/history for the usage chart over time).
"""

from __future__ import annotations

import logging
import threading
from datetime import date, timedelta

from cargohold.auth.audit import AuditStore
from cargohold.config import Settings
from cargohold.core.gc import GcBusy, collect, options_from
from cargohold.core.retention import RetentionService
from cargohold.stores import Stores, open_stores

log = logging.getLogger(__name__)


def _log_failure(exc: Exception, message: str) -> None:
    # Imported here: the failure classes pull in boto and redis, which the GC command
    # that imports this module does not otherwise need.
    from cargohold.storage.failures import log_failure

    log_failure(log, exc, message)


SCHEDULE_ACTOR = "schedule"  # in the tag history and the audit log
FINISHED_JOBS_KEPT = timedelta(days=7)  # scan jobs done or failed, for the queue's log
EVENTS_KEPT = timedelta(days=7)  # read events stay this long (webhook redelivery needs them)
USAGE_SAMPLE_CHECK_SECONDS = 15 * 60  # how often each replica looks for today's usage samples


def start_schedule(settings: Settings) -> threading.Event | None:
    """Start the daily usage sampler, and the retention and GC schedule if one is
    configured; set the event to stop them."""
    stop = threading.Event()
    threading.Thread(
        target=_sample_loop, args=(settings, stop), name="cargohold-usage-samples", daemon=True
    ).start()
    if not settings.gc_interval_minutes:
        return stop
    thread = threading.Thread(target=_loop, args=(settings, stop), name="cargohold-gc", daemon=True)
    thread.start()
    return stop


def sample_usage(stores: Stores, day: date | None = None) -> int:
    """Every repository's storage usage as the sample of `day` (today, UTC), unless this
    or another replica sampled that day already; how many repositories were sampled."""
    from cargohold.storage.meta.sql_usage_samples import UsageSampleStore, today
    from cargohold.storage.meta.sqlbase import now

    samples = UsageSampleStore(stores.engine)
    day = day or today()
    if samples.sampled_on(day):
        return 0
    read_at = now()  # before reading: what changes after it is not in these numbers
    records = stores.meta.repository_usage()
    return samples.record(records, day, read_at) if records else 0  # no write for an empty registry


def _sample_loop(settings: Settings, stop: threading.Event) -> None:
    # Checked often, sampled once a day: a server started in the evening still samples
    # that day, and a registry that was empty at the first check is sampled once pushed to.
    while True:
        try:
            stores = open_stores(settings)
            try:
                sample_usage(stores)
            finally:
                stores.close()
        except Exception as exc:
            _log_failure(exc, "sampling storage usage failed; the next check tries again")
        if stop.wait(USAGE_SAMPLE_CHECK_SECONDS):
            return


def _loop(settings: Settings, stop: threading.Event) -> None:
    interval = settings.gc_interval_minutes * 60
    while not stop.wait(interval):
        run_once(settings)


def purge_event_log(stores: Stores) -> int:
    """Events every consumer (webhooks, replication) has read, older than EVENTS_KEPT."""
    from cargohold.events import EventLog

    return EventLog(stores.engine).purge(EVENTS_KEPT)


def purge_scan_records(stores: Stores, keep_results: int) -> tuple[int, int]:
    """Old scan results (all but the newest ``keep_results`` per image, and those of
    deleted images) and finished scan jobs older than a week; returns how many of each."""
    from cargohold.scan.queue import ScanQueue
    from cargohold.scan.results import ScanResultStore

    results = ScanResultStore(stores.engine).purge(keep_results)
    jobs = ScanQueue(stores.engine).purge_finished(FINISHED_JOBS_KEPT)
    return results, jobs


def run_once(settings: Settings) -> None:
    options = options_from(
        settings.gc_grace_hours,
        settings.gc_delete_untagged,
        settings.tag_history_keep_days,
        settings.upload_max_age_hours,
    )
    stores = open_stores(settings)
    try:
        try:
            RetentionService(stores.meta, AuditStore(stores.engine)).run(
                None, dry_run=False, actor=SCHEDULE_ACTOR
            )
        except Exception as exc:
            # Collecting still goes ahead; the next interval applies the policies again.
            _log_failure(exc, "scheduled retention failed")
        try:
            collect(stores.meta, stores.blobs, options, "schedule")
        except GcBusy:
            log.info("scheduled garbage collection skipped: another one is running")
        except Exception as exc:
            # The next interval tries again; serving must not stop because a collection failed.
            _log_failure(exc, "scheduled garbage collection failed")
        try:
            purge_scan_records(stores, settings.scan_keep_results)
            purge_event_log(stores)
        except Exception as exc:
            _log_failure(exc, "scheduled cleanup of scan results and events failed")
    finally:
        stores.close()

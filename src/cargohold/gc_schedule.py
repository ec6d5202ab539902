"""Scheduled garbage collection, run by the serving process (not its workers).

Every replica runs the schedule; the collection lock in the metadata store lets one of
them collect per interval and the others skip.
"""

from __future__ import annotations

import logging
import threading

from cargohold.config import Settings
from cargohold.core.gc import GcBusy, collect, options_from
from cargohold.stores import open_stores

log = logging.getLogger(__name__)


def start_schedule(settings: Settings) -> threading.Event | None:
    """Start the background schedule if one is configured; set the event to stop it."""
    if not settings.gc_interval_minutes:
        return None
    stop = threading.Event()
    thread = threading.Thread(target=_loop, args=(settings, stop), name="cargohold-gc", daemon=True)
    thread.start()
    return stop


def _loop(settings: Settings, stop: threading.Event) -> None:
    interval = settings.gc_interval_minutes * 60
    while not stop.wait(interval):
        run_once(settings)


def run_once(settings: Settings) -> None:
    options = options_from(
        settings.gc_grace_hours,
        settings.gc_delete_untagged,
        settings.tag_history_keep_days,
        settings.upload_max_age_hours,
    )
    stores = open_stores(settings)
    try:
        collect(stores.meta, stores.blobs, options, "schedule")
    except GcBusy:
        log.info("scheduled garbage collection skipped: another one is running")
    except Exception:
        # The next interval tries again; serving must not stop because a collection failed.
        log.exception("scheduled garbage collection failed")
    finally:
        stores.close()

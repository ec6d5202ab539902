"""Run the HTTP server: migrate the embedded database, then start uvicorn workers."""

from __future__ import annotations

import logging
import os
import shutil

import uvicorn

from cargohold.config import Settings
from cargohold.gc_schedule import start_schedule
from cargohold.http.app import SETTINGS_ENV
from cargohold.http.metrics import MULTIPROC_ENV
from cargohold.replication import start_replication_workers
from cargohold.scan.worker import start_scan_workers
from cargohold.setup import check_open_mode, prepare_storage
from cargohold.webhooks import start_webhook_workers

log = logging.getLogger("cargohold")


def serve(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    check_open_mode(settings, prepare_storage(settings))
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    _prepare_metrics_dir(settings)
    log.info(
        "cargohold serving http://%s:%d with %d workers, data in %s",
        settings.host,
        settings.port,
        settings.workers,
        settings.data_dir,
    )
    schedule = start_schedule(settings)
    scanners = start_scan_workers(settings)
    webhooks = start_webhook_workers(settings)
    replication = start_replication_workers(settings)
    uvicorn.run(
        "cargohold.http.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_timeout,
    )
    for stop in (schedule, scanners, webhooks, replication):
        if stop is not None:
            stop.set()


def _prepare_metrics_dir(settings: Settings) -> None:
    """Worker processes share metric values through files; start each run from empty."""
    if os.environ.get(MULTIPROC_ENV):
        return
    folder = settings.data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)

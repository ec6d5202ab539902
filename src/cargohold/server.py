"""Run the HTTP server: migrate the embedded database, then start uvicorn workers."""

from __future__ import annotations

import logging
import os
import shutil
import ssl

import uvicorn

from cargohold.config import Settings
from cargohold.gc_schedule import start_schedule
from cargohold.http.app import SETTINGS_ENV
from cargohold.http.metrics import MULTIPROC_ENV
from cargohold.http.protocol import HeaderTimeoutProtocol
from cargohold.replication import start_replication_workers
from cargohold.scan.worker import start_scan_workers
from cargohold.setup import check_open_mode, prepare_storage
from cargohold.webhooks import start_webhook_workers

log = logging.getLogger("cargohold")


def serve(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    check_open_mode(settings, prepare_storage(settings))
    _check_tls(settings)
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    _prepare_metrics_dir(settings)
    log.info(
        "cargohold serving %s://%s:%d with %d workers, data in %s",
        "https" if settings.tls_cert else "http",
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
        http=HeaderTimeoutProtocol,  # httptools, with a deadline for request heads
        access_log=False,
        log_level=settings.log_level,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_timeout,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
    for stop in (schedule, scanners, webhooks, replication):
        if stop is not None:
            stop.set()


def _check_tls(settings: Settings) -> None:
    """Load the certificate and key once here, so a bad pair stops the start with a clear
    message instead of every worker process failing on its own."""
    if settings.tls_cert is None or settings.tls_key is None:
        return
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise OSError(
            f"cannot use TLS certificate {settings.tls_cert} with key {settings.tls_key}: "
            f"{exc}. Give a PEM certificate (chain) and its PEM private key, readable by "
            "this user"
        ) from exc


def _prepare_metrics_dir(settings: Settings) -> None:
    """Worker processes share metric values through files; start each run from empty."""
    if os.environ.get(MULTIPROC_ENV):
        return
    folder = settings.data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)

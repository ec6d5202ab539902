"""Run the HTTP server: migrate the embedded database, start the background process, then
uvicorn's worker processes.

This process (the supervisor) only prepares storage, binds the socket and watches its
children, so it imports no more than that: the application is imported by the HTTP
workers (uvicorn loads it and the protocol by name), the background workers by their own
process (``background_process``).
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import tempfile

from cargohold.background_process import BackgroundProcess
from cargohold.config import Settings
from cargohold.process_env import MULTIPROC_ENV, SETTINGS_ENV

log = logging.getLogger("cargohold")

# Two malloc arenas for the threads of a process instead of eight per core. Read by glibc
# when a process starts, so set for the HTTP workers and the background process, which this
# process starts. glibc's own mmap threshold stays dynamic: fixed at 256 KiB, every 4 MiB
# read of a blob pull was a fresh mapping to fault in, and pulls ran at half speed (823 vs
# 1,585 MB/s) for 7 MB less peak RSS under load (114 vs 121 MB).
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2"}


def serve(settings: Settings) -> None:
    from cargohold.setup import check_open_mode, prepare_storage

    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    check_open_mode(settings, prepare_storage(settings))
    _check_tls(settings)
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    for key, value in MALLOC_ENV.items():
        os.environ.setdefault(key, value)
    metrics_dir = _prepare_metrics_dir()
    log.info(
        "cargohold serving %s://%s:%d with %d workers, data in %s",
        "https" if settings.tls_cert else "http",
        settings.host,
        settings.port,
        settings.workers,
        settings.data_dir,
    )
    import uvicorn

    background = BackgroundProcess()
    background.start()
    try:
        uvicorn.run(
            "cargohold.http.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            # httptools, with a deadline for request heads; by name, so that only the
            # workers import it (it imports the application)
            http="cargohold.http.protocol:HeaderTimeoutProtocol",
            access_log=False,
            log_level=settings.log_level,
            server_header=False,
            timeout_keep_alive=settings.keep_alive_timeout,
            ssl_certfile=settings.tls_cert,
            ssl_keyfile=settings.tls_key,
        )
    finally:
        background.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


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


def _prepare_metrics_dir() -> str | None:
    """Worker processes share metric values through files; each run starts from an empty
    folder of its own, removed when it ends (returned; None when one was given).

    Not under the data directory: prometheus_client maps these files and grows them
    sparsely, and a page first touched on a full file system kills the process with
    SIGBUS, so a full data disk would take the HTTP workers down instead of getting 507.
    """
    if os.environ.get(MULTIPROC_ENV):
        return None
    folder = tempfile.mkdtemp(prefix="cargohold-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    return folder

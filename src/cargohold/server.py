"""Run the HTTP server: migrate the embedded database, then start uvicorn workers."""

from __future__ import annotations

import logging
import os

import uvicorn

from cargohold.config import Settings
from cargohold.http.app import SETTINGS_ENV
from cargohold.storage.meta import schema
from cargohold.storage.meta.sql import create_sql_engine

log = logging.getLogger("cargohold")


def prepare_storage(settings: Settings) -> None:
    """Create the data folder and bring the database schema up to date."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_sql_engine(settings.resolved_database_url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()


def serve(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    prepare_storage(settings)
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    log.info(
        "cargohold serving http://%s:%d with %d workers, data in %s",
        settings.host,
        settings.port,
        settings.workers,
        settings.data_dir,
    )
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
        timeout_keep_alive=30,
    )

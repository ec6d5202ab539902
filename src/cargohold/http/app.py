"""create_app(settings): wire the stores, the core and the routes. No import-time state."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect

from cargohold.config import Settings
from cargohold.core import Registry
from cargohold.errors import RegistryError
from cargohold.http.errors import (
    client_disconnect_handler,
    http_exception_handler,
    registry_error_handler,
    unexpected_error_handler,
)
from cargohold.http.middleware import AccessLogMiddleware
from cargohold.http.routes import v2_routes
from cargohold.storage.blobs import FilesystemBlobStore
from cargohold.storage.meta import SqlMetadataStore

# Worker processes receive the parent's resolved settings through this variable.
SETTINGS_ENV = "CARGOHOLD_RESOLVED_SETTINGS"


def build_registry(settings: Settings) -> tuple[Registry, SqlMetadataStore]:
    blob_store = FilesystemBlobStore(settings.data_dir)
    meta = SqlMetadataStore.from_url(settings.resolved_database_url)
    return Registry(blob_store, meta, settings.max_manifest_size), meta


def create_app(settings: Settings) -> Starlette:
    registry, meta = build_registry(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        meta.close()

    middleware = [Middleware(AccessLogMiddleware)] if settings.access_log else []
    app = Starlette(
        routes=v2_routes(),
        middleware=middleware,
        exception_handlers={
            RegistryError: registry_error_handler,
            HTTPException: http_exception_handler,
            ClientDisconnect: client_disconnect_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.registry = registry
    app.state.settings = settings
    return app


def app_from_environment() -> Starlette:
    """The factory uvicorn's worker processes call."""
    settings = Settings.model_validate(json.loads(os.environ[SETTINGS_ENV]))
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    return create_app(settings)

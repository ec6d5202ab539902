"""Open the stores the settings name, wired the same way for the server and the CLI.

A CLI command that moves a tag must invalidate the same Redis cache the replicas read,
so every writer gets its stores here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from cargohold.config import Settings
from cargohold.shared_redis import redis_client
from cargohold.storage.blobs import BlobStore, open_blob_store
from cargohold.storage.blobs.locks import RedisUploadLocks
from cargohold.storage.meta import MetadataStore, SqlMetadataStore
from cargohold.storage.meta.cached import LocalCachedMetadataStore, RedisCachedMetadataStore
from cargohold.storage.meta.sqlbase import create_sql_engine

if TYPE_CHECKING:
    from redis import Redis


@dataclass(frozen=True, slots=True)
class Stores:
    engine: Engine
    meta: MetadataStore
    blobs: BlobStore
    redis: Redis | None

    def close(self) -> None:
        self.engine.dispose()
        if self.redis is not None:
            self.redis.close()


def open_stores(settings: Settings) -> Stores:
    engine = create_sql_engine(settings.resolved_database_url, settings.database_pool_size)
    shared = redis_client(settings.redis_url) if settings.redis_url else None
    sql = SqlMetadataStore(engine)
    sql.scan_on_push = settings.scan_on_push
    sql.record_events = True  # the event log webhooks (and replication) read
    meta: MetadataStore = sql
    locks = None
    if shared is not None:
        locks = RedisUploadLocks(shared, settings.redis_prefix)
        if settings.redis_cache_ttl:
            meta = RedisCachedMetadataStore(
                meta, shared, settings.redis_prefix, settings.redis_cache_ttl
            )
    elif settings.local_cache_entries and engine.dialect.name == "sqlite":
        # SQLite means one host, so a file in data_dir reaches every process that writes.
        meta = LocalCachedMetadataStore(
            meta, settings.data_dir / "run" / "lookup-generations", settings.local_cache_entries
        )
    blobs = open_blob_store(settings.storage_url, settings.data_dir, locks)
    return Stores(engine, meta, blobs, shared)

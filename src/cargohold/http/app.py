"""create_app(settings): wire the stores, the core and the routes. No import-time state."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from redis import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.routing import Mount, Route

from cargohold.auth.audit import AuditLog, AuditStore
from cargohold.auth.authenticate import Authenticator
from cargohold.auth.limits import FailedLogins, LoginLimits, RateLimiter, RequestLimiter
from cargohold.auth.limits_redis import RedisFailedLogins, RedisRateLimiter
from cargohold.auth.policy import AccessPolicy
from cargohold.auth.store import AuthStore
from cargohold.auth.tokens import TokenService
from cargohold.config import Settings
from cargohold.core.gc import options_from
from cargohold.core.registry import Registry
from cargohold.errors import RegistryError
from cargohold.events.pulls import PullEvents
from cargohold.http.access import AccessMiddleware
from cargohold.http.api import create_admin_api
from cargohold.http.audit import AuditMiddleware
from cargohold.http.errors import (
    client_disconnect_handler,
    http_exception_handler,
    registry_error_handler,
    storage_error_handler,
    unexpected_error_handler,
)
from cargohold.http.hsts import HstsMiddleware
from cargohold.http.metrics import Metrics, metrics_endpoint
from cargohold.http.middleware import (
    BodyTimeoutMiddleware,
    NulGuardMiddleware,
    ObservabilityMiddleware,
)
from cargohold.http.mirror import MirrorMiddleware
from cargohold.http.routes import osv_routes, token_routes, v2_routes
from cargohold.http.ui import ui_routes
from cargohold.parent_death import die_with_parent
from cargohold.process_env import SETTINGS_ENV
from cargohold.proxy.wiring import open_proxy
from cargohold.pull_guards import PullGuards
from cargohold.scan.policy import PullPolicyGate, ScanPolicyStore
from cargohold.scan.queue import QueueStats, ScanQueue
from cargohold.scan.results import ScanResultStore
from cargohold.signatures.gate import SignaturePullGate
from cargohold.signatures.store import SignatureStore
from cargohold.storage.failures import STORAGE_EXCEPTIONS
from cargohold.stores import open_stores
from cargohold.vulndb.store import AdvisoryStore


def build_limits(
    settings: Settings, client: Redis | None
) -> tuple[LoginLimits, RequestLimiter | None]:
    """Abuse limits: shared through Redis when configured, else per worker process."""
    if client is not None:
        limiter: RequestLimiter | None = (
            RedisRateLimiter(client, settings.rate_limit_per_minute, settings.redis_prefix)
            if settings.rate_limit_per_minute
            else None
        )
        logins = RedisFailedLogins(
            client, settings.failed_login_limit, prefix=settings.redis_prefix
        )
        return logins, limiter
    local = (
        RateLimiter(settings.rate_limit_per_minute, share=settings.workers)
        if settings.rate_limit_per_minute
        else None
    )
    return FailedLogins(settings.failed_login_limit), local


def gc_gauges(latest: list[dict[str, Any]]) -> dict[str, float]:
    """The last garbage collection, whoever ran it (CLI, API, schedule, another replica)."""
    if not latest:
        return {}
    run = latest[0]
    return {
        "cargohold_gc_last_run_timestamp_seconds": datetime.fromisoformat(
            run["finished_at"]
        ).timestamp(),
        "cargohold_gc_last_run_duration_seconds": run["seconds"],
        "cargohold_gc_last_run_blobs_deleted": run["blobs_deleted"],
        "cargohold_gc_last_run_manifests_deleted": run["manifests_deleted"],
        "cargohold_gc_last_run_bytes_freed": run["bytes_freed"],
        "cargohold_gc_last_run_dry_run": float(run["dry_run"]),
    }


def scan_gauges(stats: QueueStats) -> dict[str, float]:
    """The scan queue, shared by every replica: jobs by state, and how long the oldest
    queued one has waited (a growing age means the scanners cannot keep up)."""
    gauges: dict[str, float] = {
        f"cargohold_scan_jobs_{state}": float(count) for state, count in stats.counts.items()
    }
    gauges["cargohold_scan_queue_oldest_seconds"] = stats.oldest_queued_seconds or 0.0
    return gauges


def create_app(settings: Settings) -> Starlette:
    stores = open_stores(settings)
    engine, meta, blobs, shared = stores.engine, stores.meta, stores.blobs, stores.redis
    registry = Registry(
        blobs,
        meta,
        settings.max_manifest_size,
        max_upload_size=settings.max_upload_size,
        max_uploads_per_owner=settings.max_uploads_per_principal,
    )
    registry.set_proxy(open_proxy(settings, stores))  # pull-through cache (cargohold.proxy)
    auth_store = AuthStore(engine)
    policy = AccessPolicy(auth_store, settings.anonymous_pull)
    authenticator = Authenticator(auth_store)
    tokens = TokenService(settings.keys_dir, settings.token_service, settings.token_ttl)
    audit = AuditLog(AuditStore(engine))
    failed_logins, rate_limiter = build_limits(settings, shared)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        audit.close()
        stores.close()

    metrics = Metrics()

    def scrape_gauges() -> dict[str, float]:
        pool = engine.pool
        gauges = {
            "cargohold_uploads_in_progress": meta.count_uploads(),
            "cargohold_db_pool_checked_out": pool.checkedout()
            if hasattr(pool, "checkedout")
            else 0,
        }
        gauges.update(gc_gauges(meta.gc_runs(1)))
        gauges.update(scan_gauges(ScanQueue(engine).stats()))
        return gauges

    middleware = [
        Middleware(ObservabilityMiddleware, metrics=metrics, log_requests=settings.access_log),
        Middleware(
            BodyTimeoutMiddleware,
            seconds=settings.request_body_timeout,
            min_rate=settings.request_body_min_rate,
        ),
        Middleware(NulGuardMiddleware),
    ]
    middleware.append(
        Middleware(
            AccessMiddleware,
            policy=policy,
            authenticator=authenticator,
            tokens=tokens,
            audit=audit,
            failed_logins=failed_logins,
            rate_limiter=rate_limiter,
        )
    )
    middleware.append(Middleware(AuditMiddleware, audit=audit))
    middleware.insert(0, Middleware(MirrorMiddleware, proxy=registry.proxy))  # ?ns= mirrors
    if settings.tls_cert is not None and settings.hsts_seconds:
        middleware.insert(0, Middleware(HstsMiddleware, max_age=settings.hsts_seconds))
    admin_api = create_admin_api(
        auth_store,
        authenticator,
        policy,
        audit=audit,
        failed_logins=failed_logins,
        registry=registry,
        gc_options=options_from(
            settings.gc_grace_hours,
            settings.gc_delete_untagged,
            settings.tag_history_keep_days,
            settings.upload_max_age_hours,
        ),
    )
    admin_api.state.settings = settings  # webhooks: the secrets key file, timeouts
    app = Starlette(
        routes=[
            *v2_routes(),
            *token_routes(),
            *osv_routes(),
            Route("/metrics", metrics_endpoint(metrics, scrape_gauges), methods=["GET"]),
            Mount("/api", app=admin_api),
            *ui_routes(),  # the web UI at / and /ui/ (it uses /api)
        ],
        middleware=middleware,
        exception_handlers={
            RegistryError: registry_error_handler,
            HTTPException: http_exception_handler,
            ClientDisconnect: client_disconnect_handler,
            **dict.fromkeys(STORAGE_EXCEPTIONS, storage_error_handler),
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.registry = registry
    app.state.pull_guards = PullGuards(
        scans=PullPolicyGate(
            ScanPolicyStore(engine), ScanResultStore(engine), ttl=settings.policy_cache_seconds
        ),
        signatures=SignaturePullGate(
            SignatureStore(engine), registry, ttl=settings.policy_cache_seconds
        ),
        events=PullEvents(engine),  # for webhooks subscribed to pulls
    )
    app.state.advisories = AdvisoryStore(engine)
    app.state.settings = settings
    app.state.policy = policy
    app.state.authenticator = authenticator
    app.state.tokens = tokens
    app.state.audit = audit
    app.state.failed_logins = failed_logins
    return app


def app_from_environment() -> Starlette:
    """The factory uvicorn's worker processes call."""
    supervisor = multiprocessing.parent_process()
    if supervisor is not None and supervisor.pid is not None:  # one of several workers
        # SIGTERM: uvicorn's graceful stop, so requests in flight finish
        die_with_parent(supervisor.pid, signal.SIGTERM)
    settings = Settings.model_validate(json.loads(os.environ[SETTINGS_ENV]))
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    return create_app(settings)

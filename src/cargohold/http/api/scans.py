"""Vulnerability scan results and the scan queue.

`/v1/repositories/{name}/scans/{reference}`: the newest stored scan of an image (a tag or
digest), read with pull access; POST queues a rescan (push access). Pushed images are
queued automatically (setting scan_on_push) and importing advisories queues a rescan of
every image; the serving process's scanner runs the queue. `/v1/scan-queue` shows the
queue (registry admins) and can queue a rescan of everything.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from cargohold.auth.roles import PULL, PUSH
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    AnyCaller,
    Caller,
    RegistryDep,
    Store,
    error_doc,
    log_change,
    require_registry_admin,
)
from cargohold.http.api.errors import ApiError
from cargohold.http.api.tags import _check
from cargohold.scan.queue import MANUAL, ScanQueue
from cargohold.scan.results import ScanResultStore

router = APIRouter(tags=["scanning"], responses=AUTH_RESPONSES)

Name = Annotated[str, Path(description="the repository, slashes and all: team/app")]
Reference = Annotated[str, Path(description="a tag or a manifest digest of the repository")]


@router.get(
    "/v1/repositories/{name:path}/scans/{reference}",
    summary="The newest scan of an image: findings by platform and severity (pull)",
    responses={
        400: error_doc("an invalid repository name, tag or digest"),
        404: error_doc(
            "no such repository or manifest, or the image has not been scanned yet "
            "(SCAN_UNKNOWN; `pending` in the error's detail says whether a scan is queued)"
        ),
    },
)
def get_scan(
    request: Request,
    name: Name,
    reference: Reference,
    principal: AnyCaller,
    registry: RegistryDep,
    store: Store,
) -> dict[str, Any]:
    _check(request, principal, name, PULL, f"reading scans of {name}")
    digest = registry.manifests.get(name, reference).digest
    stored = ScanResultStore(store.engine).latest(name, digest)
    pending = ScanQueue(store.engine).pending(name, digest)
    if stored is None:
        what = "a scan is queued" if pending else "queue one with POST on this path"
        raise ApiError(404, "SCAN_UNKNOWN", f"{name}@{digest} has not been scanned yet: {what}")
    return {**stored.report.to_dict(), "reference": reference, "pending": pending}


@router.post(
    "/v1/repositories/{name:path}/scans/{reference}",
    status_code=202,
    summary="Queue a scan of an image now (push)",
    responses={
        400: error_doc("an invalid repository name, tag or digest"),
        404: error_doc("no such repository or manifest"),
    },
)
def queue_scan(
    request: Request,
    name: Name,
    reference: Reference,
    principal: AnyCaller,
    registry: RegistryDep,
    store: Store,
) -> JSONResponse:
    _check(request, principal, name, PUSH, f"scanning images of {name}")
    digest = registry.manifests.get(name, reference).digest
    job = ScanQueue(store.engine).enqueue(name, digest, MANUAL)
    log_change(request, principal, "scan_queued", name, digest=digest)
    return JSONResponse({"job": job, "repository": name, "digest": digest}, status_code=202)


@router.get("/v1/scan-queue", summary="Scan jobs by state and the newest jobs (registry admins)")
def scan_queue(
    principal: Caller,
    store: Store,
    state: Annotated[
        Literal["queued", "running", "done", "failed"] | None,
        Query(description="only jobs in this state"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="at most this many jobs")] = 50,
) -> dict[str, Any]:
    require_registry_admin(principal, "read the scan queue")
    queue = ScanQueue(store.engine)
    return {**queue.stats().to_dict(), "jobs": queue.jobs(limit, state)}


@router.post(
    "/v1/scan-queue/rescan-all",
    status_code=202,
    summary="Queue a rescan of every stored image (registry admins)",
)
def rescan_all(request: Request, principal: Caller, store: Store) -> JSONResponse:
    require_registry_admin(principal, "rescan every image")
    job = ScanQueue(store.engine).enqueue_rescan_all()
    log_change(request, principal, "scan_queued", "*")
    return JSONResponse({"job": job}, status_code=202)

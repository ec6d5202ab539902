"""/v1/gc: run garbage collection now, and read the reports of recent runs."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from cargohold.core.gc import GcBusy, GcOptions, collect, grace_period
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    Caller,
    RegistryDep,
    error_doc,
    log_change,
    require_registry_admin,
)
from cargohold.http.api.errors import conflict

router = APIRouter(prefix="/v1/gc", tags=["garbage collection"], responses=AUTH_RESPONSES)


class GcRequest(BaseModel):
    dry_run: bool = Field(False, description="report what would go; remove nothing")
    delete_untagged: bool | None = Field(
        None, description="also remove manifests nothing names (default: the server setting)"
    )
    grace_hours: float | None = Field(
        None,
        ge=0,
        description="keep unreferenced content younger than this (default: the server "
        "setting); lower it only when no push is slower than that",
    )


class GcReport(BaseModel):
    id: int | None = None
    trigger: str | None = None
    dry_run: bool
    started_at: str
    finished_at: str
    seconds: float
    manifests_deleted: int
    links_removed: int
    blobs_deleted: int
    bytes_freed: int
    uploads_removed: int
    repositories: dict[str, dict[str, int]] = Field(
        description="per repository: manifests and links removed"
    )


class GcRuns(BaseModel):
    runs: list[GcReport]


def _defaults(request: Request) -> GcOptions:
    options: GcOptions | None = request.app.state.gc_options
    return options or GcOptions()


# Plain defs: FastAPI runs them in a worker thread (a collection does blocking I/O).
@router.post(
    "",
    response_model=GcReport,
    responses={409: error_doc("another garbage collection is running")},
)
def run_gc(request: Request, caller: Caller, registry: RegistryDep, body: GcRequest) -> Any:
    """Collect garbage now (registry admins): the registry keeps serving meanwhile."""
    require_registry_admin(caller, "run garbage collection")
    options = dataclasses.replace(_defaults(request), dry_run=body.dry_run)
    if body.delete_untagged is not None:
        options = dataclasses.replace(options, delete_untagged=body.delete_untagged)
    if body.grace_hours is not None:
        options = dataclasses.replace(options, grace=grace_period(body.grace_hours))
    try:
        report = collect(registry.meta, registry.blob_store, options, "api")
    except GcBusy as exc:
        raise conflict(exc.message) from None
    if not body.dry_run:
        log_change(request, caller, "gc", "registry", bytes_freed=report.bytes_freed)
    return report.to_dict()


@router.get("/runs", response_model=GcRuns)
def gc_runs(
    caller: Caller,
    registry: RegistryDep,
    limit: Annotated[int, Query(ge=1, le=100, description="at most this many runs")] = 20,
) -> Any:
    """Reports of the latest collections, newest first (registry admins)."""
    require_registry_admin(caller, "read garbage collection reports")
    return {"runs": registry.meta.gc_runs(limit)}

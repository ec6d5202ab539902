"""/v1/usage/history: storage usage over time, from the daily samples of each repository
(taken by the serving process, see gc_schedule.sample_usage).

The whole registry's history is for registry admins; one namespace's (`namespace=`) for
whoever can see the namespace, and lists only the repositories the caller may pull.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import groupby
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from cargohold.auth.policy import AccessPolicy
from cargohold.auth.roles import PULL
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    AnyCaller,
    Store,
    check_repository,
    error_doc,
    require_access,
    require_registry_admin,
    visible_namespace,
)
from cargohold.storage.meta.sql_usage_samples import UsageSampleStore, today

router = APIRouter(
    prefix="/v1",
    tags=["usage and quotas"],
    responses={
        **AUTH_RESPONSES,
        400: error_doc("an invalid namespace, repository or number of days"),
        404: error_doc("no such namespace"),
    },
)


class UsagePoint(BaseModel):
    day: date = Field(description="the UTC day of the sample")
    stored_bytes: int
    logical_bytes: int
    blobs: int
    manifests: int


class RepositorySeries(BaseModel):
    repository: str
    samples: list[UsagePoint] = Field(description="oldest first; a day without one: no sample")


class UsageHistory(BaseModel):
    since: date
    until: date
    repositories: list[RepositorySeries]


@router.get(
    "/usage/history",
    response_model=UsageHistory,
    summary="Storage by repository over time, a sample a day (registry admins; a "
    "namespace's: whoever can see it)",
)
def usage_history(
    request: Request,
    principal: AnyCaller,
    store: Store,
    days: Annotated[int, Query(ge=1, le=400, description="this many days back")] = 90,
    namespace: Annotated[str | None, Query(max_length=255)] = None,
    repository: Annotated[str | None, Query(max_length=255)] = None,
) -> UsageHistory:
    if repository is not None:
        check_repository(repository)
        require_access(request, principal, repository, PULL, "reading storage usage")
    elif namespace is not None:
        visible_namespace(store, principal, namespace)
    else:
        require_registry_admin(principal, "read the registry's storage history")
    until = today()
    since = until - timedelta(days=days - 1)
    samples = UsageSampleStore(store.engine).series(since, namespace, repository)
    policy: AccessPolicy = request.app.state.policy
    series = []
    for name, rows in groupby(samples, key=lambda sample: sample.repository):
        if not principal.is_admin and PULL not in policy.allowed(principal, name):
            continue
        points = [
            UsagePoint(
                day=row.day,
                stored_bytes=row.stored_bytes,
                logical_bytes=row.logical_bytes,
                blobs=row.blobs,
                manifests=row.manifests,
            )
            for row in rows
        ]
        series.append(RepositorySeries(repository=name, samples=points))
    return UsageHistory(since=since, until=until, repositories=series)

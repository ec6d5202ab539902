"""Content discovery: tags list, catalog and referrers."""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargohold import mediatypes
from cargohold.http.handlers.common import (
    CompactJSONResponse,
    access_of,
    next_link,
    pagination,
    registry_of,
    run_in_threadpool,
    single_param,
)
from cargohold.http.nonblocking import cached_or_in_thread


async def list_tags(request: Request) -> Response:
    name = request.path_params["name"]
    limit, last = pagination(request)
    page = await cached_or_in_thread(partial(registry_of(request).list_tags, name, limit, last))
    headers = {}
    if page.more:
        headers["Link"] = next_link(f"/v2/{name}/tags/list", limit, page.items[-1])
    return CompactJSONResponse({"name": name, "tags": page.items}, headers=headers)


async def catalog(request: Request) -> Response:
    limit, last = pagination(request)
    access = access_of(request)
    page = await run_in_threadpool(
        registry_of(request).list_repositories,
        limit,
        last,
        # An open registry shows everything: no per-repository decision to make.
        access.may_list if access.policy is not None else None,
    )
    headers = {}
    if page.more:
        headers["Link"] = next_link("/v2/_catalog", limit, page.items[-1])
    return CompactJSONResponse({"repositories": page.items}, headers=headers)


async def referrers(request: Request) -> Response:
    name, digest = request.path_params["name"], request.path_params["digest"]
    artifact_type = single_param(request, "artifactType") or None
    records = await run_in_threadpool(
        registry_of(request).manifests.referrers, name, digest, artifact_type
    )
    manifests: list[dict[str, Any]] = []
    for record in records:
        descriptor: dict[str, Any] = {
            "mediaType": record.media_type,
            "digest": record.digest,
            "size": record.size,
        }
        if record.artifact_type:
            descriptor["artifactType"] = record.artifact_type
        if record.annotations:
            descriptor["annotations"] = record.annotations
        manifests.append(descriptor)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return JSONResponse(
        {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": manifests},
        media_type=mediatypes.OCI_INDEX,
        headers=headers,
    )

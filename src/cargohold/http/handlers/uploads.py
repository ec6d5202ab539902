"""Blob upload sessions: POST, PATCH, PUT, GET and DELETE under /v2/<name>/blobs/uploads/."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cargohold.core.uploads import UploadStatus
from cargohold.digest import Digest
from cargohold.errors import DigestInvalid
from cargohold.http.handlers.common import (
    access_of,
    body_stream,
    chunk_bounds,
    content_length,
    has_body,
    owner_of,
    registry_of,
    run_in_threadpool,
    single_param,
)


def _session_headers(status: UploadStatus) -> dict[str, str]:
    return {
        "Location": f"/v2/{status.repository}/blobs/uploads/{status.upload_id}",
        "Range": f"0-{max(status.offset - 1, 0)}",
        "Docker-Upload-UUID": status.upload_id,
        "Content-Length": "0",
    }


def _blob_created(name: str, digest: str) -> Response:
    return Response(
        status_code=201,
        headers={
            "Location": f"/v2/{name}/blobs/{digest}",
            "Docker-Content-Digest": digest,
            "Content-Length": "0",
        },
    )


async def start_upload(request: Request) -> Response:
    registry = registry_of(request)
    name = request.path_params["name"]
    mount = single_param(request, "mount")
    source = single_param(request, "from")
    if (
        mount is not None
        and source
        and await run_in_threadpool(access_of(request).can, source, "pull")
        and await run_in_threadpool(registry.blobs.mount, name, mount, source)
    ):
        return _blob_created(name, str(Digest.parse(mount)))
    digest = single_param(request, "digest")
    if digest is not None:
        stored = await registry.uploads.upload_whole(
            name, digest, body_stream(request), content_length(request), owner_of(request)
        )
        return _blob_created(name, stored)
    algorithm = single_param(request, "digest-algorithm") or "sha256"
    if mount is not None:
        algorithm = Digest.parse(mount).algorithm
    status = await run_in_threadpool(registry.uploads.start, name, algorithm, owner_of(request))
    return Response(status_code=202, headers=_session_headers(status))


async def upload_status(request: Request) -> Response:
    name, upload_id = request.path_params["name"], request.path_params["upload_id"]
    status = await run_in_threadpool(registry_of(request).uploads.status, name, upload_id)
    return Response(status_code=204, headers=_session_headers(status))


async def patch_upload(request: Request) -> Response:
    name, upload_id = request.path_params["name"], request.path_params["upload_id"]
    start, length = chunk_bounds(request)
    status = await registry_of(request).uploads.append(
        name, upload_id, body_stream(request), start, length
    )
    return Response(status_code=202, headers=_session_headers(status))


async def finish_upload(request: Request) -> Response:
    name, upload_id = request.path_params["name"], request.path_params["upload_id"]
    digest = single_param(request, "digest")
    if not digest:
        raise DigestInvalid("the closing PUT needs ?digest=<digest> of the whole blob")
    start, length = chunk_bounds(request)
    chunks = body_stream(request) if has_body(request) else None
    stored = await registry_of(request).uploads.finish(
        name, upload_id, digest, chunks, start, length
    )
    return _blob_created(name, stored)


async def cancel_upload(request: Request) -> Response:
    name, upload_id = request.path_params["name"], request.path_params["upload_id"]
    await run_in_threadpool(registry_of(request).uploads.cancel, name, upload_id)
    return Response(status_code=204)

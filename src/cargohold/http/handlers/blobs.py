"""GET/HEAD/DELETE /v2/<name>/blobs/<digest>."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from cargohold.errors import BlobUnknown
from cargohold.http.handlers.common import registry_of, run_in_threadpool


class BlobFileResponse(FileResponse):
    # Larger reads mean fewer thread hand-offs per blob (measured in bench/).
    chunk_size = 1024 * 1024


async def get_blob(request: Request) -> Response:
    name, digest = request.path_params["name"], request.path_params["digest"]
    blob = await run_in_threadpool(registry_of(request).blobs.get, name, digest)
    headers = {
        "Docker-Content-Digest": blob.digest,
        "ETag": f'"{blob.digest}"',
        "Cache-Control": "max-age=31536000",
    }
    if blob.path is not None:
        try:
            stat = await run_in_threadpool(os.stat, blob.path)
        except FileNotFoundError:
            raise BlobUnknown(f"blob {digest} is no longer stored") from None
        return BlobFileResponse(
            blob.path, stat_result=stat, headers=headers, media_type="application/octet-stream"
        )
    headers["Content-Length"] = str(blob.size)
    if request.method == "HEAD":
        return Response(headers=headers, media_type="application/octet-stream")
    return StreamingResponse(blob.stream(), headers=headers, media_type="application/octet-stream")


async def delete_blob(request: Request) -> Response:
    name, digest = request.path_params["name"], request.path_params["digest"]
    await run_in_threadpool(registry_of(request).blobs.delete, name, digest)
    return Response(status_code=202, headers={"Content-Length": "0"})

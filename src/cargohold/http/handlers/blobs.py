"""GET/HEAD/DELETE /v2/<name>/blobs/<digest>."""

from __future__ import annotations

import os
import re

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cargohold.errors import BlobUnknown
from cargohold.http.handlers.common import registry_of, run_in_threadpool


class BlobFileResponse(FileResponse):
    # Larger reads mean fewer thread hand-offs per blob (measured in bench/).
    chunk_size = 4 * 1024 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # RFC 9110 14.2: Range applies to GET only, and an unknown unit is ignored.
        if any(key == b"range" for key, _ in scope["headers"]) and (
            scope["method"] != "GET" or not _is_bytes_range(scope)
        ):
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"range"]
        await super().__call__(scope, receive, send)


def _is_bytes_range(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"range":
            return value.strip().lower().startswith(b"bytes=")
    return False


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
    headers["Accept-Ranges"] = "bytes"
    if request.method == "GET" and request.app.state.settings.storage_redirect:
        url = await run_in_threadpool(blob.store.redirect_url, blob.digest)
        if url is not None:
            # The spec lets registries redirect; clients follow, without our credentials.
            return Response(status_code=307, headers={**headers, "Location": url})
    if request.method == "HEAD":
        headers["Content-Length"] = str(blob.size)
        return Response(headers=headers, media_type="application/octet-stream")
    wanted = _single_range(request.headers.get("range"), blob.size)
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={"Content-Range": f"bytes */{blob.size}"})
    if wanted is None:
        headers["Content-Length"] = str(blob.size)
        stream = await run_in_threadpool(blob.stream)
        return StreamingResponse(stream, headers=headers, media_type="application/octet-stream")
    start, end = wanted
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    stream = await run_in_threadpool(blob.stream, start, end - start + 1)
    return StreamingResponse(
        stream, status_code=206, headers=headers, media_type="application/octet-stream"
    )


_BYTES_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _single_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive for one satisfiable byte range; None serves the whole blob.

    Only single ranges are honoured when streaming from remote storage; an unknown unit or
    a multi-range request gets the whole blob, which RFC 9110 allows.
    """
    if header is None:
        return None
    match = _BYTES_RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return "unsatisfiable"
    return start, end


async def delete_blob(request: Request) -> Response:
    name, digest = request.path_params["name"], request.path_params["digest"]
    await run_in_threadpool(registry_of(request).blobs.delete, name, digest)
    return Response(status_code=202, headers={"Content-Length": "0"})

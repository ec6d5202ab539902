"""The one table that turns domain errors into OCI error responses."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cargohold import errors as e
from cargohold.proxy.errors import UpstreamDenied, UpstreamUnavailable
from cargohold.storage.failures import storage_failure

log = logging.getLogger(__name__)

# exception type -> (OCI code, HTTP status)
ERROR_TABLE: dict[type[e.RegistryError], tuple[str, int]] = {
    e.BlobUnknown: ("BLOB_UNKNOWN", 404),
    e.BlobUploadInvalid: ("BLOB_UPLOAD_INVALID", 400),
    e.BlobUploadUnknown: ("BLOB_UPLOAD_UNKNOWN", 404),
    e.DigestInvalid: ("DIGEST_INVALID", 400),
    e.ManifestBlobUnknown: ("MANIFEST_BLOB_UNKNOWN", 400),
    e.ManifestInvalid: ("MANIFEST_INVALID", 400),
    e.ManifestUnknown: ("MANIFEST_UNKNOWN", 404),
    e.ManifestTooLarge: ("SIZE_INVALID", 413),
    e.NameInvalid: ("NAME_INVALID", 400),
    e.NameUnknown: ("NAME_UNKNOWN", 404),
    e.TagInvalid: ("MANIFEST_INVALID", 400),
    e.SizeInvalid: ("SIZE_INVALID", 400),
    e.BlobTooLarge: ("SIZE_INVALID", 413),
    e.RangeInvalid: ("BLOB_UPLOAD_INVALID", 416),
    e.Unsupported: ("UNSUPPORTED", 405),
    e.Denied: ("DENIED", 403),
    e.Unauthorized: ("UNAUTHORIZED", 401),
    e.TooManyRequests: ("TOOMANYREQUESTS", 429),
    e.PaginationInvalid: ("UNSUPPORTED", 400),
    UpstreamUnavailable: ("UNAVAILABLE", 503),
    UpstreamDenied: ("DENIED", 502),
    # Not in the OCI spec's table; Distribution answers UNAVAILABLE the same way.
    e.StorageFull: ("UNAVAILABLE", 507),
    e.StorageUnavailable: ("UNAVAILABLE", 503),
}


def error_body(code: str, message: str, detail: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        error["detail"] = detail
    return json.dumps({"errors": [error]}).encode()


def error_response(
    code: str, message: str, status: int, detail: Any = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        error_body(code, message, detail),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _status_for(exc: e.RegistryError) -> tuple[str, int]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]  # type: ignore[index]
    return "UNSUPPORTED", 400


async def registry_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.RegistryError)
    code, status = _status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, e.RangeInvalid):
        name = request.path_params.get("name", "")
        headers["Location"] = f"/v2/{name}/blobs/uploads/{exc.upload_id}"
        headers["Range"] = f"0-{max(exc.offset - 1, 0)}"
        headers["Docker-Upload-UUID"] = exc.upload_id
    if isinstance(exc, e.TooManyRequests):
        headers["Retry-After"] = "1"
    if isinstance(exc, e.StorageUnavailable):
        headers["Retry-After"] = "5"
    return error_response(code, exc.message, status, exc.detail, headers)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response("UNSUPPORTED", f"{request.method} is not allowed here", 405)
    if exc.status_code == 404:
        return error_response("UNSUPPORTED", f"no endpoint at {request.url.path}", 404)
    return error_response("UNSUPPORTED", str(exc.detail), exc.status_code)


async def client_disconnect_handler(request: Request, exc: Exception) -> Response:
    # The client went away mid-body; whatever it sent was rolled back. Nobody reads this.
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return error_response("BLOB_UPLOAD_INVALID", "client disconnected before the body ended", 400)


async def storage_error_handler(request: Request, exc: Exception) -> Response:
    """For the exception types stores raise (see STORAGE_EXCEPTIONS): a full disk or an
    unreachable store gets its own error; anything else is still an internal error."""
    failure = storage_failure(exc)
    if failure is None:
        raise exc
    log.error("storage failure on %s %s: %r", request.method, request.url.path, exc)
    return await registry_error_handler(request, failure)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    failure = storage_failure(exc)
    if failure is not None:
        log.error("storage failure on %s %s: %r", request.method, request.url.path, exc)
        return await registry_error_handler(request, failure)
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response("UNKNOWN", "internal error: see the server log", 500)

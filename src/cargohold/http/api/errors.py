"""Errors of the admin API: the registry's JSON shape, {"errors": [{"code", "message"}]}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from cargohold import errors as e
from cargohold.auth.store import AuthError
from cargohold.http.errors import ERROR_TABLE, error_response, unexpected_error_handler

log = logging.getLogger(__name__)

REALM = "cargohold"


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def unauthorized(message: str = "authentication required") -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message, {"WWW-Authenticate": f'Basic realm="{REALM}"'})


def too_many(message: str, retry_after: int) -> ApiError:
    return ApiError(429, "TOOMANYREQUESTS", message, {"Retry-After": str(retry_after)})


def denied(message: str) -> ApiError:
    return ApiError(403, "DENIED", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NAME_UNKNOWN", message)


def name_invalid(message: str) -> ApiError:
    return ApiError(400, "NAME_INVALID", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "CONFLICT", message)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.code, exc.message, exc.status, headers=exc.headers)


# The registry core's errors: as on /v2, except where a JSON API can say more precisely.
REGISTRY_ERRORS: dict[type[e.RegistryError], tuple[str, int]] = {
    **ERROR_TABLE,
    e.Denied: ("DENIED", 403),  # TagImmutable too: its message names the rule
    e.ManifestUnknown: ("MANIFEST_UNKNOWN", 404),
    e.NameUnknown: ("NAME_UNKNOWN", 404),
    e.NameInvalid: ("NAME_INVALID", 400),
    e.TagInvalid: ("TAG_INVALID", 400),
    e.DigestInvalid: ("DIGEST_INVALID", 400),
    e.Conflict: ("CONFLICT", 409),
    e.PaginationInvalid: ("INVALID_REQUEST", 400),
}


def registry_status(exc: e.RegistryError) -> tuple[str, int]:
    for cls in type(exc).__mro__:
        if cls in REGISTRY_ERRORS:
            return REGISTRY_ERRORS[cls]  # type: ignore[index]
    return "UNSUPPORTED", 400  # a refusal of the core is never a 500


async def registry_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.RegistryError)
    code, status = registry_status(exc)
    return error_response(code, exc.message, status, exc.detail)


async def auth_error_handler(request: Request, exc: Exception) -> Response:
    # The store says "no ..." when something named is missing; anything else is a clash.
    message = str(exc)
    if message.startswith("no ") or " has no " in message:
        return error_response("NAME_UNKNOWN", message, 404)
    return error_response("CONFLICT", message, 409)


async def integrity_error_handler(request: Request, exc: Exception) -> Response:
    log.info("conflict on %s %s: %s", request.method, request.url.path, exc)
    return error_response("CONFLICT", "the change conflicts with existing data", 409)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Only where and what: the rejected input may be a password, so it is never echoed.
    detail: list[dict[str, Any]] = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]
    first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    return error_response("INVALID_REQUEST", f"{where}: {first['msg']}", 400, detail)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response("NOT_FOUND", f"no endpoint at {request.url.path}", 404)
    if exc.status_code == 405:
        return error_response("UNSUPPORTED", f"{request.method} is not allowed here", 405)
    return error_response("UNSUPPORTED", str(exc.detail), exc.status_code, headers=exc.headers)


EXCEPTION_HANDLERS = {
    ApiError: api_error_handler,
    e.RegistryError: registry_error_handler,
    AuthError: auth_error_handler,
    IntegrityError: integrity_error_handler,
    RequestValidationError: validation_error_handler,
    HTTPException: http_error_handler,
    Exception: unexpected_error_handler,  # JSON 500 "UNKNOWN", logged with the traceback
}

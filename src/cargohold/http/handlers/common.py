"""Request parsing shared by the handlers: headers, pagination, links."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from cargohold.core.registry import Registry
from cargohold.errors import BlobUploadInvalid, PaginationInvalid, SizeInvalid
from cargohold.http.access import Access
from cargohold.http.audit import address_of

__all__ = ["run_in_threadpool"]

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
MAX_PAGE = 10_000


class CompactJSONResponse(JSONResponse):
    """JSONResponse's bytes (compact, UTF-8), encoded by orjson: list pages are large."""

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def registry_of(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def access_of(request: Request) -> Access:
    access: Access = request.state.access
    return access


def owner_of(request: Request) -> str:
    """Whom limits count a request against: the user, or an anonymous caller's address."""
    principal = access_of(request).principal
    return principal.name or f"address:{address_of(request.scope)}"


def content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise SizeInvalid(f"invalid Content-Length {raw[:40]!r}")
    return int(raw)


def content_range(request: Request) -> tuple[int, int] | None:
    """The inclusive (start, end) of a chunk, or None when the header is absent."""
    raw = request.headers.get("content-range")
    if raw is None:
        return None
    match = _CONTENT_RANGE.match(raw.strip())
    if match is None:
        raise BlobUploadInvalid(f"invalid Content-Range {raw[:60]!r}: expected <start>-<end>")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise BlobUploadInvalid(f"invalid Content-Range {raw[:60]!r}: end before start")
    return start, end


def chunk_bounds(request: Request) -> tuple[int | None, int | None]:
    """Where a chunk must start and how long it must be, from its headers."""
    declared = content_length(request)
    bounds = content_range(request)
    if bounds is None:
        return None, declared
    start, end = bounds
    length = end - start + 1
    if declared is not None and declared != length:
        raise SizeInvalid(f"Content-Range covers {length} bytes but Content-Length is {declared}")
    return start, length


def has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length != "0"
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


def body_stream(request: Request) -> AsyncIterator[bytes]:
    return request.stream()


def single_param(request: Request, key: str) -> str | None:
    values = request.query_params.getlist(key)
    if not values:
        return None
    if len(values) > 1:
        raise PaginationInvalid(f"query parameter {key!r} given more than once")
    return values[0]


def pagination(request: Request) -> tuple[int | None, str | None]:
    raw_n = single_param(request, "n")
    last = single_param(request, "last")
    if raw_n is None or raw_n == "":
        return None, last or None
    if not raw_n.isdigit():
        raise PaginationInvalid(f"n must be a non-negative integer, not {raw_n[:20]!r}")
    return min(int(raw_n), MAX_PAGE), last or None


def next_link(path: str, limit: int | None, last: str, **extra: str) -> str:
    query = {"n": str(limit), "last": last} if limit is not None else {"last": last}
    query.update(extra)
    return f'<{path}?{urlencode(query)}>; rel="next"'

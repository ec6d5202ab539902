"""POST /v1/query and /v1/querybatch: the OSV API over the imported advisories, so tools
such as pip-audit (`--osv-url`) and osv-scanner can use the registry as their advisory source.

Public and anonymous, like osv.dev (the access middleware asks no credentials here, but the
rate limiter applies). Errors are JSON {"code": 3, "message": ...}, gRPC's INVALID_ARGUMENT,
as osv.dev answers them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargohold.http.handlers.common import run_in_threadpool
from cargohold.vulndb import query as osv_query
from cargohold.vulndb.store import AdvisoryStore

MAX_BODY = 4 << 20
INVALID_ARGUMENT = 3


def _error(message: str, status: int = 400) -> Response:
    return JSONResponse({"code": INVALID_ARGUMENT, "message": message}, status_code=status)


async def _body(request: Request) -> Any:
    """The JSON body; raises QueryError when it is not JSON or too large."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise osv_query.QueryError(f"the request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    # ValueError: also a number of over 4300 digits; RecursionError: absurd nesting.
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise osv_query.QueryError("the request body is not valid JSON") from None


async def _answer(
    request: Request, run: Callable[[AdvisoryStore, Any], dict[str, Any]]
) -> Response:
    store: AdvisoryStore = request.app.state.advisories
    try:
        body = await _body(request)
        result = await run_in_threadpool(run, store, body)
    except osv_query.QueryError as exc:
        return _error(str(exc))
    return JSONResponse(result)


async def query(request: Request) -> Response:
    return await _answer(request, osv_query.query)


async def query_batch(request: Request) -> Response:
    return await _answer(request, osv_query.query_batch)

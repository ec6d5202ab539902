"""GET /v2/ (API version check) and the health probes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargohold.http.handlers.common import registry_of, run_in_threadpool

API_VERSION_HEADERS = {"Docker-Distribution-API-Version": "registry/2.0"}


async def api_root(request: Request) -> Response:
    return JSONResponse({}, headers=API_VERSION_HEADERS)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await run_in_threadpool(registry_of(request).check_ready)
    except Exception as exc:  # any failing dependency means "not ready", with the reason
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready"})

"""Serving the web UI (the app itself is package data in cargohold/ui/static).

`/` and every `/ui/...` page answer with index.html; the app's files are under
`/ui/static/`. Every response carries a strict Content-Security-Policy: no inline script
or style, no other origin, no framing.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from cargohold.ui import STATIC

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def _files() -> dict[str, Path]:
    """The static files by name: only these are served (no path from the request is
    joined to a directory)."""
    return {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in TYPES}


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type=TYPES[".html"], headers=SECURITY_HEADERS)


def ui_routes() -> list[Route]:
    files = _files()

    async def static(request: Request) -> Response:
        path = files.get(request.path_params["file"])
        if path is None:
            return Response("not found\n", 404, media_type="text/plain", headers=SECURITY_HEADERS)
        return FileResponse(path, media_type=TYPES[path.suffix], headers=SECURITY_HEADERS)

    return [
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/ui", page, methods=["GET", "HEAD"]),
        Route("/ui/static/{file}", static, methods=["GET", "HEAD"]),
        Route("/ui/{page:path}", page, methods=["GET", "HEAD"]),
    ]

"""GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from cargohold.errors import ManifestTooLarge
from cargohold.http.audit import actor_of
from cargohold.http.handlers.common import registry_of, run_in_threadpool
from cargohold.http.nonblocking import cached_or_in_thread
from cargohold.pull_guards import PullGuards

# The spec asks registries to accept at least ten tags per request; cap abuse well above.
MAX_TAGS_PER_PUSH = 100


async def get_manifest(request: Request) -> Response:
    name, reference = request.path_params["name"], request.path_params["reference"]
    registry = registry_of(request)
    # Pull policies judge GETs only: HEAD is an existence check (pushes use it).
    if request.method == "GET":
        guards: PullGuards = request.app.state.pull_guards
        lookup = partial(guards.pull, registry, name, reference, actor_of(request.scope))
    else:
        lookup = partial(registry.manifests.get, name, reference)
    record = await cached_or_in_thread(lookup)
    return Response(
        record.content,
        media_type=record.media_type,
        headers={"Docker-Content-Digest": record.digest, "ETag": f'"{record.digest}"'},
    )


async def put_manifest(request: Request) -> Response:
    registry = registry_of(request)
    name, reference = request.path_params["name"], request.path_params["reference"]
    body = await _read_limited(request, registry.manifests.max_manifest_size)
    tags = request.query_params.getlist("tag")[: MAX_TAGS_PER_PUSH + 1]
    if len(tags) > MAX_TAGS_PER_PUSH:
        return Response(status_code=414)
    result = await run_in_threadpool(
        registry.manifests.put,
        name,
        reference,
        body,
        request.headers.get("content-type"),
        tags,
        actor_of(request.scope),
    )
    headers = [
        ("Location", f"/v2/{name}/manifests/{result.digest}"),
        ("Docker-Content-Digest", result.digest),
        ("Content-Length", "0"),
    ]
    if result.subject:
        headers.append(("OCI-Subject", result.subject))
    if tags:
        headers.extend(("OCI-Tag", tag) for tag in result.tags)
    response = Response(status_code=201)
    response.raw_headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in headers]
    return response


async def delete_manifest(request: Request) -> Response:
    name, reference = request.path_params["name"], request.path_params["reference"]
    await run_in_threadpool(
        registry_of(request).manifests.delete, name, reference, actor_of(request.scope)
    )
    return Response(status_code=202, headers={"Content-Length": "0"})


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ManifestTooLarge(f"manifest is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ManifestTooLarge(f"manifest is larger than the limit of {limit} bytes")
    return bytes(body)

"""/v1/repositories/{name}/diff: what changes between two images of a repository.

The same diff as `cargohold diff` (see cargohold.scan.diff): layers added and removed,
packages upgraded, downgraded, added and removed, and known vulnerabilities fixed and
introduced, from `from` to `to`. Reading it needs pull access to the repository, decided
as on /v2. Nothing is stored; the layers of both images are read, so an answer may take a
while for large images.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from cargohold.auth.roles import PULL
from cargohold.digest import Digest
from cargohold.http.api.deps import AUTH_RESPONSES, AnyCaller, RegistryDep, error_doc
from cargohold.http.api.errors import ApiError
from cargohold.http.api.tags import _check
from cargohold.reference import validate_tag

router = APIRouter(
    prefix="/v1/repositories",
    tags=["tags"],
    responses={
        **AUTH_RESPONSES,
        400: error_doc(
            "an invalid repository name, tag or digest (NAME_INVALID, TAG_INVALID, "
            "DIGEST_INVALID), or images that cannot be compared (INVALID_REQUEST)"
        ),
        404: error_doc("no such repository (NAME_UNKNOWN) or manifest (MANIFEST_UNKNOWN)"),
    },
)

Name = Annotated[str, Path(description="the repository, slashes and all: team/app")]
Ref = Annotated[str, Query(description="a tag or a manifest digest of the repository")]


def _reference(value: str) -> str:
    if ":" in value:
        Digest.parse(value)
    else:
        validate_tag(value)
    return value


@router.get(
    "/{name:path}/diff",
    summary="What changes from one image to another: layers, packages, vulnerabilities (pull)",
    description=(
        "`from` and `to` are tags or digests of the repository. For multi-platform images, "
        "`platform` (os/arch[/variant]) chooses the images compared: by default linux/amd64 "
        "when both have it, else the first platform both have (`platform` and `notes` in "
        "the answer say which). Vulnerabilities come from the imported advisories."
    ),
)
def image_diff(
    request: Request,
    name: Name,
    principal: AnyCaller,
    registry: RegistryDep,
    from_ref: Annotated[str, Query(alias="from", description="the image now: a tag or digest")],
    to_ref: Annotated[str, Query(alias="to", description="the image to compare it with")],
    platform: Annotated[
        str | None, Query(description="os/arch[/variant] of multi-platform images")
    ] = None,
) -> dict[str, Any]:
    from cargohold.scan.diff import DiffError, diff_images
    from cargohold.vulndb.store import AdvisoryStore

    _check(request, principal, name, PULL, f"comparing images of {name}")
    _reference(from_ref)
    _reference(to_ref)
    engine = getattr(registry.meta, "engine", None)
    if engine is None:
        raise ApiError(503, "UNAVAILABLE", "this registry's metadata store keeps no advisories")
    try:
        diff = diff_images(
            registry, AdvisoryStore(engine), (name, from_ref), (name, to_ref), platform
        )
    except DiffError as exc:
        raise ApiError(400, "INVALID_REQUEST", str(exc)) from None
    return diff.to_dict()

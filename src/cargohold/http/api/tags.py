"""/v1/repositories/{name}/tags and /history: tags as versions.

List tags with what they name, read their history, roll a tag back, point a tag at a
manifest of this or another repository of the namespace (no re-upload), delete a tag.
Permissions are the registry's own, decided as on /v2: pull to read, push to move a tag,
delete to remove one. Robot accounts may use these endpoints within their scope.

Repository names contain slashes, so every route ends in a fixed suffix. The routes for
one tag come first: `.../team/app/tags/x/history` is the history of the tag `x` of
team/app, not that of a repository team/app/tags/x.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from cargohold.auth.principal import Principal
from cargohold.auth.roles import DELETE, PULL, PUSH
from cargohold.core import versioning as core
from cargohold.core.registry import Registry
from cargohold.digest import SUPPORTED_ALGORITHMS, Digest
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    MAX_ID,
    AnyCaller,
    RegistryDep,
    Store,
    error_doc,
    log_change,
    require_access,
)
from cargohold.http.api.schemas import (
    Retag,
    Rollback,
    ScanSummary,
    Tag,
    TagChange,
    TagEvent,
    TagHistory,
    TagList,
)
from cargohold.reference import validate_name, validate_tag
from cargohold.scan.results import ScanResultStore
from cargohold.storage.meta import TagRecord

MAX_PAGE = core.MAX_HISTORY_PAGE

TAG_NOT_FOUND = {
    404: error_doc("no such repository (NAME_UNKNOWN), or tag or manifest (MANIFEST_UNKNOWN)")
}

INVALID = {
    400: error_doc(
        "an invalid repository name, tag, digest, time or request body (NAME_INVALID, "
        "TAG_INVALID, DIGEST_INVALID, INVALID_REQUEST)"
    )
}

router = APIRouter(
    prefix="/v1/repositories",
    tags=["tags"],
    responses={**AUTH_RESPONSES, **INVALID, **TAG_NOT_FOUND},
)

Name = Annotated[str, Path(description="the repository, slashes and all: team/app")]
TagName = Annotated[str, Path(description="a tag of the repository")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="at most this many entries")]
Before = Annotated[
    int | None,
    Query(ge=1, le=MAX_ID, description="only entries older than this id (the last one seen)"),
]


def _check(
    request: Request,
    principal: Principal,
    name: str,
    action: str,
    doing: str,
    tag: str | None = None,
) -> None:
    """Names first (400 for invalid ones, as /v2), then the caller's access (403)."""
    validate_name(name)
    if tag is not None:
        validate_tag(tag)
    require_access(request, principal, name, action, doing)


def _tag(record: TagRecord, scan: dict[str, Any] | None = None) -> Tag:
    tag = Tag.model_validate(record, from_attributes=True)
    if scan is not None:
        tag.scan = ScanSummary.model_validate(scan)
    return tag


def _event(event: Any) -> TagEvent:
    return TagEvent.model_validate(event, from_attributes=True)


def _change(change: core.TagChange) -> TagChange:
    return TagChange(
        repository=change.repository,
        tag=change.tag,
        digest=change.digest,
        changed=change.event is not None,
        event=None if change.event is None else _event(change.event),
    )


def _history(
    registry: Registry, name: str, tag: str | None, limit: int, before: int | None
) -> TagHistory:
    # One more than asked says whether an older page exists (the core caps a page at
    # MAX_PAGE: a full page of that size may be followed by an empty one).
    events = registry.tags.history(name, tag, limit=limit + 1, before_id=before)
    more = len(events) > limit or len(events) == limit == MAX_PAGE
    events = events[:limit]
    if tag is not None and not events and before is None:
        registry.tags.resolve(name, tag)  # MANIFEST_UNKNOWN unless it predates the history
    return TagHistory(
        events=[_event(event) for event in events],
        next_before=events[-1].id if more and events else None,
    )


# -- one tag (before the repository-wide routes: see the module's docstring)
@router.get(
    "/{name:path}/tags/{tag}/history",
    response_model=TagHistory,
    summary="Every change of a tag, newest first (pull)",
)
def tag_history(
    request: Request,
    name: Name,
    tag: TagName,
    principal: AnyCaller,
    registry: RegistryDep,
    limit: Limit = 100,
    before: Before = None,
) -> TagHistory:
    _check(request, principal, name, PULL, f"reading the history of {name}:{tag}", tag)
    return _history(registry, name, tag, limit, before)


@router.post(
    "/{name:path}/tags/{tag}/rollback",
    response_model=TagChange,
    summary="Point a tag back at an earlier manifest (push)",
    description=(
        "`to` is a manifest digest, a history entry id, or an ISO 8601 time (the manifest "
        "the tag named then); without it, the manifest the tag named before its latest "
        "change, which also restores a deleted tag. A tag that an immutable-tag rule "
        "protects cannot be rolled back (403 DENIED naming the rule)."
    ),
)
def rollback(
    request: Request,
    name: Name,
    tag: TagName,
    principal: AnyCaller,
    registry: RegistryDep,
    body: Rollback | None = None,
) -> TagChange:
    _check(request, principal, name, PUSH, f"rolling back {name}:{tag}", tag)
    to = None if body is None else body.to
    change = registry.tags.rollback(name, tag, _rollback_to(to), principal.name)
    if change.event is not None:
        log_change(
            request,
            principal,
            "tag_rollback",
            name,
            tag=tag,
            digest=change.digest,
            previous=change.event.old_digest,
            to=None if to is None else str(to),
        )
    return _change(change)


@router.get("/{name:path}/tags/{tag}", response_model=Tag, summary="What a tag names (pull)")
def get_tag(
    request: Request, name: Name, tag: TagName, principal: AnyCaller, registry: RegistryDep
) -> Tag:
    _check(request, principal, name, PULL, f"reading {name}:{tag}", tag)
    return _tag(registry.tags.resolve(name, tag))


@router.put(
    "/{name:path}/tags/{tag}",
    response_model=TagChange,
    summary="Point a tag at a manifest of this or another repository of the namespace",
    description=(
        "Retagging without a re-upload: needs push on this repository and pull on the "
        "source. From another repository of the same namespace the manifest, its child "
        "manifests and its blobs are linked, not copied; across namespaces it is refused."
    ),
)
def retag(
    request: Request,
    name: Name,
    tag: TagName,
    body: Retag,
    principal: AnyCaller,
    registry: RegistryDep,
) -> TagChange:
    _check(request, principal, name, PUSH, f"tagging {name}:{tag}", tag)
    source, reference = parse_source(body.source, name)
    if source != name:
        _check(request, principal, source, PULL, f"tagging from {source}")
    change = registry.tags.add(source, reference, name, tag, principal.name)
    if change.event is not None:
        log_change(
            request,
            principal,
            "retag",
            name,
            tag=tag,
            digest=change.digest,
            previous=change.event.old_digest,
            source=body.source,
        )
    return _change(change)


@router.delete(
    "/{name:path}/tags/{tag}",
    status_code=204,
    response_class=Response,
    summary="Delete a tag; the manifest stays (delete)",
)
def delete_tag(
    request: Request, name: Name, tag: TagName, principal: AnyCaller, registry: RegistryDep
) -> Response:
    _check(request, principal, name, DELETE, f"deleting {name}:{tag}", tag)
    digest = registry.tags.resolve(name, tag).digest
    registry.manifests.delete(name, tag, principal.name)
    log_change(request, principal, "tag_delete", name, tag=tag, digest=digest)
    return Response(status_code=204)


# -- the repository
@router.get(
    "/{name:path}/tags",
    response_model=TagList,
    summary="Tags with the manifests they name, in ASCII order (pull)",
)
def list_tags(
    request: Request,
    name: Name,
    principal: AnyCaller,
    registry: RegistryDep,
    store: Store,
    n: Annotated[int, Query(ge=1, le=MAX_PAGE, description="at most this many tags")] = 100,
    last: Annotated[
        str | None, Query(max_length=128, description="only tags after this one")
    ] = None,
) -> TagList:
    _check(request, principal, name, PULL, f"listing the tags of {name}")
    records = registry.tags.records(name, n + 1, last)
    page = records[:n]
    scans = ScanResultStore(store.engine).summaries(name, [r.digest for r in page])
    return TagList(
        tags=[_tag(record, scans.get(record.digest)) for record in page],
        next=page[-1].name if len(records) > n else None,
    )


@router.get(
    "/{name:path}/history",
    response_model=TagHistory,
    summary="Every tag change in a repository, newest first (pull)",
)
def repository_history(
    request: Request,
    name: Name,
    principal: AnyCaller,
    registry: RegistryDep,
    limit: Limit = 100,
    before: Before = None,
) -> TagHistory:
    _check(request, principal, name, PULL, f"reading the history of {name}")
    return _history(registry, name, None, limit, before)


# -- parsing
def parse_source(text: str, repository: str) -> tuple[str, str]:
    """(repository, digest or tag) of a retag source; without a repository, `repository`.

    <digest>, <tag>, <repository>@<digest>, <repository>:<tag> (also @<digest>, :<tag>).
    """
    text = text.strip()
    if "@" in text:
        source, _, reference = text.partition("@")
        return validate_name(source) if source else repository, str(Digest.parse(reference))
    if ":" in text:
        head, _, reference = text.rpartition(":")
        if head in SUPPORTED_ALGORITHMS:
            return repository, str(Digest.parse(text))
        return validate_name(head) if head else repository, validate_tag(reference)
    return repository, validate_tag(text)


def _rollback_to(to: str | int | None) -> str | None:
    """The body's `to` as the core reads it: an entry number may arrive as a JSON number."""
    return None if to is None else str(to).strip()

"""Browsing for the web UI: namespaces, repositories with search, and parsed manifests.

`/v1/namespaces`: the namespaces the caller can see, and whether they administer each.
`/v1/repositories`: the repositories the caller may pull, with their storage, visibility
and last tag change; search by substring, filter by namespace and visibility, paginate.
`/v1/repositories/{name}/manifests/{reference}`: a manifest as the UI shows it: its config
in brief, layers and sizes, annotations, the platforms of an index, and its referrers
(signatures, SBOMs). Permissions are the registry's own: pull, as for the tag API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from cargohold.auth.policy import AccessPolicy
from cargohold.auth.roles import DELETE, PULL
from cargohold.auth.store import AuthStore
from cargohold.digest import Digest, is_digest_like
from cargohold.errors import RegistryError
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    AnyCaller,
    Caller,
    RegistryDep,
    Store,
    can_see_namespace,
    error_doc,
    is_namespace_admin,
    log_change,
)
from cargohold.http.api.errors import ApiError
from cargohold.http.api.schemas import ScanSummary
from cargohold.http.api.tags import _check
from cargohold.mediatypes import INDEXES
from cargohold.scan.results import ScanResultStore
from cargohold.scan.sbom import CREATED_ANNOTATION, CYCLONEDX_JSON, FORMAT_ANNOTATION

router = APIRouter(prefix="/v1", tags=["browsing"], responses=AUTH_RESPONSES)

# A config blob larger than this is not read for its summary.
MAX_CONFIG_BYTES = 1024 * 1024


class NamespaceEntry(BaseModel):
    name: str
    kind: str = Field(description="user or org")
    public: bool
    admin: bool = Field(description="whether the caller administers it")


class RepositoryEntry(BaseModel):
    name: str
    namespace: str
    public: bool = Field(description="effective visibility: its own, or its namespace's")
    stored_bytes: int
    logical_bytes: int
    manifests: int
    last_push_at: datetime | None = Field(description="the latest tag change; null: none")
    last_push_by: str | None


class RepositoryList(BaseModel):
    repositories: list[RepositoryEntry]
    next: str | None = Field(description="pass as `after` for the next page; null: no more")
    total: int = Field(description="repositories matching the search, on every page")


class Descriptor(BaseModel):
    media_type: str | None
    digest: str | None
    size: int | None
    annotations: dict[str, str] = {}
    platform: dict[str, Any] | None = None
    artifact_type: str | None = None


class ConfigSummary(BaseModel):
    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    created: str | None = None
    author: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] | None = None
    working_dir: str | None = None
    user: str | None = None
    labels: dict[str, str] = {}
    exposed_ports: list[str] = []
    history: int = Field(0, description="history entries (build steps)")


class ManifestView(BaseModel):
    repository: str
    reference: str
    digest: str
    media_type: str
    size: int = Field(description="the manifest's own size")
    total_size: int = Field(description="the manifest, its config and layers (an image)")
    is_index: bool
    artifact_type: str | None
    subject: str | None
    annotations: dict[str, str]
    config: Descriptor | None
    config_summary: ConfigSummary | None
    layers: list[Descriptor]
    manifests: list[Descriptor] = Field(description="an index's child manifests")
    referrers: list[Descriptor]


def _text_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _strings(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [str(item) for item in value]


def _descriptor(value: Any) -> Descriptor:
    if not isinstance(value, dict):
        return Descriptor(media_type=None, digest=None, size=None)
    size = value.get("size")
    platform = value.get("platform")
    return Descriptor(
        media_type=str(value["mediaType"]) if "mediaType" in value else None,
        digest=str(value["digest"]) if "digest" in value else None,
        size=size if isinstance(size, int) else None,
        annotations=_text_map(value.get("annotations")),
        platform=platform if isinstance(platform, dict) else None,
        artifact_type=str(value["artifactType"]) if "artifactType" in value else None,
    )


def _config_summary(data: Any) -> ConfigSummary:
    if not isinstance(data, dict):
        return ConfigSummary()
    inner = data.get("config") if isinstance(data.get("config"), dict) else {}
    ports = inner.get("ExposedPorts")
    return ConfigSummary(
        os=str(data["os"]) if "os" in data else None,
        architecture=str(data["architecture"]) if "architecture" in data else None,
        variant=str(data["variant"]) if "variant" in data else None,
        created=str(data["created"]) if "created" in data else None,
        author=str(data["author"]) if "author" in data else None,
        entrypoint=_strings(inner.get("Entrypoint")),
        cmd=_strings(inner.get("Cmd")),
        env=_strings(inner.get("Env")),
        working_dir=str(inner["WorkingDir"]) if inner.get("WorkingDir") else None,
        user=str(inner["User"]) if inner.get("User") else None,
        labels=_text_map(inner.get("Labels")),
        exposed_ports=sorted(str(p) for p in ports) if isinstance(ports, dict) else [],
        history=len(data["history"]) if isinstance(data.get("history"), list) else 0,
    )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _visibility(store: AuthStore, repository: str) -> bool:
    namespace, override = store.visibility(repository)
    return override if override is not None else bool(namespace and namespace.public)


@router.get(
    "/namespaces",
    response_model=list[NamespaceEntry],
    summary="Namespaces the caller can see, and whether they administer each",
)
def list_namespaces(principal: Caller, store: Store) -> list[NamespaceEntry]:
    entries = []
    for record in store.list_namespaces():
        if can_see_namespace(store, principal, record):
            entries.append(
                NamespaceEntry(
                    name=record.name,
                    kind=record.kind,
                    public=bool(record.public),
                    admin=is_namespace_admin(store, principal, record),
                )
            )
    return entries


@router.get(
    "/repositories",
    response_model=RepositoryList,
    summary="Repositories the caller may pull: search, filter, sort and paginate",
    responses={400: error_doc("an invalid parameter")},
)
def list_repositories(
    request: Request,
    principal: AnyCaller,
    registry: RegistryDep,
    store: Store,
    namespace: Annotated[str | None, Query(max_length=255, description="one namespace")] = None,
    q: Annotated[str | None, Query(max_length=255, description="a part of the name")] = None,
    visibility: Annotated[Literal["public", "private"] | None, Query()] = None,
    pushed_within_days: Annotated[
        int | None, Query(ge=1, le=36500, description="a tag changed in the last N days")
    ] = None,
    min_bytes: Annotated[
        int | None, Query(ge=0, description="storing at least this many bytes")
    ] = None,
    sort: Annotated[
        Literal["name", "size", "pushed"], Query(description="pushed: latest first")
    ] = "name",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[
        str | None, Query(max_length=512, description="the `next` of the previous page")
    ] = None,
) -> RepositoryList:
    policy: AccessPolicy = request.app.state.policy
    rows = registry.meta.repository_usage(namespace or None)
    rows = [row for row in rows if PULL in policy.allowed(principal, row.name)]
    if q:
        needle = q.lower()
        rows = [row for row in rows if needle in row.name.lower()]
    public: dict[str, bool] = {}
    if visibility is not None:
        for row in rows:
            public[row.name] = _visibility(store, row.name)
        wanted = visibility == "public"
        rows = [row for row in rows if public[row.name] == wanted]

    def last_change(name: str) -> Any:
        events = registry.meta.tag_history(name, limit=1)
        return events[0] if events else None

    if min_bytes is not None:
        rows = [row for row in rows if row.stored_bytes >= min_bytes]
    changes: dict[str, Any] = {}
    if sort == "pushed" or pushed_within_days is not None:
        changes = {row.name: last_change(row.name) for row in rows}
    if pushed_within_days is not None:
        since = datetime.now(UTC) - timedelta(days=pushed_within_days)
        rows = [row for row in rows if changes[row.name] and _utc(changes[row.name].at) >= since]
    if sort == "pushed":
        rows.sort(
            key=lambda row: changes[row.name].at.timestamp() if changes[row.name] else 0.0,
            reverse=True,
        )
    elif sort == "size":
        rows.sort(key=lambda row: (-row.stored_bytes, row.name))
    else:
        rows.sort(key=lambda row: row.name)
    total = len(rows)
    # The cursor is the position for the sorted orders, the name for name order.
    if sort == "name":
        start = 0 if after is None else sum(1 for row in rows if row.name <= after)
    else:
        start = int(after) if after and after.isdigit() else 0
    page = rows[start : start + limit]
    entries = []
    for row in page:
        change = changes[row.name] if row.name in changes else last_change(row.name)
        entries.append(
            RepositoryEntry(
                name=row.name,
                namespace=row.name.split("/", 1)[0],
                public=public[row.name] if row.name in public else _visibility(store, row.name),
                stored_bytes=row.stored_bytes,
                logical_bytes=row.logical_bytes,
                manifests=row.manifests,
                last_push_at=change.at if change else None,
                last_push_by=change.actor if change else None,
            )
        )
    more = start + limit < total
    cursor = (page[-1].name if sort == "name" else str(start + limit)) if more and page else None
    return RepositoryList(repositories=entries, next=cursor, total=total)


@router.get(
    "/repositories/{name:path}/manifests/{reference}",
    response_model=ManifestView,
    summary="A manifest, parsed: config, layers, annotations, platforms, referrers (pull)",
    responses={
        400: error_doc("an invalid repository name, tag or digest"),
        404: error_doc("no such repository or manifest"),
    },
)
def get_manifest(
    request: Request,
    name: Annotated[str, Path(description="the repository, slashes and all: team/app")],
    reference: Annotated[str, Path(description="a tag or a manifest digest")],
    principal: AnyCaller,
    registry: RegistryDep,
) -> ManifestView:
    _check(request, principal, name, PULL, f"reading manifests of {name}")
    record = registry.manifests.get(name, reference)
    try:
        document = json.loads(record.content)
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    media_type = record.media_type or str(document.get("mediaType", ""))
    is_index = media_type in INDEXES or "manifests" in document
    config = _descriptor(document["config"]) if "config" in document else None
    layers = [_descriptor(item) for item in document.get("layers") or []]
    children = [_descriptor(item) for item in document.get("manifests") or []]
    summary = None
    if config is not None and config.digest and (config.size or 0) <= MAX_CONFIG_BYTES:
        try:
            blob = registry.blobs.get(name, config.digest)
            data = json.loads(b"".join(blob.stream()))
            summary = _config_summary(data)
        except (RegistryError, ValueError, OSError):
            summary = None
    total = record.size + sum(d.size or 0 for d in ([config] if config else []) + layers)
    referrers = [
        Descriptor(
            media_type=ref.media_type,
            digest=ref.digest,
            size=ref.size,
            annotations=dict(ref.annotations or {}),
            artifact_type=ref.artifact_type,
        )
        for ref in registry.meta.list_referrers(name, record.digest, None)
    ]
    return ManifestView(
        repository=name,
        reference=reference,
        digest=record.digest,
        media_type=media_type,
        size=record.size,
        total_size=total,
        is_index=is_index,
        artifact_type=record.artifact_type,
        subject=record.subject,
        annotations=_text_map(document.get("annotations")),
        config=config,
        config_summary=summary,
        layers=layers,
        manifests=children,
        referrers=referrers,
    )


class RepositoryAccess(BaseModel):
    repository: str
    actions: list[str] = Field(description="what the caller may do here: pull, push, delete")
    namespace_admin: bool = Field(description="whether the caller administers the namespace")
    public: bool = Field(description="whether the repository is public now")
    visibility: Literal["public", "private", "inherit"] = Field(
        description="the repository's own setting; inherit: its namespace's"
    )


@router.get(
    "/repositories/{name:path}/access",
    response_model=RepositoryAccess,
    summary="What the caller may do in a repository (pull)",
    responses={400: error_doc("an invalid repository name")},
)
def repository_access(
    request: Request,
    name: Annotated[str, Path(description="the repository, slashes and all: team/app")],
    principal: AnyCaller,
    store: Store,
) -> RepositoryAccess:
    _check(request, principal, name, PULL, f"reading {name}")
    policy: AccessPolicy = request.app.state.policy
    record = store.namespace(name.split("/", 1)[0])
    admin = (
        principal.kind == "user"
        and record is not None
        and is_namespace_admin(store, principal, record)
    )
    namespace, override = store.visibility(name)
    return RepositoryAccess(
        repository=name,
        actions=sorted(policy.allowed(principal, name)),
        namespace_admin=admin or principal.is_admin,
        public=override if override is not None else bool(namespace and namespace.public),
        visibility="inherit" if override is None else "public" if override else "private",
    )


# A CycloneDX document larger than this is not read.
MAX_SBOM_BYTES = 32 * 1024 * 1024


class SbomPackage(BaseModel):
    name: str
    version: str | None
    type: str | None = Field(description="library, operating-system, ...")
    ecosystem: str | None
    purl: str | None


class SbomView(BaseModel):
    repository: str
    reference: str
    digest: str = Field(description="the image the SBOM describes")
    sbom_digest: str = Field(description="the referrer manifest carrying it")
    format: str | None
    created: str | None
    packages: list[SbomPackage]


def _package(component: Any) -> SbomPackage | None:
    if not isinstance(component, dict) or "name" not in component:
        return None
    properties = component.get("properties")
    ecosystem = None
    if isinstance(properties, list):
        for item in properties:
            if isinstance(item, dict) and item.get("name") == "cargohold:ecosystem":
                ecosystem = str(item.get("value"))
    return SbomPackage(
        name=str(component["name"]),
        version=str(component["version"]) if "version" in component else None,
        type=str(component["type"]) if "type" in component else None,
        ecosystem=ecosystem,
        purl=str(component["purl"]) if "purl" in component else None,
    )


@router.get(
    "/repositories/{name:path}/sbom/{reference}",
    response_model=SbomView,
    summary="The packages of an image's newest CycloneDX SBOM referrer (pull)",
    responses={
        400: error_doc("an invalid repository name, tag or digest"),
        404: error_doc("no such repository or manifest, or no SBOM (SBOM_UNKNOWN)"),
    },
)
def get_sbom(
    request: Request,
    name: Annotated[str, Path(description="the repository, slashes and all: team/app")],
    reference: Annotated[str, Path(description="a tag or a manifest digest")],
    principal: AnyCaller,
    registry: RegistryDep,
) -> SbomView:
    _check(request, principal, name, PULL, f"reading SBOMs of {name}")
    record = registry.manifests.get(name, reference)
    referrers = registry.meta.list_referrers(name, record.digest, CYCLONEDX_JSON)
    if not referrers:
        raise ApiError(404, "SBOM_UNKNOWN", f"{name}@{record.digest} has no SBOM referrer")
    newest = max(
        referrers, key=lambda ref: ((ref.annotations or {}).get(CREATED_ANNOTATION, ""), ref.digest)
    )
    try:
        manifest = json.loads(registry.manifests.get(name, newest.digest).content)
        layer = next(
            item
            for item in manifest.get("layers", [])
            if isinstance(item, dict) and item.get("mediaType") == CYCLONEDX_JSON
        )
        if int(layer.get("size", 0)) > MAX_SBOM_BYTES:
            raise ApiError(413, "SBOM_TOO_LARGE", "the SBOM is too large to show")
        bom = json.loads(b"".join(registry.blobs.get(name, str(layer["digest"])).stream()))
    except (StopIteration, ValueError, KeyError, TypeError, AttributeError, RegistryError):
        raise ApiError(422, "SBOM_INVALID", f"the SBOM {newest.digest} cannot be read") from None
    components = bom.get("components") if isinstance(bom, dict) else None
    packages = [p for p in map(_package, components or []) if p is not None]
    annotations = newest.annotations or {}
    return SbomView(
        repository=name,
        reference=reference,
        digest=record.digest,
        sbom_digest=newest.digest,
        format=annotations.get(FORMAT_ANNOTATION),
        created=annotations.get(CREATED_ANNOTATION),
        packages=sorted(packages, key=lambda p: (p.ecosystem or "", p.name, p.version or "")),
    )


class TagDetail(BaseModel):
    name: str
    digest: str
    media_type: str
    manifest_size: int
    total_size: int | None = Field(
        description="the manifest with its config and layers; an index: with every child "
        "image's; null: unknown"
    )
    platforms: list[str] = Field(description="os/architecture[/variant] of the image(s)")
    pushed_at: datetime = Field(description="when the tag last changed")
    pushed_by: str | None
    pulled_at: datetime | None = Field(description="the latest pull in the last 90 days")
    scan: ScanSummary | None


class TagDetailList(BaseModel):
    tags: list[TagDetail]
    next: str | None = Field(description="pass as `last` for the next page; null: no more")


def _platform_text(platform: Any) -> str | None:
    if not isinstance(platform, dict):
        return None
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    text = "/".join(str(p) for p in parts if p)
    return text or None


class _ImageFacts:
    """Sizes and platforms of manifests, each read once per request."""

    def __init__(self, registry: Any, repository: str) -> None:
        self.registry = registry
        self.repository = repository
        self.cache: dict[str, tuple[int | None, list[str]]] = {}

    def of(self, digest: str, depth: int = 0) -> tuple[int | None, list[str]]:
        if digest in self.cache:
            return self.cache[digest]
        facts: tuple[int | None, list[str]] = (None, [])
        record = self.registry.meta.get_manifest(self.repository, digest)
        if record is not None:
            try:
                document = json.loads(record.content)
            except ValueError:
                document = None
            if isinstance(document, dict):
                facts = self._facts(record.size, document, depth)
        self.cache[digest] = facts
        return facts

    def _facts(
        self, size: int, document: dict[str, Any], depth: int
    ) -> tuple[int | None, list[str]]:
        if isinstance(document.get("manifests"), list):
            total: int | None = size
            platforms: list[str] = []
            for child in document["manifests"]:
                if not isinstance(child, dict) or not isinstance(child.get("digest"), str):
                    continue
                text = _platform_text(child.get("platform"))
                if text and text != "unknown/unknown":
                    platforms.append(text)
                child_size = self.of(child["digest"], depth + 1)[0] if depth < 2 else None
                total = None if total is None or child_size is None else total + child_size
            return total, platforms
        config = _descriptor(document.get("config")) if "config" in document else None
        layers = [_descriptor(item) for item in document.get("layers") or []]
        parts = [d.size for d in ([config] if config else []) + layers]
        total = None if any(p is None for p in parts) else size + sum(p or 0 for p in parts)
        platform = None
        if config is not None and config.digest and (config.size or 0) <= MAX_CONFIG_BYTES:
            try:
                blob = self.registry.blobs.get(self.repository, config.digest)
                platform = _platform_text(json.loads(b"".join(blob.stream())))
            except (RegistryError, ValueError, OSError):
                platform = None
        return total, [platform] if platform else []


@router.get(
    "/repositories/{name:path}/tag-details",
    response_model=TagDetailList,
    summary="Tags with platforms, sizes, who pushed them, last pulls and scans (pull)",
    responses={
        400: error_doc("an invalid repository name"),
        404: error_doc("no such repository"),
    },
)
def tag_details(
    request: Request,
    name: Annotated[str, Path(description="the repository, slashes and all: team/app")],
    principal: AnyCaller,
    registry: RegistryDep,
    store: Store,
    n: Annotated[int, Query(ge=1, le=200, description="at most this many tags")] = 50,
    last: Annotated[
        str | None, Query(max_length=128, description="only tags after this one")
    ] = None,
    q: Annotated[str | None, Query(max_length=128, description="a part of the tag's name")] = None,
) -> TagDetailList:
    _check(request, principal, name, PULL, f"listing the tags of {name}")
    if q:
        # Tag names are short: matching reads the names in pages, not whole records.
        needle = q.lower()
        records = []
        after = last
        while len(records) <= n:
            batch = registry.tags.records(name, 1000, after)
            records.extend(r for r in batch if needle in r.name.lower())
            if len(batch) < 1000:
                break
            after = batch[-1].name
        records = records[: n + 1]
    else:
        records = registry.tags.records(name, n + 1, last)
    page = records[:n]
    scans = ScanResultStore(store.engine).summaries(name, [r.digest for r in page])
    since = datetime.now(UTC) - timedelta(days=90)
    pulls = registry.meta.last_pulls(name.split("/", 1)[0], since).get(name, {})
    facts = _ImageFacts(registry, name)
    tags = []
    for record in page:
        total, platforms = facts.of(record.digest)
        events = registry.meta.tag_history(name, record.name, limit=1)
        times = [pulls.get(record.name), pulls.get(record.digest)]
        scan = scans.get(record.digest)
        tags.append(
            TagDetail(
                name=record.name,
                digest=record.digest,
                media_type=record.media_type,
                manifest_size=record.size,
                total_size=total,
                platforms=platforms,
                pushed_at=record.updated_at,
                pushed_by=events[0].actor if events else None,
                pulled_at=max((t for t in times if t is not None), default=None),
                scan=None if scan is None else ScanSummary.model_validate(scan),
            )
        )
    return TagDetailList(tags=tags, next=page[-1].name if len(records) > n else None)


@router.delete(
    "/repositories/{name:path}/manifests/{reference}",
    status_code=204,
    response_class=Response,
    summary="Delete a manifest, by digest, and every tag that names it (delete)",
    description="The tags' history records the deletion, so they can be rolled back while "
    "the manifest's blobs are kept (garbage collection's grace period). A tag that an "
    "immutable-tag rule protects blocks it (403 DENIED naming the rule).",
    responses={
        400: error_doc("an invalid repository name or digest (a tag is not accepted)"),
        404: error_doc("no such repository or manifest"),
    },
)
def delete_manifest(
    request: Request,
    name: Annotated[str, Path(description="the repository, slashes and all: team/app")],
    reference: Annotated[str, Path(description="the manifest's digest")],
    principal: AnyCaller,
    registry: RegistryDep,
) -> Response:
    _check(request, principal, name, DELETE, f"deleting manifests of {name}")
    if not is_digest_like(reference):
        raise ApiError(400, "DIGEST_INVALID", "give a manifest digest; delete tags on .../tags")
    digest = str(Digest.parse(reference))
    registry.manifests.delete(name, digest, principal.name)
    log_change(request, principal, "manifest_delete", name, digest=digest)
    return Response(status_code=204)

"""/v1/namespaces/{ns}/retention-policies: remove old tags by count, age and pulls.

A policy applies to the tags matching its glob `tag_pattern` (* ? [...]) in every
repository of the namespace, or in its one `repository`. In each repository it keeps a
matching tag that is one of the `keep_last` most recently pushed (tags pushed at the same
moment rank by name, in ASCII order), or that was pushed or pulled within `keep_days` days
(a pull of the tag by name, or of the digest it names, as the audit log recorded it); a
policy has either or both. Tags an immutable-tag rule protects are always kept. Every
other matching tag is removed; when several policies match a tag it goes only if all of
them would remove it, and tags matching no policy are never touched. Removal deletes the
tag only (tag history: via "retention"; audit log: one "retention_delete" per tag); the
manifests it named go with garbage collection later. Policies run on the garbage
collection schedule (gc_interval_minutes), and on demand here: a dry run lists exactly
what a run would remove at that moment.

Anyone who can see the namespace reads its policies; namespace admins change and run them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field, StrictInt, model_validator

from cargohold.auth.audit import AuditStore
from cargohold.core.retention import (
    MAX_KEEP_DAYS,
    MAX_KEEP_LAST,
    PolicyInvalid,
    RetentionService,
)
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    CONFLICT,
    MAX_ID,
    AnyCaller,
    Caller,
    RegistryDep,
    Store,
    check_repository,
    error_doc,
    log_change,
    namespace_admin,
    visible_namespace,
)
from cargohold.http.api.errors import ApiError, not_found
from cargohold.http.api.schemas import Body
from cargohold.storage.meta.base import RetentionPolicy as PolicyRecord

router = APIRouter(
    prefix="/v1/namespaces/{ns}/retention-policies",
    tags=["retention"],
    responses={
        **AUTH_RESPONSES,
        400: error_doc(
            "an invalid namespace, repository, pattern or request body (NAME_INVALID, "
            "TAG_INVALID, INVALID_REQUEST)"
        ),
        404: error_doc("no such namespace (NAME_UNKNOWN), or no such policy"),
    },
)


class RetentionPolicy(BaseModel):
    id: int
    namespace: str
    repository: str | None = Field(description="null: every repository of the namespace")
    tag_pattern: str = Field(description="a glob over tag names (* ? [...])", examples=["v*"])
    keep_last: int | None = Field(description="keep the N most recently pushed matching tags")
    keep_days: int | None = Field(description="keep matching tags pushed or pulled in N days")
    created_by: str | None
    created_at: datetime


class RetentionPolicyList(BaseModel):
    policies: list[RetentionPolicy]


class RetentionPolicyCreate(Body):
    tag_pattern: str = Field(
        min_length=1,
        max_length=1000,
        description="tag characters and the wildcards * ? [...], at most 128 characters",
        examples=["v*", "pr-*", "*"],
    )
    repository: str | None = Field(
        None, max_length=255, description="only this repository of the namespace; null: all"
    )
    keep_last: StrictInt | None = Field(
        None,
        ge=0,
        le=MAX_KEEP_LAST,
        description="keep the N most recently pushed matching tags (0: none by count)",
    )
    keep_days: StrictInt | None = Field(
        None,
        ge=0,
        le=MAX_KEEP_DAYS,
        description="keep matching tags pushed or pulled within N days",
    )

    @model_validator(mode="after")
    def _keeps_something(self) -> RetentionPolicyCreate:
        if self.keep_last is None and self.keep_days is None:
            raise ValueError("give keep_last, keep_days or both")
        return self


class RetentionRun(Body):
    dry_run: bool = Field(False, description="list what would be removed; remove nothing")


class RemovedTag(BaseModel):
    tag: str
    digest: str
    pushed_at: str
    pulled_at: str | None = Field(
        description="the latest pull within the longest keep_days of the namespace's "
        "policies, if any"
    )
    policies: list[int] = Field(description="the policies that match the tag (all remove it)")


class SkippedTag(BaseModel):
    tag: str
    digest: str
    reason: str


class RepositoryRetention(BaseModel):
    removed: list[RemovedTag] = Field(description="removed, or in a dry run would be")
    kept: int = Field(description="matching tags kept")
    skipped: list[SkippedTag] = Field(
        description="changed between planning and removal (pushed again, protected)"
    )


class RetentionReport(BaseModel):
    dry_run: bool
    started_at: str
    finished_at: str
    seconds: float
    policies: int = Field(description="policies applied")
    removed: int
    kept: int
    skipped: int
    repositories: dict[str, RepositoryRetention]


def policy_out(policy: PolicyRecord) -> RetentionPolicy:
    return RetentionPolicy(
        id=policy.id,
        namespace=policy.namespace,
        repository=policy.repository or None,
        tag_pattern=policy.tag_pattern,
        keep_last=policy.keep_last,
        keep_days=policy.keep_days,
        created_by=policy.created_by,
        created_at=policy.created_at,
    )


def _service(registry: RegistryDep, store: Store) -> RetentionService:
    return RetentionService(registry.meta, AuditStore(store.engine))


@router.get(
    "",
    response_model=RetentionPolicyList,
    summary="Retention policies of a namespace (anyone who can see it)",
)
def list_policies(
    ns: str, principal: AnyCaller, store: Store, registry: RegistryDep
) -> RetentionPolicyList:
    visible_namespace(store, principal, ns)
    policies = _service(registry, store).policies(ns)
    return RetentionPolicyList(policies=[policy_out(p) for p in policies])


@router.post(
    "",
    response_model=RetentionPolicy,
    status_code=201,
    summary="Add a retention policy to the namespace or one repository (namespace admins)",
    responses=CONFLICT,
)
def add_policy(
    request: Request,
    ns: str,
    body: RetentionPolicyCreate,
    principal: Caller,
    store: Store,
    registry: RegistryDep,
) -> RetentionPolicy:
    namespace_admin(store, principal, ns)
    if body.repository is not None:
        check_repository(body.repository, ns)
    try:
        policy = _service(registry, store).add_policy(
            ns, body.tag_pattern, body.repository, body.keep_last, body.keep_days, principal.name
        )
    except PolicyInvalid as exc:
        raise ApiError(400, "INVALID_REQUEST", exc.message) from None
    log_change(
        request,
        principal,
        "retention_policy_add",
        policy.repository or ns,
        policy=policy.id,
        pattern=policy.tag_pattern,
        keep_last=policy.keep_last,
        keep_days=policy.keep_days,
    )
    return policy_out(policy)


@router.delete(
    "/{policy_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a retention policy (namespace admins); removed tags stay removed",
)
def remove_policy(
    request: Request,
    ns: str,
    policy_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    principal: Caller,
    store: Store,
    registry: RegistryDep,
) -> Response:
    namespace_admin(store, principal, ns)
    service = _service(registry, store)
    policy = next((found for found in service.policies(ns) if found.id == policy_id), None)
    if policy is None or not service.remove_policy(ns, policy_id):
        raise not_found(f"namespace {ns} has no retention policy {policy_id}")
    log_change(
        request,
        principal,
        "retention_policy_remove",
        policy.repository or ns,
        policy=policy_id,
        pattern=policy.tag_pattern,
    )
    return Response(status_code=204)


# A plain def: FastAPI runs it in a worker thread (a run does blocking database work).
@router.post(
    "/run",
    response_model=RetentionReport,
    summary="Apply the namespace's retention policies now, or list what would go (admins)",
)
def run_policies(
    request: Request,
    ns: str,
    body: RetentionRun,
    principal: Caller,
    store: Store,
    registry: RegistryDep,
) -> Any:
    namespace_admin(store, principal, ns)
    report = _service(registry, store).run(ns, dry_run=body.dry_run, actor=principal.name)
    if not body.dry_run:
        log_change(request, principal, "retention_run", ns, removed=report.removed)
    return report.to_dict()

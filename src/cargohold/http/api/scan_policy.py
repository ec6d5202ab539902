"""/v1/namespaces/{ns}/scan-policy: refuse pulls of vulnerable images, with exceptions.

A namespace has at most one policy: a severity threshold (`min_severity`: critical, high,
medium or low) and `allow_unscanned`. With it, a pull (GET) of an image or index of the
namespace is refused with 403 DENIED when the image's latest scan has a finding at or
above the threshold that the namespace's allow-list does not except ("unknown"
severities count at "low" only), or when it has no scan yet and `allow_unscanned` is
false. Signatures, SBOMs and other artifacts always pass, and so does HEAD. An allow-list
entry names an advisory ID or any alias (a CVE ID, say), in any letter case, and excepts
it in every image of the namespace until `expires_at` (null: until removed); expired
entries are listed with `expired: true` and except nothing. Servers apply a change
within a few seconds (they cache policies briefly).

Anyone who can see the namespace reads its policy and allow-list; namespace admins change
them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from cargohold.errors import NameInvalid
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    AnyCaller,
    Caller,
    Store,
    error_doc,
    log_change,
    namespace_admin,
    visible_namespace,
)
from cargohold.http.api.errors import ApiError, not_found
from cargohold.http.api.schemas import Body
from cargohold.scan.policy import (
    THRESHOLDS,
    AllowEntry,
    ScanPolicyInvalid,
    ScanPolicyStore,
)
from cargohold.scan.policy import ScanPolicy as PolicyRecord

router = APIRouter(
    prefix="/v1/namespaces/{ns}/scan-policy",
    tags=["scan policy"],
    responses={
        **AUTH_RESPONSES,
        400: error_doc("an invalid namespace, severity, vulnerability ID or expiry"),
        404: error_doc("no such namespace (NAME_UNKNOWN), policy or allow-list entry"),
    },
)

Severity = Annotated[
    str,
    Field(
        pattern="^(critical|high|medium|low)$",
        description="refuse images with findings of this severity or worse",
        examples=list(THRESHOLDS),
    ),
]


class ScanPolicy(BaseModel):
    namespace: str
    min_severity: str = Field(examples=list(THRESHOLDS))
    allow_unscanned: bool = Field(description="images with no scan yet may be pulled")
    updated_at: datetime
    updated_by: str | None


class ScanPolicySet(Body):
    min_severity: Severity
    allow_unscanned: bool = Field(
        True, description="let images with no scan result yet through until they are scanned"
    )


class AllowListEntry(BaseModel):
    namespace: str
    vulnerability: str = Field(description="an advisory ID or alias", examples=["CVE-2024-1234"])
    expires_at: datetime | None = Field(description="null: until removed")
    expired: bool = Field(description="an expired entry excepts nothing")
    reason: str | None
    created_at: datetime
    created_by: str | None


class AllowList(BaseModel):
    entries: list[AllowListEntry]


class AllowListAdd(Body):
    vulnerability: str = Field(
        min_length=1,
        max_length=255,
        description="an advisory ID or any alias (a CVE ID...), matched in any letter case",
        examples=["CVE-2024-1234"],
    )
    expires_at: datetime | None = Field(
        None, description="when the exception ends (UTC unless it has an offset); null: never"
    )
    reason: str | None = Field(None, max_length=1000)


def _store(store: Store) -> ScanPolicyStore:
    return ScanPolicyStore(store.engine)


def policy_out(policy: PolicyRecord) -> ScanPolicy:
    return ScanPolicy(
        namespace=policy.namespace,
        min_severity=policy.min_severity,
        allow_unscanned=policy.allow_unscanned,
        updated_at=policy.updated_at,
        updated_by=policy.updated_by,
    )


def entry_out(entry: AllowEntry, now: datetime) -> AllowListEntry:
    return AllowListEntry(**entry.to_dict(now))


def _invalid(exc: ScanPolicyInvalid | NameInvalid) -> ApiError:
    return ApiError(400, "INVALID_REQUEST", exc.message)


@router.get(
    "",
    response_model=ScanPolicy,
    summary="The namespace's scan pull policy (anyone who can see it); 404 when it has none",
)
def get_policy(ns: str, principal: AnyCaller, store: Store) -> ScanPolicy:
    visible_namespace(store, principal, ns)
    policy = _store(store).get(ns)
    if policy is None:
        raise not_found(f"namespace {ns} has no scan policy: every pull is allowed")
    return policy_out(policy)


@router.put(
    "",
    response_model=ScanPolicy,
    summary="Set or replace the namespace's scan pull policy (namespace admins)",
)
def set_policy(
    request: Request, ns: str, body: ScanPolicySet, principal: Caller, store: Store
) -> ScanPolicy:
    namespace_admin(store, principal, ns)
    try:
        policy = _store(store).set(ns, body.min_severity, body.allow_unscanned, principal.name)
    except (ScanPolicyInvalid, NameInvalid) as exc:
        raise _invalid(exc) from None
    log_change(
        request,
        principal,
        "scan_policy_set",
        ns,
        min_severity=policy.min_severity,
        allow_unscanned=policy.allow_unscanned,
    )
    return policy_out(policy)


@router.delete(
    "",
    status_code=204,
    response_class=Response,
    summary="Remove the namespace's scan pull policy (namespace admins); the allow-list stays",
)
def remove_policy(request: Request, ns: str, principal: Caller, store: Store) -> Response:
    namespace_admin(store, principal, ns)
    if not _store(store).remove(ns):
        raise not_found(f"namespace {ns} has no scan policy")
    log_change(request, principal, "scan_policy_remove", ns)
    return Response(status_code=204)


@router.get(
    "/allowlist",
    response_model=AllowList,
    summary="The namespace's exceptions to its scan policy (anyone who can see it)",
)
def list_allowlist(ns: str, principal: AnyCaller, store: Store) -> AllowList:
    visible_namespace(store, principal, ns)
    now = datetime.now(UTC)
    return AllowList(entries=[entry_out(e, now) for e in _store(store).allowlist(ns)])


@router.post(
    "/allowlist",
    response_model=AllowListEntry,
    status_code=201,
    summary="Except a vulnerability, optionally until a time (namespace admins); replaces "
    "an entry for the same ID",
)
def add_allowlist_entry(
    request: Request, ns: str, body: AllowListAdd, principal: Caller, store: Store
) -> AllowListEntry:
    namespace_admin(store, principal, ns)
    try:
        entry = _store(store).allow(
            ns, body.vulnerability, body.expires_at, body.reason, principal.name
        )
    except (ScanPolicyInvalid, NameInvalid) as exc:
        raise _invalid(exc) from None
    log_change(
        request,
        principal,
        "scan_allow_add",
        ns,
        vulnerability=entry.vulnerability,
        expires_at=entry.expires_at.isoformat() if entry.expires_at else None,
        reason=entry.reason,
    )
    return entry_out(entry, datetime.now(UTC))


@router.delete(
    "/allowlist/{vulnerability}",
    status_code=204,
    response_class=Response,
    summary="Remove an exception (namespace admins)",
)
def remove_allowlist_entry(
    request: Request,
    ns: str,
    vulnerability: Annotated[str, Path(min_length=1, max_length=255)],
    principal: Caller,
    store: Store,
) -> Response:
    namespace_admin(store, principal, ns)
    entry = _store(store).disallow(ns, vulnerability)
    if entry is None:
        raise not_found(f"namespace {ns} has no allow-list entry {vulnerability!r}")
    log_change(request, principal, "scan_allow_remove", ns, vulnerability=entry.vulnerability)
    return Response(status_code=204)

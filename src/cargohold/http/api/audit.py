"""/v1/audit: the audit log, newest first, with filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from cargohold.auth.audit import MAX_QUERY, AuditStore
from cargohold.http.api.deps import AUTH_RESPONSES, INVALID, Caller, Store, namespace_admin
from cargohold.http.api.errors import denied
from cargohold.http.api.schemas import AuditEntry

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=AUTH_RESPONSES)


@router.get(
    "",
    response_model=list[AuditEntry],
    summary="Audit events: registry admins see all, namespace admins their namespace",
    responses=INVALID,
)
def list_events(
    principal: Caller,
    store: Store,
    actor: Annotated[str | None, Query(max_length=255)] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    target: Annotated[
        str | None,
        Query(max_length=255, description="a namespace or repository, and all below it"),
    ] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601; UTC if no zone")] = None,
    until: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_QUERY)] = 100,
) -> list[AuditEntry]:
    if not principal.is_admin:
        if target is None:
            raise denied("only registry admins may read the whole log: give ?target=<namespace>")
        namespace_admin(store, principal, target.split("/", 1)[0])
    events = AuditStore(store.engine).query(
        actor=actor,
        action=action,
        target=target,
        since=_utc(since),
        until=_utc(until),
        limit=limit,
    )
    # SQLite hands back naive times (stored as UTC); the schema promises an RFC 3339 zone.
    return [
        AuditEntry.model_validate({**event.as_dict(), "at": _utc(event.at)}) for event in events
    ]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment

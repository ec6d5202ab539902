"""/v1/replication: endpoints (remote registries), rules, runs and their execution log.

Registry admins only. Endpoint secrets (a password or token) are write-only and stored
encrypted; responses say only whether one is set. A run is queued (202) and carried out
by the replication worker of a serving replica; follow it on /executions/{id}.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    CONFLICT,
    Caller,
    Store,
    error_doc,
    log_change,
    require_registry_admin,
)
from cargohold.http.api.errors import ApiError, not_found
from cargohold.http.api.schemas import Body
from cargohold.http.api.webhooks import _settings
from cargohold.replication import ReplicationConflict, ReplicationInvalid, ReplicationStore
from cargohold.replication import secret_box as replication_box
from cargohold.replication.store import STATES

router = APIRouter(
    prefix="/v1/replication",
    tags=["replication"],
    responses={
        **AUTH_RESPONSES,
        400: error_doc("an invalid name, URL, pattern or request body (INVALID_REQUEST)"),
        404: error_doc("no such endpoint, rule or execution (NAME_UNKNOWN)"),
    },
)

# The replication tables' ids are 32-bit: PostgreSQL refuses to even compare a larger one.
_MAX_INT32_ID = 2**31 - 1
RuleId = Annotated[int, Path(ge=1, le=_MAX_INT32_ID)]
ExecutionId = Annotated[int, Path(ge=1, le=_MAX_INT32_ID)]
EndpointName = Annotated[str, Path(max_length=64)]
Direction = Literal["push", "pull"]
Trigger = Literal["event", "schedule", "manual"]


class Endpoint(BaseModel):
    name: str
    url: str
    username: str | None
    has_secret: bool = Field(description="Whether a password or token is stored (never shown).")
    insecure: bool = Field(description="TLS certificates are not verified.")
    created_at: datetime
    created_by: str | None
    updated_at: datetime


class EndpointList(BaseModel):
    endpoints: list[Endpoint]


class EndpointCreate(Body):
    name: str = Field(max_length=64, examples=["dr-site"])
    url: str = Field(max_length=1000, examples=["https://registry.dr.example"])
    username: str | None = Field(None, max_length=255)
    secret: str | None = Field(None, max_length=4000, description="Write-only; stored encrypted.")
    insecure: bool = False


class EndpointUpdate(Body):
    url: str | None = Field(None, max_length=1000)
    username: str | None = Field(None, max_length=255)
    secret: str | None = Field(None, max_length=4000, description="Write-only; null clears it.")
    insecure: bool | None = None


class Rule(BaseModel):
    id: int
    name: str
    direction: Direction
    endpoint: str
    source: str = Field(description="Repository glob: team/app, team/*")
    tags: str = Field(description="Tag glob: *, v*")
    dest_prefix: str | None
    trigger: Trigger
    interval_minutes: int | None
    replicate_deletes: bool
    enabled: bool
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: str | None


class RuleList(BaseModel):
    rules: list[Rule]


class RuleCreate(Body):
    name: str = Field(max_length=64, examples=["to-dr"])
    endpoint: str = Field(max_length=64)
    direction: Direction
    source: str = Field(max_length=255, examples=["team/*"])
    tags: str = Field("*", max_length=255, examples=["v*"])
    dest_prefix: str | None = Field(None, max_length=255, examples=["prod"])
    trigger: Trigger = "manual"
    interval_minutes: int | None = Field(None, ge=1, le=525600)
    replicate_deletes: bool = False
    enabled: bool = True


class RuleUpdate(Body):
    endpoint: str | None = Field(None, max_length=64)
    source: str | None = Field(None, max_length=255)
    tags: str | None = Field(None, max_length=255)
    dest_prefix: str | None = Field(None, max_length=255)
    trigger: Trigger | None = None
    interval_minutes: int | None = Field(None, ge=1, le=525600)
    replicate_deletes: bool | None = None
    enabled: bool | None = None


class Task(BaseModel):
    id: int
    attempt: int
    action: Literal["copy", "delete"]
    source: str
    destination: str
    digest: str | None
    state: str
    manifests: int
    blobs_copied: int
    blobs_skipped: int
    bytes: int
    error: str | None
    finished_at: datetime


class Execution(BaseModel):
    id: int
    rule_id: int
    trigger: str
    scope: dict[str, Any] | None = Field(description="For event runs: what the event named.")
    state: str = Field(description=f"one of {', '.join(STATES)}")
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    images: int
    manifests: int
    blobs_copied: int
    blobs_skipped: int
    blobs_mounted: int
    bytes: int
    deleted: int
    error: str | None


class ExecutionDetail(Execution):
    tasks: list[Task] = Field(description="The execution log, one entry per image or delete.")


class ExecutionList(BaseModel):
    executions: list[Execution]


def _store(request: Request, store: Store) -> ReplicationStore:
    return ReplicationStore(store.engine, replication_box(_settings(request)))


@contextmanager
def _as_api_errors() -> Iterator[None]:
    try:
        yield
    except ReplicationInvalid as exc:
        raise ApiError(400, "INVALID_REQUEST", str(exc)) from None
    except ReplicationConflict as exc:
        raise ApiError(409, "CONFLICT", str(exc)) from None


def _rule(store: ReplicationStore, rule_id: int) -> Any:
    rule = store.rule(rule_id)
    if rule is None:
        raise not_found(f"no replication rule {rule_id}")
    return rule


# -- endpoints
@router.get("/endpoints", response_model=EndpointList, summary="Replication endpoints (admins)")
def list_endpoints(request: Request, principal: Caller, store: Store) -> EndpointList:
    require_registry_admin(principal, "list replication endpoints")
    endpoints = _store(request, store).endpoints()
    return EndpointList(endpoints=[Endpoint.model_validate(e.to_dict()) for e in endpoints])


@router.post(
    "/endpoints",
    response_model=Endpoint,
    status_code=201,
    summary="Add a remote registry to replicate to or from (registry admins)",
    responses=CONFLICT,
)
def add_endpoint(
    request: Request, body: EndpointCreate, principal: Caller, store: Store
) -> Endpoint:
    require_registry_admin(principal, "add replication endpoints")
    with _as_api_errors():
        endpoint = _store(request, store).add_endpoint(
            body.name,
            body.url,
            username=body.username,
            secret=body.secret,
            insecure=body.insecure,
            created_by=principal.name,
        )
    log_change(request, principal, "replication.endpoint.add", body.name, url=endpoint.url)
    return Endpoint.model_validate(endpoint.to_dict())


@router.get("/endpoints/{name}", response_model=Endpoint, summary="One endpoint (admins)")
def get_endpoint(request: Request, name: EndpointName, principal: Caller, store: Store) -> Endpoint:
    require_registry_admin(principal, "see replication endpoints")
    endpoint = _store(request, store).endpoint(name)
    if endpoint is None:
        raise not_found(f"no replication endpoint {name}")
    return Endpoint.model_validate(endpoint.to_dict())


@router.patch("/endpoints/{name}", response_model=Endpoint, summary="Change an endpoint (admins)")
def update_endpoint(
    request: Request, name: EndpointName, body: EndpointUpdate, principal: Caller, store: Store
) -> Endpoint:
    require_registry_admin(principal, "change replication endpoints")
    changes = body.model_dump(exclude_unset=True)
    with _as_api_errors():
        endpoint = _store(request, store).update_endpoint(name, **changes)
    if endpoint is None:
        raise not_found(f"no replication endpoint {name}")
    log_change(request, principal, "replication.endpoint.update", name, changed=sorted(changes))
    return Endpoint.model_validate(endpoint.to_dict())


@router.delete(
    "/endpoints/{name}",
    status_code=204,
    summary="Remove an endpoint no rule uses (admins)",
    responses=CONFLICT,
)
def remove_endpoint(
    request: Request, name: EndpointName, principal: Caller, store: Store
) -> Response:
    require_registry_admin(principal, "remove replication endpoints")
    with _as_api_errors():
        if not _store(request, store).remove_endpoint(name):
            raise not_found(f"no replication endpoint {name}")
    log_change(request, principal, "replication.endpoint.remove", name)
    return Response(status_code=204)


# -- rules
@router.get("/rules", response_model=RuleList, summary="Replication rules (admins)")
def list_rules(request: Request, principal: Caller, store: Store) -> RuleList:
    require_registry_admin(principal, "list replication rules")
    return RuleList(
        rules=[Rule.model_validate(r.to_dict()) for r in _store(request, store).rules()]
    )


@router.post(
    "/rules",
    response_model=Rule,
    status_code=201,
    summary="Add a replication rule (registry admins)",
    responses=CONFLICT,
)
def add_rule(request: Request, body: RuleCreate, principal: Caller, store: Store) -> Rule:
    require_registry_admin(principal, "add replication rules")
    values = body.model_dump()
    name = values.pop("name")
    with _as_api_errors():
        rule = _store(request, store).add_rule(name, **values, created_by=principal.name)
    log_change(
        request,
        principal,
        "replication.rule.add",
        name,
        direction=rule.direction,
        endpoint=rule.endpoint,
        source=rule.source,
    )
    return Rule.model_validate(rule.to_dict())


@router.get("/rules/{rule_id}", response_model=Rule, summary="One replication rule (admins)")
def get_rule(request: Request, rule_id: RuleId, principal: Caller, store: Store) -> Rule:
    require_registry_admin(principal, "see replication rules")
    return Rule.model_validate(_rule(_store(request, store), rule_id).to_dict())


@router.patch("/rules/{rule_id}", response_model=Rule, summary="Change a rule (admins)")
def update_rule(
    request: Request, rule_id: RuleId, body: RuleUpdate, principal: Caller, store: Store
) -> Rule:
    require_registry_admin(principal, "change replication rules")
    changes = body.model_dump(exclude_unset=True)
    for key in ("endpoint", "source", "tags", "trigger"):
        if key in changes and changes[key] is None:
            raise ApiError(400, "INVALID_REQUEST", f"{key} cannot be null")
    with _as_api_errors():
        rule = _store(request, store).update_rule(rule_id, **changes)
    if rule is None:
        raise not_found(f"no replication rule {rule_id}")
    log_change(request, principal, "replication.rule.update", rule.name, changed=sorted(changes))
    return Rule.model_validate(rule.to_dict())


@router.delete("/rules/{rule_id}", status_code=204, summary="Remove a rule and its log (admins)")
def remove_rule(request: Request, rule_id: RuleId, principal: Caller, store: Store) -> Response:
    require_registry_admin(principal, "remove replication rules")
    replication = _store(request, store)
    rule = _rule(replication, rule_id)
    replication.remove_rule(rule_id)
    log_change(request, principal, "replication.rule.remove", rule.name)
    return Response(status_code=204)


@router.post(
    "/rules/{rule_id}/run",
    response_model=Execution,
    status_code=202,
    summary="Run a rule now: queues an execution (admins)",
)
def run_rule(request: Request, rule_id: RuleId, principal: Caller, store: Store) -> Execution:
    require_registry_admin(principal, "run replication rules")
    replication = _store(request, store)
    rule = _rule(replication, rule_id)
    execution = replication.enqueue(rule.id, "manual")
    log_change(request, principal, "replication.rule.run", rule.name, execution=execution.id)
    return Execution.model_validate(execution.to_dict())


@router.get(
    "/rules/{rule_id}/executions",
    response_model=ExecutionList,
    summary="A rule's executions, newest first (admins)",
)
def list_executions(
    request: Request,
    rule_id: RuleId,
    principal: Caller,
    store: Store,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ExecutionList:
    require_registry_admin(principal, "see replication executions")
    replication = _store(request, store)
    _rule(replication, rule_id)
    found = replication.executions(rule_id, limit)
    return ExecutionList(executions=[Execution.model_validate(x.to_dict()) for x in found])


@router.get(
    "/executions/{execution_id}",
    response_model=ExecutionDetail,
    summary="One execution with its log (admins)",
)
def get_execution(
    request: Request, execution_id: ExecutionId, principal: Caller, store: Store
) -> ExecutionDetail:
    require_registry_admin(principal, "see replication executions")
    replication = _store(request, store)
    execution = replication.execution(execution_id)
    if execution is None:
        raise not_found(f"no replication execution {execution_id}")
    tasks = [t.to_dict() for t in replication.tasks(execution_id)]
    return ExecutionDetail.model_validate({**execution.to_dict(), "tasks": tasks})

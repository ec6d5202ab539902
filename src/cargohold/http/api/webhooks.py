"""/v1/namespaces/{ns}/webhooks: HTTP notifications of the namespace's registry events.

A webhook POSTs a signed JSON document (docs/webhooks.md) to its URL for every event of
the namespace it subscribes to: push, tag_created, tag_moved, delete, pull,
scan_completed, quota_exceeded, replication_finished. Failed deliveries are retried with
back-off; each webhook keeps a delivery log with the receiver's status codes.

Namespace admins add, change, remove, test and redeliver; anyone who can see the
namespace lists its webhooks and deliveries. Secrets are write-only: they are never
returned, except a generated one, once, in the answer that created it.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import datetime
from functools import lru_cache
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from cargohold import events as ev
from cargohold.config import Settings, load_settings
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    MAX_ID,
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
from cargohold.webhooks import (
    WebhookSender,
    WebhookStore,
    registry_name,
    secret_box,
)
from cargohold.webhooks.store import QUEUED, SENDING, STATES, Delivery
from cargohold.webhooks.store import Webhook as WebhookRecord

router = APIRouter(
    prefix="/v1/namespaces/{ns}/webhooks",
    tags=["webhooks"],
    responses={
        **AUTH_RESPONSES,
        400: error_doc("an invalid namespace, URL, event type or request body"),
        404: error_doc("no such namespace, webhook or delivery"),
    },
)

WebhookId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID)]
DEFAULT_EVENTS = [t for t in ev.EVENT_TYPES if t != ev.PULL]
MAX_URL = 2000


class Webhook(BaseModel):
    id: int
    namespace: str
    url: str
    events: list[str] = Field(description="the event types delivered")
    enabled: bool
    description: str | None
    created_at: datetime
    created_by: str | None
    updated_at: datetime


class CreatedWebhook(Webhook):
    secret: str | None = Field(
        None,
        description="the generated secret, shown only here, once; null when the request gave one",
    )


class WebhookList(BaseModel):
    webhooks: list[Webhook]


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("url must not carry credentials; use the secret to authenticate")
    return value


def _check_events(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(ev.EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {list(ev.EVENT_TYPES)}")
    if not value:
        raise ValueError("subscribe to at least one event type")
    return [t for t in ev.EVENT_TYPES if t in value]  # documentation order, no repeats


class WebhookCreate(Body):
    url: str = Field(max_length=MAX_URL, examples=["https://ci.example/hook"])
    secret: str | None = Field(
        None,
        min_length=8,
        max_length=500,
        description="signs each delivery (HMAC-SHA256); omitted: one is generated and "
        "returned once",
    )
    events: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EVENTS),
        description=f"event types to deliver, of {list(ev.EVENT_TYPES)}; default: all but pull",
    )
    enabled: bool = True
    description: str | None = Field(None, max_length=1000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        return _check_events(value)


class WebhookUpdate(Body):
    url: str | None = Field(None, max_length=MAX_URL)
    secret: str | None = Field(None, min_length=8, max_length=500)
    events: list[str] | None = None
    enabled: bool | None = None
    description: str | None = Field(None, max_length=1000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_events(value)


class Attempt(BaseModel):
    at: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDelivery(BaseModel):
    id: int
    webhook_id: int
    event_id: int
    event_type: str
    state: str = Field(description="queued | sending | delivered | failed")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None = Field(description="the receiver's last HTTP status")
    last_error: str | None
    response_excerpt: str | None = Field(description="the start of the receiver's answer")
    created_at: datetime
    delivered_at: datetime | None
    duration_ms: int | None
    history: list[Attempt] = Field(description="every attempt, oldest first")


class DeliveryList(BaseModel):
    deliveries: list[WebhookDelivery]


def _settings(request: Request) -> Settings:
    """The serving process's settings (the secrets key file, timeouts): set on the admin
    API by the registry app; else as `serve` hands them to its workers."""
    found = getattr(request.app.state, "settings", None)
    if isinstance(found, Settings):
        return found
    return _environment_settings()


@lru_cache(maxsize=1)
def _environment_settings() -> Settings:
    raw = os.environ.get("CARGOHOLD_RESOLVED_SETTINGS")
    return Settings.model_validate(json.loads(raw)) if raw else load_settings()


def _store(request: Request, store: Store) -> WebhookStore:
    return WebhookStore(store.engine, secret_box(_settings(request)))


def _sender(request: Request, store: Store) -> WebhookSender:
    settings = _settings(request)
    return WebhookSender(
        store.engine,
        secret_box(settings),
        registry=registry_name(settings),
        timeout=settings.webhook_timeout_seconds,
        backoff_seconds=settings.webhook_backoff_seconds,
    )


def webhook_out(record: WebhookRecord) -> Webhook:
    return Webhook(
        id=record.id,
        namespace=record.namespace,
        url=record.url,
        events=record.event_types,
        enabled=record.enabled,
        description=record.description,
        created_at=record.created_at,
        created_by=record.created_by,
        updated_at=record.updated_at,
    )


def delivery_out(record: Delivery) -> WebhookDelivery:
    return WebhookDelivery.model_validate(record.to_dict())


def _webhook(webhooks: WebhookStore, ns: str, webhook_id: int) -> WebhookRecord:
    found = webhooks.get(ns, webhook_id)
    if found is None:
        raise not_found(f"namespace {ns} has no webhook {webhook_id}")
    return found


@router.get("", response_model=WebhookList, summary="Webhooks of a namespace (its readers)")
def list_webhooks(ns: str, principal: AnyCaller, store: Store) -> WebhookList:
    visible_namespace(store, principal, ns)
    return WebhookList(webhooks=[webhook_out(w) for w in WebhookStore(store.engine).list(ns)])


@router.post(
    "",
    response_model=CreatedWebhook,
    status_code=201,
    summary="Add a webhook (namespace admins); a generated secret is shown once",
)
def add_webhook(
    request: Request, ns: str, body: WebhookCreate, principal: Caller, store: Store
) -> CreatedWebhook:
    namespace_admin(store, principal, ns)
    generated = None if body.secret else secrets.token_urlsafe(32)
    record = _store(request, store).create(
        ns,
        body.url,
        body.secret or str(generated),
        body.events,
        enabled=body.enabled,
        description=body.description,
        created_by=principal.name,
    )
    log_change(
        request, principal, "webhook_add", ns, webhook=record.id, url=record.url,
        events=record.event_types, enabled=record.enabled,
    )  # fmt: skip
    return CreatedWebhook(**webhook_out(record).model_dump(), secret=generated)


@router.get("/{webhook_id}", response_model=Webhook, summary="One webhook (its readers)")
def get_webhook(ns: str, webhook_id: WebhookId, principal: AnyCaller, store: Store) -> Webhook:
    visible_namespace(store, principal, ns)
    return webhook_out(_webhook(WebhookStore(store.engine), ns, webhook_id))


@router.patch(
    "/{webhook_id}",
    response_model=Webhook,
    summary="Change a webhook's URL, secret, events, description, or enable/disable it",
)
def update_webhook(
    request: Request,
    ns: str,
    webhook_id: WebhookId,
    body: WebhookUpdate,
    principal: Caller,
    store: Store,
) -> Webhook:
    namespace_admin(store, principal, ns)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "events" in changes:
        changes["event_types"] = changes.pop("events")
    webhooks = _store(request, store)
    _webhook(webhooks, ns, webhook_id)
    record = webhooks.update(ns, webhook_id, **changes)
    if record is None:
        raise not_found(f"namespace {ns} has no webhook {webhook_id}")
    detail = {k: v for k, v in changes.items() if k != "secret"}
    if "secret" in changes:
        detail["secret"] = "changed"
    log_change(request, principal, "webhook_update", ns, webhook=webhook_id, **detail)
    return webhook_out(record)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a webhook and its delivery log (namespace admins)",
)
def remove_webhook(
    request: Request, ns: str, webhook_id: WebhookId, principal: Caller, store: Store
) -> Response:
    namespace_admin(store, principal, ns)
    webhooks = WebhookStore(store.engine)
    record = _webhook(webhooks, ns, webhook_id)
    if not webhooks.delete(ns, webhook_id):
        raise not_found(f"namespace {ns} has no webhook {webhook_id}")
    log_change(request, principal, "webhook_remove", ns, webhook=webhook_id, url=record.url)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    summary="The webhook's delivery log, newest first (its readers)",
)
def list_deliveries(
    ns: str,
    webhook_id: WebhookId,
    principal: AnyCaller,
    store: Store,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    state: Annotated[str | None, Query(description=f"only one of {list(STATES)}")] = None,
) -> DeliveryList:
    visible_namespace(store, principal, ns)
    webhooks = WebhookStore(store.engine)
    _webhook(webhooks, ns, webhook_id)
    if state is not None and state not in STATES:
        raise ApiError(400, "INVALID_REQUEST", f"state must be one of {list(STATES)}")
    found = webhooks.deliveries(webhook_id, limit, state)
    return DeliveryList(deliveries=[delivery_out(d) for d in found])


def _settled(webhooks: WebhookStore, delivery_id: int, wait: float) -> Delivery | None:
    """The delivery once no longer queued or being sent (a background worker may have
    claimed it first), or as it is after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        found = webhooks.delivery(delivery_id)
        if found is None or found.state not in (QUEUED, SENDING):
            return found
        if time.monotonic() > deadline:
            return found
        time.sleep(0.1)


# Plain defs: FastAPI runs them in a worker thread (they wait for the receiver).
@router.post(
    "/{webhook_id}/test",
    response_model=WebhookDelivery,
    summary="Send a ping event now; the delivery with the receiver's status code (admins)",
)
def test_webhook(
    request: Request, ns: str, webhook_id: WebhookId, principal: Caller, store: Store
) -> WebhookDelivery:
    namespace_admin(store, principal, ns)
    sender = _sender(request, store)
    try:
        record = _webhook(sender.store, ns, webhook_id)
        delivery = sender.test(record, actor=principal.name)
    finally:
        sender.close()
    log_change(request, principal, "webhook_test", ns, webhook=webhook_id)
    if delivery is None:  # taken by a background worker: its outcome
        latest = sender.store.deliveries(webhook_id, 1)
        wait = _settings(request).webhook_timeout_seconds + 5
        delivery = _settled(sender.store, latest[0].id, wait)
    assert delivery is not None
    return delivery_out(delivery)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=WebhookDelivery,
    status_code=201,
    summary="Send a delivery's event again now, as a new delivery (namespace admins)",
)
def redeliver(
    request: Request,
    ns: str,
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    principal: Caller,
    store: Store,
) -> WebhookDelivery:
    namespace_admin(store, principal, ns)
    sender = _sender(request, store)
    try:
        _webhook(sender.store, ns, webhook_id)
        original = sender.store.delivery(delivery_id)
        if original is None or original.webhook_id != webhook_id:
            raise not_found(f"webhook {webhook_id} has no delivery {delivery_id}")
        delivery = sender.redeliver(original)
    finally:
        sender.close()
    log_change(
        request, principal, "webhook_redeliver", ns, webhook=webhook_id, delivery=delivery_id
    )
    assert delivery is not None
    return delivery_out(delivery)

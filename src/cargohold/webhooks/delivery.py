"""Turn the event log into webhook deliveries, and send them.

``WebhookDispatcher.dispatch_once`` reads events after the ``webhooks`` cursor, queues
one delivery per enabled webhook of the event's namespace that subscribes to its type,
and moves the cursor, all in one transaction; the cursor only moves if no other replica
moved it meanwhile, so every event is dispatched exactly once. ``WebhookSender`` claims
due deliveries and POSTs them:

    POST <url>
    Content-Type: application/json
    User-Agent: cargohold-webhook/<version>
    X-Cargohold-Event: push
    X-Cargohold-Delivery: 42
    X-Cargohold-Signature-256: sha256=<hex HMAC-SHA256 of the body, keyed by the secret>

A 2xx answer is delivered; anything else (or no answer within the timeout) is retried
after 1, 3, 12, 60 and 180 times ``webhook_backoff_seconds`` (10 s, 30 s, 2 min, 10 min,
30 min by default), and the delivery fails after the sixth attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine

from cargohold import __version__
from cargohold import events as ev
from cargohold.background import start_workers
from cargohold.config import Settings
from cargohold.secretbox import SecretBox
from cargohold.storage.meta.sqlbase import SqlBase, now
from cargohold.webhooks.store import Delivery, Webhook, WebhookStore, delivery_values

log = logging.getLogger(__name__)

CONSUMER = "webhooks"  # this consumer's cursor in event_cursors
BACKOFF_FACTORS = (1, 3, 12, 60, 180)  # times webhook_backoff_seconds, after attempt 1..5
MAX_ATTEMPTS = len(BACKOFF_FACTORS) + 1
EXCERPT_CHARS = 500
BATCH = 200
# On PostgreSQL an event id can become visible after a higher one (transactions commit
# out of order). The dispatcher stops at a gap until the event after it is this old.
GAP_WAIT = timedelta(seconds=5)

SIGNATURE_HEADER = "X-Cargohold-Signature-256"
EVENT_HEADER = "X-Cargohold-Event"
DELIVERY_HEADER = "X-Cargohold-Delivery"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)


def retry_delay(attempts: int, base_seconds: float = 10.0) -> float | None:
    """Seconds to wait after ``attempts`` failed attempts; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return base_seconds * BACKOFF_FACTORS[max(attempts, 1) - 1]


def payload(event: ev.Event, delivery_id: int, registry: str) -> dict[str, Any]:
    """The JSON document POSTed for one delivery of ``event`` (docs/webhooks.md)."""
    document = event.to_dict()
    return {
        "id": delivery_id,
        "event_id": event.id,
        "type": event.type,
        "occurred_at": document["occurred_at"],
        "namespace": event.namespace,
        "repository": event.repository,
        "digest": event.digest,
        "tag": event.tag,
        "media_type": event.media_type,
        "actor": event.actor,
        "data": event.data,
        "registry": registry,
    }


def body_of(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def registry_name(settings: Settings) -> str:
    if settings.webhook_registry_name:
        return settings.webhook_registry_name
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"{host}:{settings.port}"


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.secrets_key_path)


class WebhookDispatcher(SqlBase):
    """Events → deliveries, exactly once per (event, matching webhook)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._log = ev.EventLog(engine)
        self._webhooks = WebhookStore(engine)

    def dispatch_once(self) -> int:
        """Dispatch the next batch of events; how many were read (0: none new)."""
        start = self._log.cursor(CONSUMER)
        events = _contiguous(start, self._log.after(start, BATCH))
        if not events:
            return 0
        hooks = self._webhooks.enabled()
        rows = [
            delivery_values(hook.id, event.id, event.type)
            for event in events
            for hook in matching(hooks, event)
        ]
        with self._write() as conn:
            if not self._log.advance_in(conn, CONSUMER, events[-1].id, expected=start):
                # Another replica dispatched these first (or created the cursor now).
                raise _Raced()
            self._webhooks.enqueue_in(conn, rows)
        return len(events)

    def run(self) -> int:
        """Dispatch until the log is read; how many events."""
        total = 0
        while True:
            try:
                count = self.dispatch_once()
            except _Raced:
                continue
            if not count:
                return total
            total += count


class _Raced(Exception):
    pass


def _contiguous(start: int, events: list[ev.Event]) -> list[ev.Event]:
    """The events up to the first gap in ids whose next event is recent: the missing
    id may belong to a transaction that has not committed yet."""
    expected = start + 1
    for index, event in enumerate(events):
        if event.id != expected and now() - event.occurred_at < GAP_WAIT:
            return events[:index]
        expected = event.id + 1
    return events


def matching(hooks: list[Webhook], event: ev.Event) -> list[Webhook]:
    """The webhooks that get ``event``: enabled, of its namespace, subscribed to its
    type (a ping goes only to the webhook tested, never through here)."""
    if event.type == ev.PING or event.namespace is None:
        return []
    return [h for h in hooks if h.namespace == event.namespace and h.wants(event.type)]


class WebhookSender:
    """Claims due deliveries and POSTs them."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        *,
        registry: str,
        timeout: float = 10.0,
        backoff_seconds: float = 10.0,
        name: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self._store = WebhookStore(engine, box)
        self._log = ev.EventLog(engine)
        self._registry = registry
        self._timeout = timeout
        self._backoff = backoff_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self._client = client or httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": f"cargohold-webhook/{__version__}"},
        )

    def close(self) -> None:
        self._client.close()

    @property
    def store(self) -> WebhookStore:
        return self._store

    def deliver_once(self) -> bool:
        """Claim and send one due delivery; False when none is due."""
        delivery = self._store.claim(self.name, self._lease())
        if delivery is None:
            return False
        self.send(delivery)
        return True

    def _lease(self) -> float:
        return self._timeout * 2 + 5.0  # a POST is over by then, answered or not

    def deliver_now(self, delivery_id: int) -> Delivery | None:
        """Send one queued delivery at once (test deliveries, redeliveries)."""
        delivery = self._store.claim(self.name, self._lease(), delivery_id=delivery_id)
        return None if delivery is None else self.send(delivery)

    def send(self, delivery: Delivery) -> Delivery | None:
        """POST a claimed delivery; the delivery as stored afterwards."""
        webhook = self._store.by_id(delivery.webhook_id)
        event = self._log.get(delivery.event_id)
        if webhook is None:
            return None  # removed meanwhile: its deliveries went with it
        status: int | None = None
        excerpt: str | None = None
        started = time.monotonic()
        if event is None:
            error: str | None = f"event {delivery.event_id} is no longer in the event log"
        else:
            body = body_of(payload(event, delivery.id, self._registry))
            try:
                headers = {
                    "Content-Type": "application/json",
                    EVENT_HEADER: event.type,
                    DELIVERY_HEADER: str(delivery.id),
                    SIGNATURE_HEADER: sign(self._store.secret(webhook.id), body),
                }
                response = self._client.post(webhook.url, content=body, headers=headers)
                status = response.status_code
                excerpt = response.text[:EXCERPT_CHARS] or None
                error = None if 200 <= status < 300 else f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:1000] or type(exc).__name__
            except Exception as exc:  # an unreadable secret, say: retried like the rest
                error = f"{type(exc).__name__}: {exc}"[:1000]
        duration_ms = int((time.monotonic() - started) * 1000)
        retry_in = None
        if event is not None and event.type != ev.PING:  # a test delivery is sent once
            retry_in = retry_delay(delivery.attempts, self._backoff)
        outcome = self._store.record_attempt(
            delivery,
            status_code=status,
            error=error,
            excerpt=excerpt,
            duration_ms=duration_ms,
            retry_in=retry_in,
        )
        if error:
            log.warning(
                "webhook %d delivery %d (%s) attempt %d: %s",
                webhook.id,
                delivery.id,
                delivery.event_type,
                delivery.attempts,
                error,
            )
        return outcome

    def test(self, webhook: Webhook, actor: str | None = None) -> Delivery | None:
        """Record a ping event for ``webhook`` and deliver it now (no retries later)."""
        event_id = self._log.record(
            ev.PING,
            namespace=webhook.namespace,
            actor=actor,
            data={"webhook_id": webhook.id, "zen": "Hello from cargohold."},
        )
        delivery_id = self._store.enqueue(webhook.id, event_id, ev.PING)
        return self.deliver_now(delivery_id)

    def redeliver(self, delivery: Delivery) -> Delivery | None:
        """Queue the delivery's event again, as a new delivery, and send it now."""
        delivery_id = self._store.enqueue(
            delivery.webhook_id, delivery.event_id, delivery.event_type
        )
        return self.deliver_now(delivery_id) or self._store.delivery(delivery_id)


def start_webhook_workers(settings: Settings) -> threading.Event | None:
    """Start ``settings.webhook_workers`` threads that dispatch events and send
    deliveries; set the event to stop them."""

    def opener() -> tuple[Callable[[], bool], Callable[[], None]]:
        from cargohold.storage.meta.sqlbase import create_sql_engine

        engine = create_sql_engine(settings.resolved_database_url, 2)
        sender = WebhookSender(
            engine,
            secret_box(settings),
            registry=registry_name(settings),
            timeout=settings.webhook_timeout_seconds,
            backoff_seconds=settings.webhook_backoff_seconds,
        )
        dispatcher = WebhookDispatcher(engine)

        def step() -> bool:
            dispatcher.run()
            busy = False
            while sender.deliver_once():
                busy = True
            return busy

        def close() -> None:
            sender.close()
            engine.dispose()

        return step, close

    return start_workers(
        "webhooks", settings.webhook_workers, opener, settings.webhook_poll_seconds
    )

"""Webhooks: per-namespace HTTP notifications of registry events (docs/webhooks.md).

The event log (cargohold.events) is the source; ``WebhookDispatcher`` turns events into
deliveries (table ``webhook_deliveries``), ``WebhookSender`` POSTs them, signed with the
webhook's secret, and retries with back-off. The serving process runs both in
``webhook_workers`` threads (``start_webhook_workers``).
"""

from cargohold.webhooks.delivery import (
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    WebhookDispatcher,
    WebhookSender,
    payload,
    registry_name,
    retry_delay,
    secret_box,
    sign,
    start_webhook_workers,
    verify,
)
from cargohold.webhooks.store import Delivery, Webhook, WebhookStore

__all__ = [
    "MAX_ATTEMPTS",
    "SIGNATURE_HEADER",
    "Delivery",
    "Webhook",
    "WebhookDispatcher",
    "WebhookSender",
    "WebhookStore",
    "payload",
    "registry_name",
    "retry_delay",
    "secret_box",
    "sign",
    "start_webhook_workers",
    "verify",
]

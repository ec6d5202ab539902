"""The replication worker: turns events and schedules into executions, and runs them.

Each loop: (1) read the event log after the ``replication`` cursor and queue one
execution per matching push rule with trigger ``event`` (the cursor moves in the same
transaction, only if no other replica moved it: every event is handled once); (2) queue
a run of every scheduled rule that is due; (3) claim due executions (a lease, so a
crashed worker's execution is taken over) and run an attempt. A failed attempt is
retried after 1, 4 and 20 times ``replication_backoff_seconds``; after the fourth the
execution ends failed (or partial). Every end records a ``replication_finished`` event.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from cargohold import events as ev
from cargohold.background import start_workers
from cargohold.config import Settings
from cargohold.core.registry import Registry
from cargohold.replication.client import RemoteRegistry
from cargohold.replication.executor import retry_delay, run_attempt, scope_for
from cargohold.replication.sides import Local, Remote
from cargohold.replication.store import (
    FAILED,
    SUCCEEDED,
    Execution,
    ReplicationStore,
    Rule,
)
from cargohold.secretbox import SecretBox
from cargohold.storage.meta.sqlbase import SqlBase
from cargohold.stores import Stores
from cargohold.webhooks.delivery import _contiguous

log = logging.getLogger(__name__)

CONSUMER = "replication"
BATCH = 200
LEASE_SECONDS = 300.0
ACTOR = "replication"


class _Raced(Exception):
    pass


class EventTrigger(SqlBase):
    """Events -> executions of push rules with trigger ``event``."""

    def __init__(self, engine: Engine, store: ReplicationStore) -> None:
        super().__init__(engine)
        self._log = ev.EventLog(engine)
        self._store = store

    def run(self) -> int:
        total = 0
        while True:
            try:
                count = self.dispatch_once()
            except _Raced:
                continue
            if not count:
                return total
            total += count

    def dispatch_once(self) -> int:
        start = self._log.cursor(CONSUMER)
        rules = [r for r in self._store.rules() if r.enabled and r.trigger == "event"]
        if start == 0 and not rules:
            return 0  # no cursor until the first event rule: old events stay unread
        events = _contiguous(start, self._log.after(start, BATCH))
        if not events:
            return 0
        queued: list[tuple[int, dict[str, Any]]] = []
        for event in events:
            for rule in rules:
                if event.occurred_at < rule.created_at:
                    continue
                scope = scope_for(rule, event)
                if scope is not None and (rule.id, scope) not in queued:
                    queued.append((rule.id, scope))
        with self._write() as conn:
            if not self._log.advance_in(conn, CONSUMER, events[-1].id, expected=start):
                raise _Raced()
            for rule_id, scope in queued:
                self._store.enqueue_in(conn, rule_id, "event", scope)
        return len(events)


class Replicator:
    """Runs executions of this registry's rules."""

    def __init__(
        self,
        engine: Engine,
        registry: Registry,
        box: SecretBox,
        *,
        backoff_seconds: float = 30.0,
        timeout: float = 60.0,
        name: str | None = None,
    ) -> None:
        self.engine = engine
        self.store = ReplicationStore(engine, box)
        self.registry = registry
        self.backoff = backoff_seconds
        self.timeout = timeout
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.events = EventTrigger(engine, self.store)

    def tick(self) -> bool:
        """Queue what events and schedules ask for, then run one due execution; False
        when there was nothing to run."""
        self.events.run()
        for rule in self.store.due_schedules():
            self.store.start_scheduled(rule)
        execution = self.store.claim(self.name, LEASE_SECONDS)
        if execution is None:
            return False
        self.run(execution)
        return True

    def client(self, rule: Rule) -> RemoteRegistry:
        endpoint = self.store.endpoint(rule.endpoint)
        assert endpoint is not None  # rules reference endpoints (foreign key)
        username, secret = self.store.credentials(rule.endpoint)
        return RemoteRegistry(
            endpoint.url, username, secret, insecure=endpoint.insecure, timeout=self.timeout
        )

    def run(self, execution: Execution) -> Execution | None:
        """One attempt of a claimed execution, and its outcome stored."""
        rule = self.store.rule(execution.rule_id)
        if rule is None:
            return None  # removed meanwhile: its executions went with it
        try:
            remote = Remote(self.client(rule))
        except Exception as exc:  # an unreadable secret, say
            return self._end(rule, execution, FAILED, f"{type(exc).__name__}: {exc}")
        local = Local(self.registry, f"{ACTOR}:{rule.name}")
        source, destination = (local, remote) if rule.direction == "push" else (remote, local)

        def progress() -> None:
            self.store.extend_lease(execution.id, self.name, LEASE_SECONDS)

        try:
            outcome, error = run_attempt(self.store, rule, execution, source, destination, progress)
        except Exception as exc:
            log.exception("replication execution %d failed", execution.id)
            outcome, error = FAILED, f"{type(exc).__name__}: {exc}"[:2000]
        finally:
            remote.client.close()
        return self._end(rule, execution, outcome, error)

    def _end(
        self, rule: Rule, execution: Execution, outcome: str, error: str | None
    ) -> Execution | None:
        retry_in = None if outcome == SUCCEEDED else retry_delay(execution.attempts, self.backoff)
        if error:
            log.warning(
                "replication rule %s execution %d attempt %d: %s",
                rule.name,
                execution.id,
                execution.attempts,
                error,
            )
        return self.store.finish(
            execution, outcome, error, retry_in, lambda conn, ended: _announce(conn, rule, ended)
        )


def _announce(conn: Connection, rule: Rule, execution: Execution) -> None:
    scope = execution.scope or {}
    repository = scope.get("repository")
    namespace = None
    if repository is None:
        fixed = rule.source.split("/", 1)[0]
        namespace = None if any(c in fixed for c in "*?[") else fixed
    ev.record_in(
        conn,
        ev.REPLICATION_FINISHED,
        repository,
        namespace=namespace,
        actor=f"{ACTOR}:{rule.name}",
        data={
            "rule": rule.name,
            "rule_id": rule.id,
            "direction": rule.direction,
            "endpoint": rule.endpoint,
            "execution_id": execution.id,
            "trigger": execution.trigger,
            "state": execution.state,
            "attempts": execution.attempts,
            "error": execution.error,
            **{k: getattr(execution, k) for k in _COUNTS},
        },
    )


_COUNTS = (
    "images",
    "manifests",
    "blobs_copied",
    "blobs_skipped",
    "blobs_mounted",
    "bytes",
    "deleted",
)


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.secrets_key_path)


def replicator_for(settings: Settings, stores: Stores) -> Replicator:
    """A Replicator on the stores the settings name (the worker's, or the CLI's)."""
    return Replicator(
        stores.engine,
        Registry(stores.blobs, stores.meta, settings.max_manifest_size),
        secret_box(settings),
        backoff_seconds=settings.replication_backoff_seconds,
        timeout=settings.replication_timeout_seconds,
    )


def start_replication_workers(settings: Settings) -> threading.Event | None:
    """Start ``settings.replication_workers`` threads; set the event to stop them."""

    def opener() -> tuple[Callable[[], bool], Callable[[], None]]:
        from cargohold.stores import open_stores

        stores = open_stores(settings)
        return replicator_for(settings, stores).tick, stores.close

    return start_workers(
        "replication",
        settings.replication_workers,
        opener,
        settings.replication_poll_seconds,
    )

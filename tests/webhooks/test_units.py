"""Signatures, the back-off schedule, dispatching, the delivery queue and secrets at rest,
against a real SQLite database and a real HTTP receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from cargohold import events as ev
from cargohold.secretbox import SecretBox, SecretUnreadable
from cargohold.storage.meta import models as m
from cargohold.storage.meta import schema
from cargohold.storage.meta.base import ChangeOrigin, ManifestRecord
from cargohold.storage.meta.sql import SqlMetadataStore
from cargohold.storage.meta.sqlbase import create_sql_engine
from cargohold.webhooks import (
    MAX_ATTEMPTS,
    WebhookDispatcher,
    WebhookSender,
    WebhookStore,
    retry_delay,
    sign,
    verify,
)

from .receiver import Receiver


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'm.db'}")
    schema.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox(tmp_path / "keys" / "secrets.key")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def test_signature_is_githubs_hmac_sha256_of_the_body() -> None:
    body = b'{"type":"push"}'
    expected = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert sign("k3y", body) == f"sha256={expected}"
    assert verify("k3y", body, f"sha256={expected}")
    assert not verify("other", body, f"sha256={expected}")
    assert not verify("k3y", body + b" ", f"sha256={expected}")


def test_backoff_schedule() -> None:
    assert [retry_delay(n) for n in range(1, 7)] == [10, 30, 120, 600, 1800, None]
    assert MAX_ATTEMPTS == 6
    assert retry_delay(2, base_seconds=0.5) == 1.5


def test_secrets_are_encrypted_at_rest_and_need_the_key(
    engine: Engine, box: SecretBox, tmp_path: Path
) -> None:
    store = WebhookStore(engine, box)
    hook = store.create("team", "http://x.test/", "pa55word", ["push"])
    with engine.connect() as conn:
        stored = conn.execute(select(m.webhooks.c.secret)).scalar_one()
    assert "pa55word" not in stored
    assert store.secret(hook.id) == "pa55word"
    assert (tmp_path / "keys" / "secrets.key").stat().st_mode & 0o777 == 0o600
    # The same key file opens it again; another key does not.
    assert WebhookStore(engine, SecretBox(tmp_path / "keys" / "secrets.key")).secret(hook.id)
    with pytest.raises(SecretUnreadable):
        WebhookStore(engine, SecretBox(tmp_path / "other.key")).secret(hook.id)


def _push(meta: SqlMetadataStore, repository: str, digest: str, tags: list[str]) -> None:
    content = json.dumps({"schemaVersion": 2, "d": digest}).encode()
    record = ManifestRecord(
        digest=digest, media_type="application/vnd.oci.image.manifest.v1+json", content=content
    )
    meta.put_manifest(repository, record, [], [], tags, ChangeOrigin(actor="alice"))


def test_store_records_events_in_the_changes_transaction(engine: Engine) -> None:
    meta = SqlMetadataStore(engine)
    _push(meta, "team/app", "sha256:" + "a" * 64, ["v1"])
    assert ev.EventLog(engine).latest_id() == 0  # record_events is off by default
    meta.record_events = True
    _push(meta, "team/app", "sha256:" + "b" * 64, ["v2"])
    _push(meta, "team/app", "sha256:" + "b" * 64, ["v1"])  # v1 moves to b
    meta.delete_tag("team/app", "v2", ChangeOrigin(actor="bob", via="delete"))
    meta.delete_manifest("team/app", "sha256:" + "a" * 64)
    events = ev.EventLog(engine).after(0, 100)
    got = [(e.type, e.tag, e.digest[-1] if e.digest else None, e.actor) for e in events]
    assert got == [
        ("push", "v2", "b", "alice"),
        ("tag_created", "v2", "b", "alice"),
        ("tag_moved", "v1", "b", "alice"),
        ("delete", "v2", "b", "bob"),
        ("delete", None, "a", None),
    ]
    assert all(e.namespace == "team" and e.repository == "team/app" for e in events)
    assert events[2].data["old_digest"] == "sha256:" + "a" * 64
    assert events[4].data == {"target": "manifest", "tags": [], "via": "delete"}


def test_dispatcher_matches_namespace_type_and_enabled(engine: Engine, box: SecretBox) -> None:
    store = WebhookStore(engine, box)
    push_only = store.create("team", "http://a.test/", "s", ["push"])
    everything = store.create("team", "http://b.test/", "s", list(ev.EVENT_TYPES))
    other_ns = store.create("other", "http://c.test/", "s", list(ev.EVENT_TYPES))
    disabled = store.create("team", "http://d.test/", "s", ["push"], enabled=False)
    log = ev.EventLog(engine)
    log.record(ev.PUSH, "team/app", digest="sha256:1")
    log.record(ev.DELETE, "team/app", digest="sha256:1")
    log.record(ev.PING, namespace="team")
    log.record(ev.PUSH, "teamx/app", digest="sha256:2")  # not a prefix match
    dispatcher = WebhookDispatcher(engine)
    assert dispatcher.run() == 4
    assert dispatcher.run() == 0  # the cursor moved: nothing twice
    assert log.cursor("webhooks") == 4
    assert [d.event_type for d in store.deliveries(push_only.id)] == ["push"]
    assert [d.event_type for d in store.deliveries(everything.id)] == ["delete", "push"]
    assert store.deliveries(other_ns.id) == []
    assert store.deliveries(disabled.id) == []


def test_delivery_signed_retried_and_logged(
    engine: Engine, box: SecretBox, receiver: Receiver
) -> None:
    store = WebhookStore(engine, box)
    hook = store.create("team", receiver.url(), "t0p", ["push"])
    ev.EventLog(engine).record(ev.PUSH, "team/app", digest="sha256:1", tag="v1", actor="al")
    WebhookDispatcher(engine).run()
    sender = WebhookSender(engine, box, registry="reg.test:5000", backoff_seconds=0.01)
    receiver.statuses = [500]
    try:
        assert sender.deliver_once()
        first = store.deliveries(hook.id)[0]
        assert (first.state, first.attempts, first.last_status_code) == ("queued", 1, 500)
        assert first.response_excerpt == "receiver says no"
        while not sender.deliver_once():
            pass
    finally:
        sender.close()
    done = store.deliveries(hook.id)[0]
    assert (done.state, done.attempts, done.last_status_code) == ("delivered", 2, 200)
    assert [h["status_code"] for h in done.history] == [500, 200]
    request = receiver.requests[-1]
    assert request.headers["x-cargohold-event"] == "push"
    assert request.headers["x-cargohold-delivery"] == str(done.id)
    assert request.headers["content-type"] == "application/json"
    assert verify("t0p", request.body, request.headers["x-cargohold-signature-256"])
    body = request.json
    assert body["type"] == "push" and body["tag"] == "v1" and body["actor"] == "al"
    assert body["registry"] == "reg.test:5000" and body["id"] == done.id


def test_gives_up_after_the_last_attempt(engine: Engine, box: SecretBox) -> None:
    store = WebhookStore(engine, box)
    hook = store.create("team", "http://127.0.0.1:9/", "s", ["push"])  # nothing listens
    ev.EventLog(engine).record(ev.PUSH, "team/app")
    WebhookDispatcher(engine).run()
    sender = WebhookSender(engine, box, registry="r", backoff_seconds=0.001, timeout=2)
    try:
        for _ in range(MAX_ATTEMPTS):
            while not sender.deliver_once():
                pass
        assert not sender.deliver_once()
    finally:
        sender.close()
    failed = store.deliveries(hook.id)[0]
    assert failed.state == "failed" and failed.attempts == MAX_ATTEMPTS
    assert failed.last_status_code is None and "ConnectError" in (failed.last_error or "")


def test_claims_are_exclusive_and_leases_expire(engine: Engine, box: SecretBox) -> None:
    store = WebhookStore(engine, box)
    hook = store.create("team", "http://x.test/", "s", ["push"])
    store.enqueue(hook.id, 1, "push")
    first = store.claim("w1", lease_seconds=0.2)
    assert first is not None and store.claim("w2", lease_seconds=0.2) is None
    import time

    time.sleep(0.3)  # w1 died mid-request: its lease runs out
    again = store.claim("w2", lease_seconds=30)
    assert again is not None and again.id == first.id and again.attempts == 2
    # w1's late outcome does not overwrite w2's claim
    late = store.record_attempt(
        first, status_code=200, error=None, excerpt=None, duration_ms=1, retry_in=None
    )
    assert late is None


def test_a_push_over_quota_is_an_event_after_the_rollback(engine: Engine) -> None:
    from cargohold.errors import QuotaExceeded

    meta = SqlMetadataStore(engine)
    meta.record_events = True
    meta.set_quota("team", 100, "root")
    with pytest.raises(QuotaExceeded):
        meta.check_quota("team/app", 1000, "sha256:" + "c" * 64)
    with pytest.raises(QuotaExceeded):
        meta.commit_blob("team/app", "sha256:" + "d" * 64, 1000, lambda: None)
    events = ev.EventLog(engine).after(0, 10)
    assert [(e.type, e.repository, e.digest[-1]) for e in events] == [  # type: ignore[index]
        ("quota_exceeded", "team/app", "c"),
        ("quota_exceeded", "team/app", "d"),
    ]
    assert events[0].data == {"usage": 0, "limit": 100, "needed": 1000}
    assert not meta.blob_size("team/app", "sha256:" + "d" * 64)

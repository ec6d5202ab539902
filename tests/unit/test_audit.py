from __future__ import annotations

import time
from pathlib import Path

from cargohold.auth.audit import AuditEvent, AuditLog, AuditStore, coalesce_pulls
from cargohold.storage.meta import schema
from cargohold.storage.meta.sqlbase import create_sql_engine


def pull(actor: str, digest: str = "sha256:a") -> AuditEvent:
    return AuditEvent(actor=actor, action="pull", target="r", detail={"digest": digest})


def test_identical_pulls_merge_with_a_count_and_order_is_kept() -> None:
    push = AuditEvent(actor="a", action="push", target="r")
    events = [pull("a"), push, pull("a"), pull("b"), pull("a", "sha256:b"), pull("a")]
    merged = coalesce_pulls(events)
    assert [(e.action, e.actor, e.detail) for e in merged] == [
        ("pull", "a", {"digest": "sha256:a", "count": 3}),
        ("push", "a", None),
        ("pull", "b", {"digest": "sha256:a"}),
        ("pull", "a", {"digest": "sha256:b"}),
    ]


def test_buffered_log_reaches_the_store_and_queries_filter(tmp_path: Path) -> None:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'a.db'}")
    schema.upgrade(engine)
    store = AuditStore(engine)
    log = AuditLog(store)
    log.record(AuditEvent(actor="alice", action="push", target="team/app", address="10.0.0.1"))
    log.record(AuditEvent(actor="bob", action="login_failed", target="/token", outcome="failed"))
    log.close()  # flushes what is queued
    assert [e.actor for e in store.query()] == ["bob", "alice"]
    assert [e.action for e in store.query(target="team")] == ["push"]
    assert store.query(actor="alice")[0].address == "10.0.0.1"
    assert store.query(action="login_failed")[0].outcome == "failed"
    assert store.query(since=store.query()[0].at.replace(year=2999)) == []
    started = time.monotonic()
    AuditLog(store).close()  # closing an idle log is prompt
    assert time.monotonic() - started < 5
    engine.dispose()

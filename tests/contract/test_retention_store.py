"""The MetadataStore contract for retention: policies, the planner's queries, removal.

Runs on SQLite, PostgreSQL and PostgreSQL behind the Redis cache (see conftest.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from tests.contract.test_metadata_store import dg, manifest

from cargohold.auth.audit import AuditEvent, AuditStore
from cargohold.core.retention import PolicyInvalid, RetentionService
from cargohold.errors import Conflict, NameInvalid, TagImmutable, TagInvalid
from cargohold.storage.meta import ChangeOrigin, MetadataStore
from cargohold.storage.meta import models as m

RETENTION = ChangeOrigin("janitor", "retention")


def engine_of(store: MetadataStore) -> Engine:
    """The SQL engine under the store (the cached store wraps a SqlMetadataStore)."""
    return getattr(store, "_store", store).engine  # type: ignore[no-any-return]


def set_pushed(store: MetadataStore, repository: str, tag: str, when: datetime) -> None:
    """Pretend the tag was last pushed at `when`."""
    with engine_of(store).begin() as conn:
        repo_id = conn.execute(
            select(m.repositories.c.id).where(m.repositories.c.name == repository)
        ).scalar_one()
        conn.execute(
            update(m.tags)
            .where(m.tags.c.repository_id == repo_id, m.tags.c.name == tag)
            .values(updated_at=when)
        )


def pull(store: MetadataStore, repository: str, reference: str, digest: str, **kw: Any) -> None:
    event = AuditEvent(
        actor=kw.pop("actor", "someone"),
        action=kw.pop("action", "pull"),
        target=repository,
        detail={"reference": reference, "digest": digest, **kw.pop("extra", {})},
        **kw,
    )
    AuditStore(engine_of(store)).add([event])


class Sink:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def add(self, events: Any) -> None:
        self.events.extend(events)


# -- policies
def test_policies_are_added_listed_and_removed(meta_store: MetadataStore) -> None:
    first = meta_store.add_retention_policy("team", "", "v*", 5, None, "alice")
    second = meta_store.add_retention_policy("team", "team/app", "v*", None, 30, "bob")
    third = meta_store.add_retention_policy("other", "", "*", 0, 7, None)
    assert (first.namespace, first.repository, first.tag_pattern) == ("team", "", "v*")
    assert (first.keep_last, first.keep_days, first.created_by) == (5, None, "alice")
    assert (second.keep_last, second.keep_days, second.repository) == (None, 30, "team/app")
    assert first.created_at.tzinfo is not None
    assert abs(first.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert first.id < second.id < third.id
    assert meta_store.retention_policies("team") == [first, second]
    assert meta_store.retention_policies("other") == [third]
    assert meta_store.retention_policies() == [first, second, third]
    assert meta_store.retention_policies("nobody") == []
    # Removing needs the right namespace.
    assert not meta_store.remove_retention_policy("other", first.id)
    assert meta_store.remove_retention_policy("team", first.id)
    assert not meta_store.remove_retention_policy("team", first.id)
    assert meta_store.retention_policies() == [second, third]


def test_a_policy_exists_once_per_namespace_repository_and_pattern(
    meta_store: MetadataStore,
) -> None:
    meta_store.add_retention_policy("team", "", "v*", 5, None, None)
    with pytest.raises(Conflict, match="exists already"):
        meta_store.add_retention_policy("team", "", "v*", 1, 1, None)
    # Another repository, pattern or namespace is another policy.
    meta_store.add_retention_policy("team", "team/app", "v*", 5, None, None)
    meta_store.add_retention_policy("team", "", "v1*", 5, None, None)
    meta_store.add_retention_policy("crew", "", "v*", 5, None, None)
    assert len(meta_store.retention_policies()) == 4


# -- what the planner reads
def test_retention_tags_lists_a_namespace_with_push_times(meta_store: MetadataStore) -> None:
    one, two = manifest("one"), manifest("two")
    meta_store.put_manifest("a_b/app", one, [], [], ["v2", "v1"], RETENTION)
    meta_store.put_manifest("a_b/app", two, [], [], ["latest"], RETENTION)
    meta_store.put_manifest("a_b", one, [], [], ["root"], RETENTION)
    meta_store.put_manifest("a_b/x/y", two, [], [], ["deep"], RETENTION)
    # Not in namespace a_b: LIKE wildcards in the name must not match.
    meta_store.put_manifest("axb/app", one, [], [], ["v1"], RETENTION)
    meta_store.put_manifest("a_bc/app", one, [], [], ["v1"], RETENTION)
    meta_store.put_manifest("a_b/empty", one, [], [], [], RETENTION)
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    set_pushed(meta_store, "a_b/app", "v1", when)
    found = meta_store.retention_tags("a_b")
    assert list(found) == ["a_b", "a_b/app", "a_b/x/y"]
    assert [(t.name, t.digest) for t in found["a_b/app"]] == [
        ("latest", two.digest),
        ("v1", one.digest),
        ("v2", one.digest),
    ]
    times = {t.name: t.updated_at for t in found["a_b/app"]}
    assert times["v1"] == when
    assert abs(times["v2"] - datetime.now(UTC)) < timedelta(minutes=1)
    assert meta_store.retention_tags("nobody") == {}


def test_last_pulls_come_from_the_audit_log(meta_store: MetadataStore) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    pull(meta_store, "team/app", "v1", dg("one"), at=now - timedelta(days=3))
    pull(meta_store, "team/app", "v1", dg("one"), at=now - timedelta(days=1))  # the latest
    pull(meta_store, "team/app", dg("two"), dg("two"), at=now - timedelta(days=2))
    pull(meta_store, "team/app", "v3", dg("three"), at=old)  # before `since`
    pull(meta_store, "team/app", "v4", dg("four"), outcome="failed", at=now)
    pull(meta_store, "team/app", "v5", dg("five"), action="push", at=now)
    pull(meta_store, "team/app", "v6", dg("six"), extra={"count": 7}, at=now)  # coalesced
    pull(meta_store, "team", "root", dg("one"), at=now - timedelta(days=5))
    pull(meta_store, "team_x/app", "v1", dg("one"), at=now)  # another namespace
    pull(meta_store, "teamx/app", "v1", dg("one"), at=now)
    AuditStore(engine_of(meta_store)).add(
        [AuditEvent("someone", "pull", "team/web", detail=None, at=now)]  # no detail: ignored
    )
    pulls = meta_store.last_pulls("team", now - timedelta(days=30))
    assert set(pulls) == {"team/app", "team"}
    app = pulls["team/app"]
    assert set(app) == {"v1", dg("one"), dg("two"), "v6", dg("six")}

    def close(a: datetime, b: datetime) -> bool:
        return abs(a - b) < timedelta(seconds=1)

    assert close(app["v1"], now - timedelta(days=1))
    assert close(app[dg("one")], now - timedelta(days=1))
    assert close(app[dg("two")], now - timedelta(days=2))
    assert app["v6"].tzinfo is not None
    assert set(pulls["team"]) == {"root", dg("one")}
    assert set(meta_store.last_pulls("team_x", now - timedelta(days=1))) == {"team_x/app"}
    assert meta_store.last_pulls("team", now + timedelta(days=1)) == {}


# -- removal
def test_delete_if_unchanged_removes_only_what_was_planned(meta_store: MetadataStore) -> None:
    one, two = manifest("one"), manifest("two")
    meta_store.put_manifest("team/app", one, [], [], ["a", "b", "c"], ChangeOrigin("x"))
    planned = {t.name: t for t in meta_store.retention_tags("team")["team/app"]}
    assert meta_store.get_tagged_manifest("team/app", "a") == one  # cached now
    assert meta_store.delete_tag_if_unchanged(
        "team/app", "a", one.digest, planned["a"].updated_at, RETENTION
    )
    assert meta_store.get_tagged_manifest("team/app", "a") is None
    assert meta_store.get_manifest("team/app", one.digest) == one  # untagged, still there
    event = meta_store.tag_history("team/app", "a")[0]
    assert (event.action, event.old_digest, event.new_digest) == ("deleted", one.digest, None)
    assert (event.via, event.actor) == ("retention", "janitor")
    # Gone already, or another digest, or pushed again since: left alone.
    assert not meta_store.delete_tag_if_unchanged(
        "team/app", "a", one.digest, planned["a"].updated_at, RETENTION
    )
    assert not meta_store.delete_tag_if_unchanged(
        "team/app", "b", two.digest, planned["b"].updated_at, RETENTION
    )
    set_pushed(meta_store, "team/app", "b", planned["b"].updated_at + timedelta(seconds=1))
    assert not meta_store.delete_tag_if_unchanged(
        "team/app", "b", one.digest, planned["b"].updated_at, RETENTION
    )
    assert not meta_store.delete_tag_if_unchanged(
        "team/none", "b", one.digest, planned["b"].updated_at, RETENTION
    )
    assert meta_store.list_tags("team/app", None, None) == ["b", "c"]
    # An immutable tag is refused, as by delete_tag.
    meta_store.add_immutable_rule("team", "", "c", None)
    with pytest.raises(TagImmutable):
        meta_store.delete_tag_if_unchanged(
            "team/app", "c", one.digest, planned["c"].updated_at, RETENTION
        )
    assert meta_store.get_tagged_manifest("team/app", "c") == one
    assert [e.tag for e in meta_store.tag_history("team/app") if e.action == "deleted"] == ["a"]


# -- the service over a real store
def test_a_run_removes_what_the_dry_run_listed(meta_store: MetadataStore) -> None:
    now = datetime.now(UTC)
    for i in range(6):
        meta_store.put_manifest("team/app", manifest(f"m{i}"), [], [], [f"v{i}"], RETENTION)
        set_pushed(meta_store, "team/app", f"v{i}", now - timedelta(days=100 - i))
    meta_store.put_manifest("team/app", manifest("dev"), [], [], ["dev"], RETENTION)
    meta_store.put_manifest("team/web", manifest("w"), [], [], ["v0", "v1"], RETENTION)
    pull(meta_store, "team/app", "v0", dg("m0"), at=now - timedelta(days=2))
    meta_store.add_immutable_rule("team", "team/app", "v1", None)
    sink = Sink()
    service = RetentionService(meta_store, sink)
    policy = service.add_policy("team", "v*", "team/app", 2, 30, "alice")
    dry = service.run("team", dry_run=True, actor="alice")
    assert sink.events == []
    would = {(r, e["tag"]) for r, entry in dry.repositories.items() for e in entry["removed"]}
    assert would == {("team/app", "v2"), ("team/app", "v3")}
    assert (dry.removed, dry.kept, dry.skipped, dry.policies) == (2, 4, 0, 1)
    assert meta_store.list_tags("team/app", None, None) == [
        "dev",
        "v0",
        "v1",
        "v2",
        "v3",
        "v4",
        "v5",
    ]

    real = service.run("team", dry_run=False, actor="alice")
    assert real.repositories == dry.repositories
    assert meta_store.list_tags("team/app", None, None) == ["dev", "v0", "v1", "v4", "v5"]
    assert meta_store.list_tags("team/web", None, None) == ["v0", "v1"]
    assert [(e.action, e.target, e.actor) for e in sink.events] == [
        ("retention_delete", "team/app:v2", "alice"),
        ("retention_delete", "team/app:v3", "alice"),
    ]
    assert sink.events[0].detail == {"digest": dg("m2"), "policies": [policy.id]}
    assert {e.via for e in meta_store.tag_history("team/app") if e.action == "deleted"} == {
        "retention"
    }
    again = service.run(None, dry_run=False, actor="schedule")
    assert again.removed == 0 and again.kept == 4


def test_service_validation(meta_store: MetadataStore) -> None:
    service = RetentionService(meta_store)
    with pytest.raises(NameInvalid):
        service.add_policy("team/app", "*", None, 1, None, None)
    with pytest.raises(NameInvalid):
        service.add_policy("Team", "*", None, 1, None, None)
    with pytest.raises(NameInvalid, match="not in namespace"):
        service.add_policy("team", "*", "other/app", 1, None, None)
    with pytest.raises(TagInvalid):
        service.add_policy("team", "v/*", None, 1, None, None)
    with pytest.raises(PolicyInvalid):
        service.add_policy("team", "*", None, None, None, None)
    with pytest.raises(PolicyInvalid):
        service.add_policy("team", "*", None, -1, None, None)
    made = service.add_policy("team", "*", None, 0, None, "me")
    with pytest.raises(Conflict):
        service.add_policy("team", "*", "", 3, None, "me")
    assert service.policies("team") == [made]
    assert service.remove_policy("team", made.id)
    assert service.policies("team") == []


class Meddling:
    """The store, with someone pushing `b` again and protecting `c` while a run removes."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def delete_tag_if_unchanged(self, repository: str, tag: str, *args: Any) -> bool:
        if tag == "b":
            self._store.put_manifest(repository, manifest("new"), [], [], ["b"], RETENTION)
        if tag == "c":
            self._store.add_immutable_rule("team", "", "c", None)
        return self._store.delete_tag_if_unchanged(repository, tag, *args)


def test_tags_changed_during_a_run_are_skipped(meta_store: MetadataStore) -> None:
    old = datetime.now(UTC) - timedelta(days=10)
    meta_store.put_manifest("team/app", manifest("one"), [], [], ["a", "b", "c"], RETENTION)
    for name in "abc":
        set_pushed(meta_store, "team/app", name, old)
    meta_store.add_retention_policy("team", "", "*", None, 1, None)
    sink = Sink()
    report = RetentionService(Meddling(meta_store), sink).run("team", False, "janitor")  # type: ignore[arg-type]
    entry = report.repositories["team/app"]
    assert [item["tag"] for item in entry["removed"]] == ["a"]
    assert {item["tag"]: item["reason"] for item in entry["skipped"]} == {
        "b": "pushed again or deleted since it was planned",
        "c": "protected by an immutable-tag rule added meanwhile",
    }
    assert (report.removed, report.skipped, report.kept) == (1, 2, 0)
    assert [e.target for e in sink.events] == ["team/app:a"]
    assert meta_store.list_tags("team/app", None, None) == ["b", "c"]
    assert meta_store.get_tagged_manifest("team/app", "b") == manifest("new")

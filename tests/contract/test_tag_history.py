"""The MetadataStore contract for versioning: tag history and immutable-tag rules."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from tests.contract.test_metadata_store import manifest

from cargohold.errors import Conflict, ManifestUnknown, TagImmutable
from cargohold.storage.meta import ChangeOrigin, MetadataStore

ALICE = ChangeOrigin("alice", "push")


def changes(store: MetadataStore, repository: str, tag: str | None = None) -> list[tuple]:
    """History oldest first, as (tag, action, old, new, via, actor)."""
    return [
        (e.tag, e.action, e.old_digest, e.new_digest, e.via, e.actor)
        for e in reversed(store.tag_history(repository, tag))
    ]


def test_every_tag_change_is_recorded(meta_store: MetadataStore) -> None:
    one, two = manifest("one"), manifest("two")
    meta_store.put_manifest("team/app", one, [], [], ["prod"], ALICE)
    meta_store.put_manifest("team/app", one, [], [], ["prod"], ALICE)  # no change: no event
    meta_store.put_manifest("team/app", two, [], [], ["prod", "v2"], ChangeOrigin("bob"))
    meta_store.delete_tag("team/app", "v2", ChangeOrigin("carol", "delete"))
    meta_store.delete_manifest("team/app", two.digest, ChangeOrigin("dave", "delete"))
    assert changes(meta_store, "team/app") == [
        ("prod", "created", None, one.digest, "push", "alice"),
        ("prod", "moved", one.digest, two.digest, "push", "bob"),
        ("v2", "created", None, two.digest, "push", "bob"),
        ("v2", "deleted", two.digest, None, "delete", "carol"),
        ("prod", "deleted", two.digest, None, "delete", "dave"),
    ]
    assert [e[1] for e in changes(meta_store, "team/app", "v2")] == ["created", "deleted"]
    assert meta_store.tag_history("team/other") == []


def test_history_pages_newest_first_and_by_time(meta_store: MetadataStore) -> None:
    records = [manifest(f"m{i}") for i in range(5)]
    for record in records:
        meta_store.put_manifest("r/x", record, [], [], ["t"], ALICE)
    events = meta_store.tag_history("r/x", "t", limit=2)
    assert [e.new_digest for e in events] == [records[4].digest, records[3].digest]
    older = meta_store.tag_history("r/x", "t", before_id=events[-1].id, limit=10)
    assert [e.new_digest for e in older] == [r.digest for r in reversed(records[:3])]
    assert meta_store.tag_event("r/x", events[0].id) == events[0]
    assert meta_store.tag_event("r/other", events[0].id) is None
    now = datetime.now(UTC)
    assert meta_store.tag_history("r/x", "t", at_or_before=now, limit=1)[0] == events[0]
    assert meta_store.tag_history("r/x", "t", at_or_before=now - timedelta(days=1)) == []
    assert all(e.at.tzinfo is not None and abs(e.at - now) < timedelta(minutes=1) for e in events)


def test_tag_manifest_moves_to_a_held_manifest_only(meta_store: MetadataStore) -> None:
    one, two = manifest("one"), manifest("two")
    meta_store.put_manifest("r/x", one, [], [], ["prod"], ALICE)
    meta_store.put_manifest("r/x", two, [], [], ["prod"], ALICE)
    event = meta_store.tag_manifest("r/x", "prod", one.digest, ChangeOrigin("ops", "rollback"))
    assert event is not None
    assert (event.action, event.old_digest, event.new_digest, event.via, event.actor) == (
        "moved",
        two.digest,
        one.digest,
        "rollback",
        "ops",
    )
    assert meta_store.tag_history("r/x", "prod", limit=1)[0] == event
    assert meta_store.get_tagged_manifest("r/x", "prod") == one
    assert meta_store.tag_manifest("r/x", "prod", one.digest, ALICE) is None  # already there
    with pytest.raises(ManifestUnknown):
        meta_store.tag_manifest("r/x", "prod", manifest("never").digest, ALICE)
    with pytest.raises(ManifestUnknown):
        meta_store.tag_manifest("r/none", "prod", one.digest, ALICE)
    record = meta_store.tag_record("r/x", "prod")
    assert record is not None and record.digest == one.digest and record.size == one.size
    assert [r.name for r in meta_store.list_tag_records("r/x", None, None)] == ["prod"]


def test_digests_in_history_name_old_and_new(meta_store: MetadataStore) -> None:
    one, two = manifest("one"), manifest("two")
    meta_store.put_manifest("r/x", one, [], [], ["t"], ALICE)
    meta_store.put_manifest("r/x", two, [], [], ["t"], ALICE)
    since = datetime.now(UTC) - timedelta(hours=1)
    assert meta_store.digests_in_history("r/x", since) == {one.digest, two.digest}
    assert meta_store.digests_in_history("r/x", datetime.now(UTC) + timedelta(hours=1)) == set()


def test_immutable_rules_refuse_moves_and_deletes(meta_store: MetadataStore) -> None:
    one, two = manifest("one"), manifest("two")
    rule = meta_store.add_immutable_rule("team", "", "v*", "admin")
    assert rule.pattern == "v*" and rule.namespace == "team" and rule.created_by == "admin"
    meta_store.put_manifest("team/app", one, [], [], ["v1", "latest"], ALICE)  # creating is fine
    meta_store.put_manifest("team/app", one, [], [], ["v1"], ALICE)  # same digest again: fine
    with pytest.raises(TagImmutable) as caught:
        meta_store.put_manifest("team/app", two, [], [], ["latest", "v1"], ALICE)
    assert f"rule {rule.id}" in caught.value.message and "'v*'" in caught.value.message
    # Nothing of the refused push was stored: not the manifest, not the other tag.
    assert meta_store.get_manifest("team/app", two.digest) is None
    assert meta_store.get_tagged_manifest("team/app", "latest") == one
    with pytest.raises(TagImmutable):
        meta_store.delete_tag("team/app", "v1")
    with pytest.raises(TagImmutable):
        meta_store.delete_manifest("team/app", one.digest)
    meta_store.put_manifest("team/app", two, [], [], [], ALICE)
    with pytest.raises(TagImmutable):
        meta_store.tag_manifest("team/app", "v1", two.digest, ALICE)
    assert meta_store.get_tagged_manifest("team/app", "v1") == one
    assert meta_store.delete_tag("team/app", "latest") is True  # unprotected tags still go
    # Other namespaces are untouched by the rule.
    meta_store.put_manifest("other/app", one, [], [], ["v1"], ALICE)
    meta_store.put_manifest("other/app", two, [], [], ["v1"], ALICE)
    assert meta_store.remove_immutable_rule("team", rule.id) is True
    assert meta_store.remove_immutable_rule("team", rule.id) is False
    meta_store.put_manifest("team/app", two, [], [], ["v1"], ALICE)


def test_repository_rules_and_duplicates(meta_store: MetadataStore) -> None:
    one, two = manifest("one"), manifest("two")
    rule = meta_store.add_immutable_rule("team", "team/app", "release-*", None)
    with pytest.raises(Conflict):
        meta_store.add_immutable_rule("team", "team/app", "release-*", None)
    assert meta_store.immutable_rules("team") == [rule]
    assert meta_store.immutable_rules("other") == []
    assert meta_store.remove_immutable_rule("other", rule.id) is False
    for repository in ("team/app", "team/lib"):
        meta_store.put_manifest(repository, one, [], [], ["release-1"], ALICE)
    meta_store.put_manifest("team/lib", two, [], [], ["release-1"], ALICE)
    with pytest.raises(TagImmutable):
        meta_store.put_manifest("team/app", two, [], [], ["release-1"], ALICE)


def test_concurrent_moves_record_a_consistent_chain(meta_store: MetadataStore) -> None:
    """Each event's old digest is the previous event's new digest, whoever won each race."""
    records = [manifest(f"c{i}") for i in range(8)]
    for record in records:
        meta_store.put_manifest("r/race", record, [], [], [], ALICE)
    barrier = threading.Barrier(len(records))

    def push(record) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        meta_store.put_manifest("r/race", record, [], [], ["prod"], ALICE)

    threads = [threading.Thread(target=push, args=(r,)) for r in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = list(reversed(meta_store.tag_history("r/race", "prod")))
    assert events[0].old_digest is None
    for before, after in itertools.pairwise(events):
        assert after.old_digest == before.new_digest
    current = meta_store.get_tagged_manifest("r/race", "prod")
    assert current is not None and current.digest == events[-1].new_digest

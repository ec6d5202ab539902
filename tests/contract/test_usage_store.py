"""Storage usage and namespace quotas in the metadata store (SQLite, PostgreSQL, cached)."""

from __future__ import annotations

import contextlib
import hashlib
import threading

import pytest

from cargohold.errors import QuotaExceeded
from cargohold.storage.meta import ManifestRecord, MetadataStore
from cargohold.storage.meta.base import UsageRecord

A, B, C, D, E = 100, 200, 400, 800, 1600  # blob sizes: every sum below is unambiguous


def dg(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def manifest(text: str) -> ManifestRecord:
    return ManifestRecord(
        digest=dg(text),
        media_type="application/vnd.oci.image.manifest.v1+json",
        content=text.encode(),
    )


def commit(store: MetadataStore, repository: str, name: str, size: int, log: list[str]) -> None:
    """commit_blob with a store() that only records that it ran."""
    store.commit_blob(repository, dg(name), size, lambda: log.append(f"store {name}"))


def scenario(store: MetadataStore) -> dict[str, ManifestRecord]:
    """team/app and team/web share layer a; team/app and other/app share layer c."""
    for repository, name, size in [
        ("team/app", "a", A),
        ("team/app", "b", B),
        ("team/app", "c", C),
        ("team/web", "a", A),
        ("team/web", "d", D),
        ("other/app", "c", C),
        ("other/app", "e", E),
    ]:
        store.link_blob(repository, dg(name), size)
    # A blob row linked nowhere (awaiting garbage collection) counts nowhere.
    store.link_blob("other/tmp", dg("x"), 12345)
    assert store.unlink_blob("other/tmp", dg("x"))
    records = {key: manifest(f"manifest {key} " + "." * n) for n, key in enumerate("1234")}
    store.put_manifest("team/app", records["1"], [dg("a"), dg("b")], [], ["v1"])
    store.put_manifest("team/app", records["2"], [dg("a"), dg("c")], [], ["v2"])
    store.put_manifest("team/web", records["3"], [dg("a"), dg("d")], [], ["v1"])
    store.put_manifest("other/app", records["4"], [dg("c"), dg("e")], [], ["v1"])
    return records


def test_usage_per_repository_namespace_and_registry(meta_store: MetadataStore) -> None:
    m = {key: record.size for key, record in scenario(meta_store).items()}
    repos = {row.name: row for row in meta_store.repository_usage()}
    assert repos["team/app"] == UsageRecord(
        "team/app",
        logical_bytes=m["1"] + A + B + m["2"] + A + C,
        stored_bytes=A + B + C,
        shared_bytes=A + C,  # a is in team/web, c in other/app
        blobs=3,
        manifests=2,
        repositories=1,
    )
    assert repos["team/web"] == UsageRecord("team/web", m["3"] + A + D, A + D, A, 2, 1, 1)
    assert repos["other/app"] == UsageRecord("other/app", m["4"] + C + E, C + E, C, 2, 1, 1)
    assert repos["other/tmp"] == UsageRecord("other/tmp", 0, 0, 0, 0, 0, 1)
    assert list(repos) == ["other/app", "other/tmp", "team/app", "team/web"]

    spaces = {row.name: row for row in meta_store.namespace_usage()}
    assert spaces["team"] == UsageRecord(
        "team",
        logical_bytes=m["1"] + m["2"] + m["3"] + 3 * A + B + C + D,
        stored_bytes=A + B + C + D,  # a once, though two repositories link it
        shared_bytes=C,  # a is shared only inside the namespace
        blobs=4,
        manifests=3,
        repositories=2,
    )
    assert spaces["other"] == UsageRecord("other", m["4"] + C + E, C + E, C, 2, 1, 2)
    assert meta_store.namespace_usage("team") == [spaces["team"]]
    assert meta_store.repository_usage(namespace="team") == [repos["team/app"], repos["team/web"]]
    assert meta_store.repository_usage(repository="team/web") == [repos["team/web"]]
    assert meta_store.repository_usage(repository="team/nothing") == []
    assert meta_store.namespace_usage("nothing") == []

    assert meta_store.registry_usage() == UsageRecord(
        "",
        logical_bytes=sum(m.values()) + 3 * A + B + 2 * C + D + E,
        stored_bytes=A + B + C + D + E,
        shared_bytes=A + C,  # linked by more than one repository
        blobs=5,
        manifests=4,
        repositories=4,
    )


def test_namespace_membership_is_by_first_component_exactly(meta_store: MetadataStore) -> None:
    meta_store.link_blob("a_b/one", dg("1"), 1)
    meta_store.link_blob("a_b", dg("2"), 2)  # a one-component repository: namespace a_b
    meta_store.link_blob("axb/one", dg("3"), 4)  # '_' must not act as a LIKE wildcard
    meta_store.link_blob("a_bc/one", dg("4"), 8)
    usage = {row.name: row.stored_bytes for row in meta_store.namespace_usage()}
    assert usage == {"a_b": 3, "axb": 4, "a_bc": 8}
    assert [row.stored_bytes for row in meta_store.namespace_usage("a_b")] == [3]
    assert [row.name for row in meta_store.repository_usage(namespace="a_b")] == [
        "a_b",
        "a_b/one",
    ]
    meta_store.set_quota("a_b", 3, None)
    meta_store.check_quota("a_b/two", 0, dg("new"))
    with pytest.raises(QuotaExceeded) as refused:
        meta_store.check_quota("a_b/two", 1, dg("new"))
    assert refused.value.detail == {"namespace": "a_b", "usage": 3, "limit": 3, "needed": 1}


def test_quota_records(meta_store: MetadataStore) -> None:
    assert meta_store.get_quota("team") is None
    assert meta_store.list_quotas() == []
    first = meta_store.set_quota("team", 1000, "alice")
    assert (first.namespace, first.limit_bytes, first.updated_by) == ("team", 1000, "alice")
    changed = meta_store.set_quota("team", 5000, "bob")
    assert (changed.limit_bytes, changed.updated_by) == (5000, "bob")
    assert changed.updated_at >= first.updated_at and changed.updated_at.tzinfo is not None
    meta_store.set_quota("a-team", 2**62, None)
    assert [(q.namespace, q.limit_bytes) for q in meta_store.list_quotas()] == [
        ("a-team", 2**62),
        ("team", 5000),
    ]
    assert meta_store.get_quota("team") == changed
    assert meta_store.remove_quota("team") is True
    assert meta_store.remove_quota("team") is False
    assert meta_store.get_quota("team") is None


def test_commit_over_quota_is_refused_before_storing(meta_store: MetadataStore) -> None:
    log: list[str] = []
    meta_store.set_quota("team", 1000, "admin")
    commit(meta_store, "team/app", "first", 600, log)
    before = meta_store.namespace_usage("team")
    with pytest.raises(QuotaExceeded) as refused:
        commit(meta_store, "team/web", "second", 500, log)
    assert log == ["store first"]  # the refused blob's bytes were never stored
    assert refused.value.detail == {"namespace": "team", "usage": 600, "limit": 1000, "needed": 500}
    message = refused.value.message
    assert "namespace team would use 1.1 KiB of its 1000 B quota (now 600 B)" in message
    assert "garbage collection" in message
    assert meta_store.namespace_usage("team") == before
    assert meta_store.blob_size("team/web", dg("second")) is None
    assert not meta_store.repository_exists("team/web")  # a refused push leaves no repository
    # Exactly up to the limit fits; one byte more does not.
    commit(meta_store, "team/web", "third", 400, log)
    with pytest.raises(QuotaExceeded):
        commit(meta_store, "team/web", "fourth", 1, log)
    assert meta_store.namespace_usage("team")[0].stored_bytes == 1000


def test_a_blob_the_namespace_holds_counts_once(meta_store: MetadataStore) -> None:
    log: list[str] = []
    meta_store.set_quota("team", 1000, None)
    commit(meta_store, "team/app", "layer", 900, log)
    # Pushed again to another repository of the namespace, retagged or mounted within it:
    # no growth, so never refused, even with the namespace full.
    commit(meta_store, "team/web", "layer", 900, log)
    assert meta_store.link_existing_blob("team/third", dg("layer")) is True
    meta_store.set_quota("team", 10, None)  # lowered below usage by an admin
    commit(meta_store, "team/fourth", "layer", 900, log)
    commit(meta_store, "team/fourth", "empty", 0, log)  # adds nothing: never refused
    assert meta_store.namespace_usage("team")[0].stored_bytes == 900
    assert [row.stored_bytes for row in meta_store.repository_usage(namespace="team")] == [900] * 4
    assert meta_store.namespace_usage("team")[0].blobs == 2
    with pytest.raises(QuotaExceeded):
        commit(meta_store, "team/app", "new", 1, log)


def test_a_blob_of_another_namespace_counts_in_each(meta_store: MetadataStore) -> None:
    log: list[str] = []
    commit(meta_store, "other/app", "big", 800, log)
    meta_store.set_quota("team", 1000, None)
    commit(meta_store, "team/app", "small", 300, log)
    with pytest.raises(QuotaExceeded) as refused:
        assert meta_store.link_existing_blob("team/app", dg("big"))  # a mount
    assert refused.value.detail["needed"] == 800
    with pytest.raises(QuotaExceeded):
        commit(meta_store, "team/web", "big", 800, log)
    assert meta_store.blob_size("team/app", dg("big")) is None
    assert not meta_store.repository_exists("team/web")
    assert meta_store.namespace_usage("team")[0].stored_bytes == 300
    meta_store.set_quota("team", 1100, None)
    assert meta_store.link_existing_blob("team/app", dg("big")) is True
    assert meta_store.namespace_usage("team")[0].stored_bytes == 1100
    # Namespaces without a quota are never refused.
    commit(meta_store, "free/app", "huge", 10**12, log)


def test_early_check_without_a_digest(meta_store: MetadataStore) -> None:
    log: list[str] = []
    meta_store.set_quota("team", 1000, None)
    commit(meta_store, "team/app", "layer", 700, log)
    meta_store.check_quota("team/app", 300)
    meta_store.check_quota("team/elsewhere", 700)  # might be the layer: not refused
    meta_store.check_quota("team/app", 700, dg("layer"))
    with pytest.raises(QuotaExceeded):
        meta_store.check_quota("team/app", 701)  # larger than any blob it holds
    with pytest.raises(QuotaExceeded):
        meta_store.check_quota("team/app", 400, dg("new"))
    meta_store.check_quota("other/app", 10**15)


def race(store: MetadataStore, names: list[str], size: int) -> tuple[dict, set, set]:
    """Commit one blob per name at once, each to its own repository of team; (outcome by
    name, names whose store() ran, names whose discard() ran)."""
    inside = threading.Barrier(len(names), timeout=0.5)
    stored: set[str] = set()
    discarded: set[str] = set()
    outcome: dict[str, str] = {}

    def push(name: str, repository: str) -> None:
        def put_bytes() -> None:
            stored.add(name)
            # All inside store() at once where the database lets them (PostgreSQL).
            with contextlib.suppress(threading.BrokenBarrierError):
                inside.wait()

        try:
            store.commit_blob(repository, dg(name), size, put_bytes, lambda: discarded.add(name))
            outcome[name] = "linked"
        except QuotaExceeded:
            outcome[name] = "refused"

    threads = [
        threading.Thread(target=push, args=(name, f"team/repo{i}")) for i, name in enumerate(names)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome, stored, discarded


def test_concurrent_commits_never_exceed_the_quota(meta_store: MetadataStore) -> None:
    """Two commits that each fit alone but not together: one wins, the other is refused,
    and the loser's stored bytes (if it stored any) are discarded."""
    meta_store.set_quota("team", 1000, None)
    for round_number in range(3):
        names = [f"racer-{round_number}-{i}" for i in range(2)]
        outcome, stored, discarded = race(meta_store, names, 600)
        assert sorted(outcome.values()) == ["linked", "refused"], outcome
        winner, loser = sorted(names, key=lambda name: outcome[name])
        assert loser not in stored or loser in discarded
        assert winner not in discarded
        assert meta_store.namespace_usage("team")[0].stored_bytes == 600
        winner_repo, loser_repo = (f"team/repo{names.index(n)}" for n in (winner, loser))
        assert meta_store.blob_size(winner_repo, dg(winner)) == 600
        assert meta_store.blob_size(loser_repo, dg(loser)) is None
        assert meta_store.unlink_blob(winner_repo, dg(winner))  # room for the next round

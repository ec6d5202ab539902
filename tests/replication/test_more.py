"""Pull rules, deletions, a destination that is down, CNCF Distribution as destination,
credentials at rest, and the replication_finished event."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, select
from tests.api.oci import manifest_path, push_artifact, push_image, push_index
from tests.conftest import free_port
from tests.proxy.distribution import Distribution

from cargohold import events as ev
from cargohold.replication.executor import MAX_ATTEMPTS, retry_delay
from cargohold.replication.store import (
    FAILED,
    RETRYING,
    RUNNING,
    SUCCEEDED,
    Execution,
    ReplicationStore,
)
from cargohold.signatures.cosign import signature_tag
from cargohold.storage.meta import models as m
from cargohold.storage.meta import schema
from cargohold.storage.meta.sql import create_sql_engine

from .conftest import Dest, Source, skopeo_copy_by_digest, start_dest, unique_name
from .test_push import MANIFEST_ACCEPT, add_endpoint, remote_manifest


def test_pull_rule_fetches_matching_tags_from_the_remote(source: Source, dest: Dest) -> None:
    ns = unique_name("up")
    with dest.client() as http:
        image = push_image(http, f"{ns}/app", "v1", layers=2)
        sbom = push_artifact(http, f"{ns}/app", image)
        children = [push_image(http, f"{ns}/lib") for _ in range(2)]
        index = push_index(http, f"{ns}/lib", children, "v2")
        push_image(http, f"{ns}/app", "latest")  # not v*
    endpoint = add_endpoint(source, dest)
    rule = source.store.add_rule(
        unique_name("pull-"),
        endpoint=endpoint,
        direction="pull",
        source=f"{ns}/*",
        tags="v*",
        dest_prefix="cache",
        trigger="manual",
    )
    execution = source.wait(source.store.enqueue(rule.id, "manual").id)
    assert execution.state == SUCCEEDED, (execution, source.store.tasks(execution.id))
    assert (execution.images, execution.manifests) == (2, 5)
    got = source.http.get(manifest_path(f"cache/{ns}/app", "v1"), headers=MANIFEST_ACCEPT)
    assert got.status_code == 200 and got.content == image.body
    for digest, data in image.blobs.items():
        assert source.http.get(f"/v2/cache/{ns}/app/blobs/{digest}").content == data
    referrers = source.http.get(f"/v2/cache/{ns}/app/referrers/{image.digest}").json()
    assert [r["digest"] for r in referrers["manifests"]] == [sbom.digest]
    got = source.http.get(manifest_path(f"cache/{ns}/lib", "v2"), headers=MANIFEST_ACCEPT)
    assert got.content == index.body
    missing = source.http.get(manifest_path(f"cache/{ns}/app", "latest"))
    assert missing.status_code == 404

    again = source.wait(source.store.enqueue(rule.id, "manual").id)
    assert (again.state, again.manifests, again.blobs_copied) == (SUCCEEDED, 0, 0), again


def test_deletes_replicate_only_when_the_rule_says_so(source: Source, dest: Dest) -> None:
    ns = unique_name("del")
    endpoint = add_endpoint(source, dest)
    keep = source.store.add_rule(
        unique_name("keep-"),
        endpoint=endpoint,
        direction="push",
        source=f"{ns}/keep",
        trigger="event",
    )
    mirror = source.store.add_rule(
        unique_name("mirror-"),
        endpoint=endpoint,
        direction="push",
        source=f"{ns}/gone",
        trigger="event",
        replicate_deletes=True,
    )
    try:
        image = push_image(source.http, f"{ns}/keep", "v1")
        push_image(source.http, f"{ns}/gone", "v1")
        source.wait_for_executions(keep.id, 1)
        source.wait_for_executions(mirror.id, 1)

        # A signature pushed later follows its image.
        cosign = push_image(source.http, f"{ns}/keep", signature_tag(image.digest))
        source.wait_for_executions(keep.id, 2)
        with dest.client() as http:
            sig = remote_manifest(http, f"{ns}/keep", signature_tag(image.digest))
            assert sig.headers["docker-content-digest"] == cosign.digest

        for repo in ("keep", "gone"):
            assert source.http.delete(manifest_path(f"{ns}/{repo}", "v1")).status_code == 202
        [deleted, *_] = source.wait_for_executions(mirror.id, 2)
        assert (deleted.state, deleted.deleted) == (SUCCEEDED, 1), deleted
        push_image(source.http, f"{ns}/keep", "v2")  # the delete event was read before it
        source.wait_for_executions(keep.id, 3)
        assert len(source.store.executions(keep.id)) == 3  # the delete queued nothing
        with dest.client() as http:
            assert remote_manifest(http, f"{ns}/gone", "v1").status_code == 404
            assert remote_manifest(http, f"{ns}/keep", "v1").status_code == 200
    finally:
        source.store.update_rule(keep.id, enabled=False)
        source.store.update_rule(mirror.id, enabled=False)


def test_a_destination_that_is_down_is_retried_until_it_is_back(
    source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [retry_delay(n, 30) for n in (1, 2, 3, 4)] == [30, 120, 600, None]
    ns = unique_name("down")
    port = free_port()
    push_image(source.http, f"{ns}/app", "v1")
    source.store.add_endpoint(
        "later" + ns, f"http://127.0.0.1:{port}", username="replicator", secret="unknown-yet"
    )
    rule = source.store.add_rule(
        unique_name("down-"),
        endpoint="later" + ns,
        direction="push",
        source=f"{ns}/app",
    )
    execution_id = source.store.enqueue(rule.id, "manual").id
    deadline = time.monotonic() + 20
    while (x := source.store.execution(execution_id)).state != RETRYING or x.attempts < 2:
        assert time.monotonic() < deadline and not x.finished, x
        time.sleep(0.1)
    assert "unreachable" in (x.error or ""), x
    [task, *_] = source.store.tasks(execution_id)
    assert task.state == "failed" and "unreachable" in (task.error or "")

    monkeypatch.setattr("tests.adminapi.conftest.free_port", lambda: port)
    dest = start_dest(tmp_path / "dest")
    try:
        source.store.update_endpoint("later" + ns, secret=dest.password)
        done = source.wait(execution_id, timeout=40)
        assert (done.state, done.attempts, done.images) == (SUCCEEDED, 3, 1), done
        assert done.error is None
        with dest.client() as http:
            assert remote_manifest(http, f"{ns}/app", "v1").status_code == 200
    finally:
        dest.stop()
    rule_now = source.store.rule(rule.id)
    assert rule_now is not None and rule_now.last_status == SUCCEEDED
    finished = [
        e
        for e in ev.EventLog(source.store.engine).after(0, 100000)
        if e.type == ev.REPLICATION_FINISHED and e.data["execution_id"] == execution_id
    ]
    assert len(finished) == 1
    assert finished[0].data["state"] == SUCCEEDED and finished[0].namespace == ns


def test_a_destination_that_stays_down_fails_after_the_last_attempt(source: Source) -> None:
    ns = unique_name("gone")
    push_image(source.http, f"{ns}/app", "v1")
    source.store.add_endpoint(ns, f"http://127.0.0.1:{free_port()}", username="u", secret="p")
    rule = source.store.add_rule(
        unique_name("gone-"), endpoint=ns, direction="push", source=f"{ns}/app"
    )
    execution_id = source.store.enqueue(rule.id, "manual").id
    x = m.replication_executions
    deadline = time.monotonic() + 60
    while not (run := source.store.execution(execution_id)).finished:
        assert time.monotonic() < deadline, run
        if run.state == RETRYING:  # skip the back-off: the next attempt is due now
            with source.store.engine.begin() as conn:
                conn.execute(
                    x.update()
                    .where(x.c.id == execution_id, x.c.state == RETRYING)
                    .values(next_attempt_at=datetime(2000, 1, 1, tzinfo=UTC))
                )
        time.sleep(0.1)
    assert (run.state, run.attempts) == (FAILED, MAX_ATTEMPTS), run
    assert "unreachable" in (run.error or "")
    rule_now = source.store.rule(rule.id)
    assert rule_now is not None and rule_now.last_status == FAILED
    # The event commits in the same transaction as the final state: a reader that
    # sees the one sees the other.
    finished = [
        e
        for e in ev.EventLog(source.store.engine).after(0, 100000)
        if e.type == ev.REPLICATION_FINISHED and e.data["execution_id"] == execution_id
    ]
    assert [e.data["state"] for e in finished] == [FAILED]
    source.store.update_rule(rule.id, enabled=False)


def test_credentials_are_encrypted_at_rest(source: Source) -> None:
    password = "s3cret-" + unique_name("pw")
    name = unique_name("enc-")
    source.store.add_endpoint(name, "https://registry.example", username="u", secret=password)
    with source.store.engine.connect() as conn:
        row = conn.execute(
            select(m.replication_endpoints).where(m.replication_endpoints.c.name == name)
        ).one()
    assert row.secret_encrypted and password not in row.secret_encrypted
    assert password.encode() not in (source.data_dir / "meta.db").read_bytes()
    assert source.store.credentials(name) == ("u", password)
    source.store.remove_endpoint(name)


def test_push_to_cncf_distribution(source: Source, tmp_path: Path) -> None:
    registry = Distribution(tmp_path / "distribution", "pusher", "pw-distribution")
    ns = unique_name("dist")
    try:
        children = [push_image(source.http, f"{ns}/app") for _ in range(2)]
        index = push_index(source.http, f"{ns}/app", children, "v1")
        sbom = push_artifact(source.http, f"{ns}/app", index)
        cosign = push_image(source.http, f"{ns}/app", signature_tag(index.digest))
        source.store.add_endpoint(ns, registry.url, username="pusher", secret="pw-distribution")
        rule = source.store.add_rule(
            unique_name("dist-"),
            endpoint=ns,
            direction="push",
            source=f"{ns}/*",
            trigger="event",
            replicate_deletes=True,
        )
        run = source.wait(source.store.enqueue(rule.id, "manual").id, timeout=90)
        assert (run.state, run.manifests) == (SUCCEEDED, 5), source.store.tasks(run.id)
        auth = ("pusher", "pw-distribution")
        # A client pulls the multi-arch image by digest from Distribution, every platform.
        host = registry.url.removeprefix("http://")
        copied = skopeo_copy_by_digest(host, f"{ns}/app", index.digest, auth, tmp_path / "pulled")
        assert copied == index.digest
        import httpx

        with httpx.Client(base_url=registry.url, auth=auth, timeout=30) as http:
            got = http.get(manifest_path(f"{ns}/app", "v1"), headers=MANIFEST_ACCEPT)
            assert got.status_code == 200 and got.content == index.body
            for child in children:
                assert (
                    http.get(
                        manifest_path(f"{ns}/app", child.digest), headers=MANIFEST_ACCEPT
                    ).content
                    == child.body
                )
            assert (
                http.get(manifest_path(f"{ns}/app", sbom.digest), headers=MANIFEST_ACCEPT).content
                == sbom.body
            )
            signature = http.get(
                manifest_path(f"{ns}/app", signature_tag(index.digest)), headers=MANIFEST_ACCEPT
            )
            assert signature.content == cosign.body
            again = source.wait(source.store.enqueue(rule.id, "manual").id)
            assert (again.state, again.manifests, again.blobs_copied) == (SUCCEEDED, 0, 0)

            # Distribution deletes by digest only: the tag goes with its manifest.
            assert source.http.delete(manifest_path(f"{ns}/app", "v1")).status_code == 202
            source.wait_for_executions(rule.id, 3)
            [latest, *_] = source.store.executions(rule.id)
            assert (latest.state, latest.deleted) == (SUCCEEDED, 1), source.store.tasks(latest.id)
            assert (
                http.get(manifest_path(f"{ns}/app", "v1"), headers=MANIFEST_ACCEPT).status_code
                == 404
            )
        source.store.update_rule(rule.id, enabled=False)
    finally:
        registry.stop()


def test_scheduled_rule_runs_when_due_and_moves_on(source: Source, dest: Dest) -> None:
    ns = unique_name("sched")
    image = push_image(source.http, f"{ns}/app", "v1")
    endpoint = add_endpoint(source, dest)
    rule = source.store.add_rule(
        unique_name("every-"),
        endpoint=endpoint,
        direction="push",
        source=f"{ns}/app",
        trigger="schedule",
        interval_minutes=60,
    )
    try:
        [run] = source.wait_for_executions(rule.id, 1)
        assert (run.trigger, run.state, run.images) == ("schedule", SUCCEEDED, 1), run
        after = source.store.rule(rule.id)
        assert after is not None and after.next_run_at is not None
        assert after.next_run_at - rule.created_at >= timedelta(minutes=59)
        assert after.last_status == SUCCEEDED
        time.sleep(1.5)  # a few polls: not due again
        assert len(source.store.executions(rule.id)) == 1
        with dest.client() as http:
            assert remote_manifest(http, f"{ns}/app", "v1").content == image.body
    finally:
        source.store.update_rule(rule.id, enabled=False)


def test_the_finished_event_commits_with_the_final_state(tmp_path: Path) -> None:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    schema.upgrade(engine)
    store = ReplicationStore(engine)
    store.add_endpoint("remote", "https://registry.example")
    rule = store.add_rule("rule", endpoint="remote", direction="push", source="team/app")
    queued = store.enqueue(rule.id, "manual")
    running = store.claim("worker-1", 60)
    assert running is not None and running.id == queued.id

    def crash(conn: Connection, ended: Execution) -> None:
        raise RuntimeError("the process died while recording the event")

    with pytest.raises(RuntimeError):
        store.finish(running, FAILED, "gone", None, crash)
    # Neither the final state nor the event: the next worker's claim runs it again.
    assert store.execution(queued.id).state == RUNNING  # type: ignore[union-attr]
    assert ev.EventLog(engine).after(0) == []

    def announce(conn: Connection, ended: Execution) -> None:
        ev.record_in(conn, ev.REPLICATION_FINISHED, data={"state": ended.state})

    ended = store.finish(running, FAILED, "gone", None, announce)
    assert ended is not None and ended.state == FAILED
    assert [e.data["state"] for e in ev.EventLog(engine).after(0)] == [FAILED]
    engine.dispose()

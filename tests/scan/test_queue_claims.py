"""The scan queue on SQLite and PostgreSQL: concurrent workers claim every job exactly
once, leases expire, and finished jobs are purged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.conftest import scratch_postgres_database

from cargohold.scan.queue import MANUAL, PUSH, ScanQueue
from cargohold.storage.meta import schema
from cargohold.storage.meta.sqlbase import create_sql_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
        schema.upgrade(engine)
        yield engine
        engine.dispose()
        return
    with scratch_postgres_database() as url:
        engine = create_sql_engine(url)
        schema.upgrade(engine)
        yield engine
        engine.dispose()


def test_concurrent_workers_claim_each_job_once(engine: Engine):
    queue = ScanQueue(engine)
    ids = {queue.enqueue("team/app", f"sha256:{n:064x}", MANUAL) for n in range(60)}
    claimed: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (job := queue.claim(name, lease_seconds=60)) is not None:
            assert queue.finish(job)
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claimed) == sorted(ids)
    stats = queue.stats()
    assert stats.counts == {"queued": 0, "running": 0, "done": 60, "failed": 0}
    assert stats.oldest_queued_seconds is None


def test_an_expired_lease_is_claimed_again_and_finished_jobs_are_purged(engine: Engine):
    queue = ScanQueue(engine)
    queue.enqueue("team/app", "sha256:" + "a" * 64)
    first = queue.claim("gone", lease_seconds=0.1)
    assert first is not None
    assert queue.claim("other", lease_seconds=60) is None
    assert queue.stats().counts["running"] == 1
    time.sleep(0.2)
    second = queue.claim("other", lease_seconds=60)
    assert second is not None and second.id == first.id and second.attempts == 2
    assert queue.finish(first) is False  # the lease moved on
    assert queue.retry_later(first, "late", 0) is False
    assert queue.finish(second, "broken image") is True
    [job] = queue.jobs()
    assert (job["state"], job["error"], job["worker"]) == ("failed", "broken image", "other")
    assert queue.purge_finished(timedelta(hours=1)) == 0
    assert queue.purge_finished(timedelta(0)) == 1
    assert queue.jobs() == []


def test_scans_wait_while_pushes_go_on_but_not_beyond_the_longest_delay(engine: Engine):
    queue = ScanQueue(engine)
    assert not queue.pushes_settling(quiet_seconds=5, max_delay_seconds=60)  # empty queue
    queue.enqueue("team/app", "sha256:" + "b" * 64, MANUAL)
    assert not queue.pushes_settling(quiet_seconds=5, max_delay_seconds=60)  # not a push
    queue.enqueue("team/app", "sha256:" + "c" * 64, PUSH)
    assert queue.pushes_settling(quiet_seconds=5, max_delay_seconds=60)
    time.sleep(0.3)
    assert not queue.pushes_settling(quiet_seconds=0.2, max_delay_seconds=60)  # pushes paused
    queue.enqueue("team/app", "sha256:" + "d" * 64, PUSH)
    # Pushes go on, but the first push's scan has waited long enough.
    assert not queue.pushes_settling(quiet_seconds=5, max_delay_seconds=0.2)
    assert queue.pushes_settling(quiet_seconds=5, max_delay_seconds=60)

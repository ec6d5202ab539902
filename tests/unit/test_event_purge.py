"""The event log keeps what a consumer has not read, and what is recent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cargohold.events import EventLog
from cargohold.storage.meta import models as m
from cargohold.storage.meta import schema
from cargohold.storage.meta.sqlbase import create_sql_engine


def test_only_old_events_every_consumer_has_read_are_purged(tmp_path: Path):
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    schema.upgrade(engine)
    log = EventLog(engine)
    ids = [log.record("push", "team/app", digest=f"sha256:{n:064x}") for n in range(6)]
    assert log.purge(timedelta(0)) == 0  # no consumer yet: all kept for the first one
    with engine.begin() as conn:  # the first four are old
        conn.execute(
            m.events.update()
            .where(m.events.c.id <= ids[3])
            .values(occurred_at=datetime(2000, 1, 1, tzinfo=UTC))
        )
    log.advance("webhooks", ids[4])
    log.advance("replication", ids[1])
    assert log.purge(timedelta(days=7)) == 2  # read by both and old: ids 0 and 1
    log.advance("replication", ids[5])
    assert log.purge(timedelta(days=7)) == 2  # ids 2 and 3; 4 and 5 are recent
    assert [e.id for e in log.after(0)] == ids[4:]
    engine.dispose()

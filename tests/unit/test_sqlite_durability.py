"""SQLite group commit: a durable write is flushed to disk before it returns, outside the
write lock; a write marked not durable (upload sessions) is not flushed at all."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cargohold.storage.meta import SqlMetadataStore, UploadRecord, schema, sqlbase
from cargohold.storage.meta.sql import create_sql_engine


def test_durable_writes_flush_the_log_and_session_rows_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "meta.db"
    engine = create_sql_engine(f"sqlite:///{database}")
    schema.upgrade(engine)
    meta = SqlMetadataStore(engine)
    flushed: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(sqlbase.os, "fsync", recording_fsync)
    wal = str(database) + "-wal"
    try:
        meta.create_upload(UploadRecord("u1", "team/app", "sha256", datetime.now(UTC)))
        assert flushed == []  # a session row: a power cut may lose it, the client retries
        meta.commit_blob("team/app", "sha256:" + "a" * 64, 3, lambda: None, None, "u1")
        assert flushed == [wal]
        assert meta.get_upload("u1") is None  # ended in the commit's transaction
        with engine.connect() as conn:
            # The connection is back in the durable mode every other user of it expects.
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        meta.close()

"""SQLite group commit: a durable write is flushed to disk before it returns, outside the
write lock; a write marked not durable (upload sessions) is not flushed at all. Transaction
control runs on sqlite3 directly; statements are prepared once."""

from __future__ import annotations

import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, literal, select
from sqlalchemy.exc import OperationalError

from cargohold.errors import StorageUnavailable
from cargohold.storage.failures import FULL_MESSAGE, log_failure, storage_failure
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


def test_a_locked_database_fails_as_sqlalchemy_reports_it(tmp_path: Path) -> None:
    """Transaction control goes straight to sqlite3; its errors still come out as
    SQLAlchemy's, which storage/failures.py maps to a clear "database unavailable"."""
    database = tmp_path / "meta.db"
    engine = create_sql_engine(f"sqlite:///{database}")
    schema.upgrade(engine)

    @event.listens_for(engine, "connect")
    def _impatient(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=50")  # after the engine's 30 s

    engine.dispose()  # connections opened from now on wait 50 ms for a lock
    meta = SqlMetadataStore(engine)
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError) as raised:
            meta.create_upload(UploadRecord("u1", "team/app", "sha256", datetime.now(UTC)))
        failure = storage_failure(raised.value)
        assert isinstance(failure, StorageUnavailable)
        assert failure.detail == {"store": "database"}
        holder.execute("ROLLBACK")
        meta.create_upload(UploadRecord("u1", "team/app", "sha256", datetime.now(UTC)))
        assert meta.get_upload("u1") is not None  # nothing was left half-done
    finally:
        holder.close()
        meta.close()


def test_a_prepared_statement_is_built_once_per_store(tmp_path: Path) -> None:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    schema.upgrade(engine)
    meta = SqlMetadataStore(engine)
    built: list[str] = []

    def build() -> Any:
        built.append("once")
        return select(literal(1))

    try:
        first = meta._prepared("probe", build)
        assert meta._prepared("probe", build) is first
        assert built == ["once"]
        # Two different uploads read through the one kept statement.
        for upload_id in ("u1", "u2"):
            record = UploadRecord(upload_id, f"team/{upload_id}", "sha256", datetime.now(UTC))
            meta.create_upload(record)
        assert meta.get_upload("u1").repository == "team/u1"  # type: ignore[union-attr]
        assert meta.get_upload("u2").repository == "team/u2"  # type: ignore[union-attr]
        assert meta.get_upload("u3") is None
    finally:
        meta.close()


def test_a_background_task_on_a_full_disk_logs_a_warning_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The daily usage sampler and scheduled GC run beside serving: a full disk is the
    operator's to fix and is said in one line; anything unexpected keeps its traceback."""
    logger = logging.getLogger("cargohold.test.background")
    full = OperationalError("COMMIT", None, sqlite3.OperationalError("database or disk is full"))
    with caplog.at_level(logging.WARNING, logger=logger.name):
        log_failure(logger, full, "sampling %s failed", "usage")
        log_failure(logger, ValueError("a bug"), "sampling %s failed", "usage")
    warning, error = caplog.records
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    assert warning.getMessage() == f"sampling usage failed: {FULL_MESSAGE}"
    assert error.levelno == logging.ERROR and error.exc_info is not None
    assert error.getMessage() == "sampling usage failed"

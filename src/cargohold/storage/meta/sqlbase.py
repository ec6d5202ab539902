"""What every SQL-backed store shares: the engine, transactions, dialect-aware inserts.

SQLite write transactions start with BEGIN IMMEDIATE so that concurrent writers from
several worker processes queue on the busy timeout instead of failing on lock upgrade.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import OperationalError

from cargohold.cache_only import require_io

# FULL: an acknowledged push survives power loss, not only a process crash.
SQLITE_SYNCHRONOUS = "FULL"


def now() -> datetime:
    return datetime.now(UTC)


def create_sql_engine(url: str, pool_size: int = 16) -> Engine:
    """An engine for `url`; `pool_size` connections are kept open per process.

    Connections beyond the pool (up to as many again) are opened for bursts and closed
    afterwards; a pool smaller than the request concurrency pays a connection setup on
    every query of a burst.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=pool_size)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


def _sqlite_control(conn: Connection, statement: str) -> None:
    """A transaction-control statement, straight to sqlite3: SQLAlchemy's execution
    path costs ~20 µs a statement, and a write transaction runs four of these. Errors
    come out as SQLAlchemy's, as from any other statement (storage/failures.py)."""
    try:
        conn.connection.dbapi_connection.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise OperationalError(statement, None, exc) from exc


class SqlBase:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._wal = _wal_path(engine) if self._sqlite else None
        self._statements: dict[str, Any] = {}

    def _prepared(self, key: str, build: Callable[[], Any]) -> Any:
        """The statement `build` makes (with bindparam()s), built once per store.

        On the hot paths (pushes, pulls) building a statement and computing its cache
        key cost SQLAlchemy twice as much as running it on SQLite (45 µs against 14); a
        statement kept and executed with parameters pays only the run."""
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
        return statement

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[Connection]:
        """A write transaction; once the block ends it is durable (`durable=False`: only
        safe from a crash of the process, for rows a power cut may lose harmlessly, such
        as upload sessions, whose client then starts over)."""
        require_io()
        if not self._sqlite:
            with self._engine.connect() as conn, conn.begin():
                if not durable:
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield conn
            return
        with self._engine.connect() as conn:
            # Group commit: SQLite's lock is held while the transaction is written to the
            # log, not while the log is flushed to disk. The flush below makes it (and
            # every transaction logged before it) durable, and concurrent flushes share
            # the disk's work; the order of writes in the log is unchanged.
            relaxed = self._wal is not None or not durable
            if relaxed:
                _sqlite_control(conn, "PRAGMA synchronous=NORMAL")
            try:
                _sqlite_control(conn, "BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    _sqlite_control(conn, "ROLLBACK")
                    raise
                _sqlite_control(conn, "COMMIT")
            finally:
                if relaxed:
                    _sqlite_control(conn, f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        if durable and self._wal is not None:
            _flush(self._wal)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        require_io()
        with self._engine.connect() as conn:
            yield conn

    def _claim_due(
        self,
        table: Any,
        due: Callable[[datetime], Any],
        order_by: Sequence[Any],
        leased: Callable[[datetime], dict[str, Any]],
    ) -> int | None:
        """Lease the first row of ``table`` that is ``due(now)`` (in ``order_by`` order),
        setting ``leased(now)`` on it; its id, or None when no row is due.

        Work queues (scans, webhook deliveries, replications) share this: a conditional
        UPDATE decides between workers on any number of replicas, so no lock is held
        while a candidate is chosen; a worker that loses the race tries the next one."""
        for _ in range(5):
            at = now()
            condition = due(at)
            with self._read() as conn:
                row = conn.execute(
                    select(table.c.id).where(condition).order_by(*order_by).limit(1)
                ).first()
            if row is None:
                return None
            with self._write() as conn:
                taken = conn.execute(
                    update(table).where(table.c.id == row.id, condition).values(**leased(at))
                ).rowcount
            if taken:
                return int(row.id)
        return None

    def _ascii(self, column: Any) -> Any:
        """The column compared and sorted byte by byte (the spec's "ASCIIbetical" order).

        SQLite compares bytes already; PostgreSQL follows the database's locale unless told.
        """
        return column if self._sqlite else column.collate("C")

    def _insert(self, table: Any) -> Any:
        if self._sqlite:
            return sqlite.insert(table)
        # Imported here: PostgreSQL's dialect (with its async drivers) costs a command
        # on SQLite a tenth of its start.
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)


def _wal_path(engine: Engine) -> str | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + "-wal"


def _flush(path: str) -> None:
    """fsync SQLite's write-ahead log, opened anew: SQLite may have replaced the file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # checkpointed and removed: the checkpoint synced the database itself
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

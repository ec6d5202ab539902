"""The Alembic migrations build exactly the tables models.py declares."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from tests.conftest import scratch_postgres_database

from cargohold.storage.meta import schema
from cargohold.storage.meta.models import metadata
from cargohold.storage.meta.sql import create_sql_engine


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_match_models(tmp_path: Path, backend: str) -> None:
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'm.db'}"
            if backend == "sqlite"
            else stack.enter_context(scratch_postgres_database())
        )
        engine = create_sql_engine(url)
        _check_migrations_match(engine)


def _check_migrations_match(engine: Engine) -> None:
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'm.db'}")
    schema.upgrade(engine)
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    engine.dispose()


def test_head_constant_is_alembics_head_and_is_current_reads_it(tmp_path: Path) -> None:
    # A new migration must move schema.HEAD too, or every command would run Alembic.
    assert schema.head_revision() == schema.HEAD
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        assert not schema.is_current(engine)  # empty database
        schema.upgrade(engine)
        assert schema.is_current(engine)
        assert schema.current_revision(engine) == schema.HEAD
    finally:
        engine.dispose()

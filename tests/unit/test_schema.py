"""The Alembic migrations build exactly the tables models.py declares."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from cargohold.storage.meta import schema
from cargohold.storage.meta.models import metadata
from cargohold.storage.meta.sql import create_sql_engine


def test_migrations_match_models(tmp_path: Path) -> None:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'm.db'}")
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

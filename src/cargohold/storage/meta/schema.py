"""Schema migrations: apply them, and tell whether a database is up to date."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision (tests/unit/test_schema.py checks it against Alembic's
# head): a command on a current database then skips importing Alembic (~0.1 s).
HEAD = "0015_ui_sessions_usage_samples"


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_current(engine: Engine) -> bool:
    """Whether the database is at HEAD, read without Alembic."""
    try:
        with engine.connect() as conn:
            stored = [
                row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))
            ]
    except DBAPIError:
        return False  # no alembic_version table: an empty database
    return stored == [HEAD]


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is there already."""
    if is_current(engine):
        return
    from alembic import command

    config = _config()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # The engine runs in autocommit mode; let Alembic manage its own transaction.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.commit()

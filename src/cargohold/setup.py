"""First-run preparation shared by `serve` and the admin commands (no server imports).

It migrates the schema, creates the token signing key, bootstraps the first admin from
the configuration, and refuses an open registry where that would be unsafe.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from cargohold.auth.store import AuthStore
from cargohold.config import Settings
from cargohold.errors import NameInvalid
from cargohold.reference import validate_name
from cargohold.storage.meta import schema
from cargohold.storage.meta.sqlbase import create_sql_engine

log = logging.getLogger("cargohold")


class UnsafeStart(Exception):
    """Starting would expose an open registry; the message says how to proceed."""


def prepare_storage(settings: Settings) -> int:
    """Create the data folder, migrate the schema and the signing key; count the users."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_sql_engine(settings.resolved_database_url)
    try:
        if engine.dialect.name == "sqlite":
            schema.upgrade(engine)  # the embedded default migrates itself
        else:
            require_current_schema(engine)
        store = AuthStore(engine)
        users = store.user_count()
        if not users and settings.admin_user and settings.admin_password:
            bootstrap_admin(store, settings.admin_user, settings.admin_password.get_secret_value())
            users = 1
    finally:
        engine.dispose()
    if not any(settings.keys_dir.glob("*.pem")):
        from cargohold.auth.tokens import create_key  # JWT and its crypto: only if needed

        create_key(settings.keys_dir)  # before the workers start, so they share one key
    return users


def require_current_schema(engine: Engine) -> None:
    """Shared databases are migrated on purpose, once, so replicas never race a migration."""
    if schema.is_current(engine):
        return
    current, head = schema.current_revision(engine), schema.head_revision()
    if current != head:
        raise UnsafeStart(
            f"the database schema is at {current or 'nothing (empty database)'}, this "
            f"cargohold needs {head}: run `cargohold db upgrade` once, then start the servers"
        )


def bootstrap_admin(store: AuthStore, name: str, password: str) -> None:
    """Create the first admin from the configuration (never from a built-in default)."""
    try:
        validate_name(name)
    except NameInvalid:
        raise UnsafeStart(f"admin_user {name!r} is not a valid user name") from None
    if "/" in name or len(password) < 8:
        raise UnsafeStart("admin_user must be one name and admin_password 8+ characters")
    from cargohold.auth.secrets import hash_password

    store.add_user(name, hash_password(password), is_admin=True)
    log.warning("created the first admin %r from the configuration", name)


def check_open_mode(settings: Settings, users: int) -> None:
    if users:
        return
    loopback = settings.host in ("127.0.0.1", "::1", "localhost") or settings.host.startswith(
        "127."
    )
    if not loopback and not settings.open_registry:
        raise UnsafeStart(
            f"no users exist, so anyone reaching {settings.host} could push and delete. "
            "Create an admin first (`cargohold user add NAME --admin`), or set "
            "open_registry: true (CARGOHOLD_OPEN_REGISTRY=true) to run open on purpose."
        )
    log.warning(
        "WARNING: no users exist: the registry is OPEN, anyone who can reach %s:%d may "
        "push, pull and delete. Add an admin with `cargohold user add NAME --admin`.",
        settings.host,
        settings.port,
    )

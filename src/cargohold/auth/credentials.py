"""Making robot secrets and personal access tokens: one path for the CLI and the API.

The secret is returned once, to be shown to the caller; only its hash is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cargohold.auth.secrets import TOKEN_PREFIX, hash_secret, new_secret
from cargohold.auth.store import AuthStore
from cargohold.storage.meta.sqlbase import now


@dataclass(frozen=True, slots=True)
class NewCredential:
    secret: str
    created_at: datetime
    expires_at: datetime | None


def _lifetime(days: int | None) -> tuple[datetime, datetime | None]:
    created = now()
    return created, created + timedelta(days=days) if days else None


def create_robot(
    store: AuthStore,
    namespace: str,
    name: str,
    actions: Iterable[str],
    repositories: Iterable[str],
    expires_in_days: int | None,
) -> NewCredential:
    secret = new_secret()
    created, expires = _lifetime(expires_in_days)
    store.add_robot(namespace, name, hash_secret(secret), set(actions), set(repositories), expires)
    return NewCredential(secret, created, expires)


def create_token(
    store: AuthStore, user: str, name: str, expires_in_days: int | None
) -> NewCredential:
    token = new_secret(TOKEN_PREFIX)
    created, expires = _lifetime(expires_in_days)
    store.add_token(user, name, hash_secret(token), expires)
    return NewCredential(token, created, expires)

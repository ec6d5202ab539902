"""Access decisions: which actions a principal may take on a repository."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from cargohold.auth.principal import Principal
from cargohold.auth.roles import ALL_ACTIONS, PULL, ROLE_ACTIONS
from cargohold.auth.store import AuthStore

T = TypeVar("T")

# Grants changed by the CLI or API reach every worker within this many seconds.
CACHE_SECONDS = 2.0


class TtlCache:
    """A small per-process cache; entries expire so changes elsewhere show up quickly."""

    def __init__(self, seconds: float = CACHE_SECONDS, size: int = 4096) -> None:
        self._seconds = seconds
        self._size = size
        self._entries: dict[object, tuple[float, object]] = {}

    def get(self, key: object, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]  # type: ignore[return-value]
        value = compute()
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (now + self._seconds, value)
        return value


class AccessPolicy:
    def __init__(self, store: AuthStore, anonymous_pull: bool) -> None:
        self._store = store
        self._anonymous_pull = anonymous_pull
        self._cache = TtlCache()

    def enforced(self) -> bool:
        """Access control applies once any user exists; before that the registry is open."""
        return self._cache.get("enforced", lambda: self._store.user_count() > 0)

    def allowed(self, principal: Principal, repository: str) -> frozenset[str]:
        return self._cache.get((principal, repository), lambda: self._decide(principal, repository))

    def _decide(self, principal: Principal, repository: str) -> frozenset[str]:
        if principal.is_admin:
            return ALL_ACTIONS
        namespace, override = self._store.visibility(repository)
        public = override if override is not None else bool(namespace and namespace.public)
        actions: set[str] = set()
        if public and (principal.authenticated or self._anonymous_pull):
            actions.add(PULL)
        if namespace is None:
            return frozenset(actions)
        if principal.kind == "robot":
            in_scope = principal.robot_namespace == namespace.name and (
                not principal.robot_repositories or repository in principal.robot_repositories
            )
            if in_scope:
                actions |= principal.robot_actions
        elif principal.kind == "user" and principal.user_id is not None:
            if namespace.kind == "user" and namespace.name == principal.name:
                return ALL_ACTIONS
            for role in self._store.roles(principal.user_id, namespace.id, repository):
                actions |= ROLE_ACTIONS[role]
        return frozenset(actions)

"""Turn credentials (passwords, personal access tokens, robot secrets) into principals."""

from __future__ import annotations

import hashlib

from cargohold.auth.policy import TtlCache
from cargohold.auth.principal import Principal, parse_robot_username
from cargohold.auth.secrets import TOKEN_PREFIX, secret_matches, verify_password
from cargohold.auth.store import AuthStore, is_live

# argon2 is slow on purpose and clients send basic credentials on every request, so a
# checked password is remembered briefly (by a hash of the pair, never in clear). A changed
# password or a disabled user takes effect within this time. Robot secrets and access
# tokens are cheap to check and are checked every time, so revoking them is immediate.
VERIFIED_SECONDS = 30.0


class Authenticator:
    def __init__(self, store: AuthStore) -> None:
        self._store = store
        self._verified = TtlCache(VERIFIED_SECONDS)

    def login(self, username: str, password: str) -> Principal | None:
        """The principal these credentials prove, or None when they prove nothing."""
        robot = parse_robot_username(username)
        if robot is not None:
            return self._robot(robot[0], robot[1], password)
        if password.startswith(TOKEN_PREFIX):
            return self._access_token(username, password)
        key = hashlib.sha256(f"{username}\0{password}".encode()).digest()
        return self._verified.get(key, lambda: self._password(username, password))

    def _password(self, username: str, password: str) -> Principal | None:
        user = self._store.get_user(username)
        if not verify_password(user.password_hash if user else None, password):
            return None
        if user is None or user.disabled:
            return None
        return Principal("user", user.name, user_id=user.id, is_admin=user.is_admin)

    def _access_token(self, username: str, token: str) -> Principal | None:
        user = self._store.get_user(username)
        if user is None or user.disabled:
            return None
        if not any(secret_matches(t.secret_hash, token) for t in self._store.live_tokens(user.id)):
            return None
        return Principal("user", user.name, user_id=user.id, is_admin=user.is_admin)

    def _robot(self, namespace: str, name: str, secret: str) -> Principal | None:
        record = self._store.get_robot(namespace, name)
        if record is None or record.revoked or not is_live(record.expires_at):
            return None
        if not secret_matches(record.secret_hash, secret):
            return None
        return Principal(
            "robot",
            f"robot${namespace}+{name}",
            robot_namespace=namespace,
            robot_actions=record.actions,
            robot_repositories=record.repositories,
        )

    def resolve(self, subject: str) -> Principal | None:
        """The current principal behind a token's subject (None if gone or disabled)."""
        robot = parse_robot_username(subject)
        if robot is not None:
            record = self._store.get_robot(*robot)
            if record is None or record.revoked or not is_live(record.expires_at):
                return None
            return Principal(
                "robot",
                subject,
                robot_namespace=robot[0],
                robot_actions=record.actions,
                robot_repositories=record.repositories,
            )
        user = self._store.get_user(subject)
        if user is None or user.disabled:
            return None
        return Principal("user", user.name, user_id=user.id, is_admin=user.is_admin)

"""Passwords (argon2id) and generated secrets (robots, personal access tokens).

Generated secrets carry 256 bits of entropy, so a SHA-256 of them is as safe to store as
a slow hash and far cheaper to check on every request; passwords chosen by people get
argon2id.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "chp_"
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # Verified against when a user does not exist, so a miss costs as much as a wrong password.
    return _hasher.hash("cargohold-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        matched = _hasher.verify(password_hash or _dummy_hash(), password)
        return matched and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, hash_secret(secret))

"""Signed bearer tokens (JWT, ES256) per the Docker token authentication spec.

Keys live as PEM files in one folder; the newest signs, every one verifies. To rotate
without downtime, add a new key file (`cargohold keys rotate`): tokens signed by the old
key stay valid until they expire, and the old file can be removed after the token TTL.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "cargohold"
ALGORITHM = "ES256"
REFRESH_TTL = 30 * 24 * 3600
_RELOAD_SECONDS = 5.0
_VERIFIED_CACHE = 10_000


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Access:
    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: str


def _kid(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b32encode(hashlib.sha256(der).digest()[:15]).decode().lower()


def create_key(keys_dir: Path) -> str:
    """Write a new signing key; it signs from now on. Returns its key id."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    kid = _kid(key.public_key())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temp = keys_dir / f".{kid}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(temp, keys_dir / f"{kid}.pem")
    return kid


class TokenService:
    def __init__(self, keys_dir: Path, service: str, ttl: int) -> None:
        self.service = service
        self.ttl = ttl
        self._dir = keys_dir
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._signing_kid = ""
        self._loaded_at = 0.0
        # Clients reuse a token for many requests: remember what verified, until it expires.
        self._verified: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        files = sorted(self._dir.glob("*.pem"), key=lambda p: (p.stat().st_mtime, p.name))
        if not files:
            create_key(self._dir)
            files = sorted(self._dir.glob("*.pem"))
        keys = {}
        for path in files:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(key, ec.EllipticCurvePrivateKey):
                keys[path.stem] = key
        self._keys = keys
        self._signing_kid = files[-1].stem
        self._loaded_at = time.monotonic()

    def _key_for(self, kid: str) -> ec.EllipticCurvePublicKey:
        if kid not in self._keys and time.monotonic() - self._loaded_at > _RELOAD_SECONDS:
            self._load()  # another process may have rotated keys
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("token signed by an unknown key")
        return key.public_key()

    def _sign(self, claims: dict[str, Any]) -> str:
        if time.monotonic() - self._loaded_at > _RELOAD_SECONDS:
            self._load()
        return jwt.encode(
            claims,
            self._keys[self._signing_kid],
            algorithm=ALGORITHM,
            headers={"kid": self._signing_kid},
        )

    def issue(self, subject: str, access: list[Access]) -> IssuedToken:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.ttl,
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [a.claim() for a in access],
        }
        issued_at = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return IssuedToken(self._sign(claims), self.ttl, issued_at)

    def issue_refresh(self, subject: str) -> str:
        now = int(time.time())
        return self._sign(
            {
                "iss": ISSUER,
                "sub": subject,
                "aud": f"{self.service}/refresh",
                "exp": now + REFRESH_TTL,
                "iat": now,
                "jti": uuid.uuid4().hex,
            }
        )

    def verify(self, token: str, refresh: bool = False) -> dict[str, Any]:
        """The token's claims, or InvalidToken when it is forged, expired or misdirected."""
        if not refresh:
            claims = self._verified.get(token)
            if claims is not None and claims["exp"] > time.time():
                return claims
        claims = self._verify(token, refresh)
        if not refresh:
            if len(self._verified) >= _VERIFIED_CACHE:
                self._verified.clear()
            self._verified[token] = claims
        return claims

    def _verify(self, token: str, refresh: bool) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise InvalidToken("unsupported token algorithm")
            key = self._key_for(str(header.get("kid", "")))
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=f"{self.service}/refresh" if refresh else self.service,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if not isinstance(claims.get("sub"), str):
            raise InvalidToken("token has no subject")
        return claims


def granted_actions(claims: dict[str, Any], resource_type: str, name: str) -> set[str]:
    """Actions a verified token grants on one resource."""
    actions: set[str] = set()
    for entry in claims.get("access") or []:
        if (
            isinstance(entry, dict)
            and entry.get("type") == resource_type
            and entry.get("name") == name
            and isinstance(entry.get("actions"), list)
        ):
            actions.update(a for a in entry["actions"] if isinstance(a, str))
    return actions

"""Upstream passwords at rest: Fernet with a key file next to the token signing keys.

A minimal local use of cryptography.fernet; cargohold.secretbox (being written for the
webhooks' secrets) can replace it later, reading the same key file is not required since
only this module decrypts what it encrypted.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "proxy-secrets.key"


class SecretBox:
    def __init__(self, keys_dir: Path) -> None:
        self._path = keys_dir / KEY_FILE
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is None:
            if not self._path.exists():
                self._path.parent.mkdir(parents=True, exist_ok=True)
                key = Fernet.generate_key()
                tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(key)
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, self._path)  # first writer wins; others read its key
                tmp.unlink()
            self._fernet = Fernet(self._path.read_bytes().strip())
        return self._fernet

    def encrypt(self, secret: str) -> str:
        return self._key().encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._key().decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError(
                f"an upstream password cannot be decrypted with {self._path}; set it again"
            ) from None

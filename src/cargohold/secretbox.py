"""Secrets kept encrypted at rest, yet recoverable: webhook signing secrets, and later
replication credentials.

A hash would not do: signing a webhook payload (HMAC-SHA256) needs the secret itself.
So the database holds Fernet tokens (AES-128-CBC with HMAC-SHA256, from `cryptography`),
and the key lives in a file next to the token signing keys (``keys_dir/secrets.key``,
mode 0600, or ``secrets_key_file``), never in the database: a copy of the database alone
reveals no secret. Replicas must share the key file, as they share the signing keys.

    box = SecretBox(Path("data/keys/secrets.key"))   # created on first use
    sealed = box.seal("s3cr3t")                       # store this
    box.open(sealed)                                  # "s3cr3t"
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["SecretBox", "SecretUnreadable"]


class SecretUnreadable(Exception):
    """A sealed secret that this key cannot open (the key file was replaced)."""


class SecretBox:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet = Fernet(_load_or_create(key_file))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            raise SecretUnreadable(
                f"a stored secret cannot be decrypted with {self.key_file}; was the key "
                "file replaced? Set the secret again."
            ) from None


def _load_or_create(key_file: Path) -> bytes:
    try:
        return key_file.read_bytes().strip()
    except FileNotFoundError:
        pass
    key_file.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own for every caller: threads of one process start at once too (the
    # replication and webhook workers), and a per-process name let one unlink the other's.
    fd, temp_name = tempfile.mkstemp(dir=key_file.parent, prefix=f".{key_file.name}.")
    temp = Path(temp_name)
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key())
    try:
        # Several processes may start at once: the first link wins, the rest read it.
        os.link(temp, key_file)
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)
    return key_file.read_bytes().strip()

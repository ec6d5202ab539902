"""Upstream passwords at rest, sealed with the registry's secret box (cargohold.secretbox:
Fernet, the key in `secrets_key_file`, default keys_dir/secrets.key, shared with webhook
and replication secrets). Opened lazily: the key file is created on first use only."""

from __future__ import annotations

from pathlib import Path

from cargohold import secretbox


class SecretBox:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._box: secretbox.SecretBox | None = None

    def _opened(self) -> secretbox.SecretBox:
        if self._box is None:
            self._box = secretbox.SecretBox(self.key_file)
        return self._box

    def encrypt(self, secret: str) -> str:
        return self._opened().seal(secret)

    def decrypt(self, sealed: str) -> str:
        """ValueError when the key cannot open it (the key file was replaced)."""
        try:
            return self._opened().open(sealed)
        except secretbox.SecretUnreadable as exc:
            raise ValueError(str(exc)) from None

"""Content digests (`algorithm:encoded`) per the OCI image spec's descriptor rules."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cargohold.errors import DigestInvalid

# Algorithms the registry can verify, with the exact length of their hex encoding.
SUPPORTED_ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}

_DIGEST_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse and validate a digest string; raise DigestInvalid on anything off."""
        if not text or len(text) > 256 or not _DIGEST_GRAMMAR.fullmatch(text):
            raise DigestInvalid(f"invalid digest {text[:100]!r}: expected algorithm:hex")
        algorithm, encoded = text.split(":", 1)
        length = SUPPORTED_ALGORITHMS.get(algorithm)
        if length is None:
            raise DigestInvalid(
                f"unsupported digest algorithm {algorithm!r}: use one of "
                + ", ".join(SUPPORTED_ALGORITHMS)
            )
        if len(encoded) != length or not all(c in "0123456789abcdef" for c in encoded):
            raise DigestInvalid(
                f"invalid {algorithm} digest: expected {length} lowercase hex characters"
            )
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def is_digest_like(reference: str) -> bool:
    """A manifest reference is a digest when it contains ':' (tags never do)."""
    return ":" in reference


def new_hasher(algorithm: str) -> hashlib._Hash:
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(algorithm)

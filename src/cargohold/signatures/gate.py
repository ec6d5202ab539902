"""The signature pull policy: in namespaces that require it, serve only images carrying a
cosign signature by one of the namespace's trusted keys.

Checked on manifest GETs. Artifacts (signatures, SBOMs, other referrers) pass, and so does
a platform image of a verified index: cosign signs the index a multi-platform tag names,
and clients then fetch its platforms by digest. Lookups are cached in the process: the
namespace's policy and keys for `ttl` seconds (the policy_cache_seconds setting), a verdict
for VERIFIED_TTL seconds (`ttl` when refused, so a signature pushed after a refusal is seen
quickly).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cargohold import mediatypes as mt
from cargohold.cache_only import require_io
from cargohold.core.registry import Registry
from cargohold.core.versioning import namespace_of
from cargohold.errors import Denied
from cargohold.signatures.cosign import CosignVerifier, TrustedKey, Verdict, is_signature
from cargohold.signatures.store import SignatureStore
from cargohold.storage.meta import ManifestRecord

POLICY_TTL = 5.0
VERIFIED_TTL = 300.0
_MAX_CACHED = 10_000


class SignatureRequired(Denied):
    """A pull the namespace's signature policy refuses."""


class SignaturePullGate:
    def __init__(
        self,
        store: SignatureStore,
        registry: Registry,
        ttl: float = POLICY_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._verifier = CosignVerifier(registry)
        self._clock = clock
        self._lock = threading.Lock()
        self._policies: dict[str, tuple[float, tuple[TrustedKey, ...] | None]] = {}
        self._verdicts: dict[tuple[str, str, tuple[str, ...]], tuple[float, Verdict]] = {}

    def keys_required(self, namespace: str) -> tuple[TrustedKey, ...] | None:
        """The namespace's trusted keys when it requires signatures, else None (cached)."""
        at = self._clock()
        with self._lock:
            cached = self._policies.get(namespace)
        if cached is not None and at - cached[0] < self._ttl:
            return cached[1]
        keys = None
        if self._store.signatures_required(namespace):
            keys = tuple(record.trusted() for record in self._store.keys(namespace))
        with self._lock:
            self._policies[namespace] = (at, keys)
        return keys

    def check(self, repository: str, record: ManifestRecord) -> None:
        """Raise SignatureRequired unless ``record`` may be served from ``repository``."""
        namespace = namespace_of(repository)
        keys = self.keys_required(namespace)
        if keys is None or not _needs_signature(record):
            return
        verdict = self._verdict(repository, record.digest, keys)
        if verdict.verified:
            return
        if record.media_type in mt.IMAGE_MANIFESTS:
            for parent in self._store.parent_indexes(repository, record.digest):
                if self._verdict(repository, parent, keys).verified:
                    return
        names = ", ".join(key.name for key in keys) or "none configured"
        raise SignatureRequired(
            f"{repository}@{record.digest} is not served: namespace {namespace} requires a "
            f"cosign signature by one of its trusted keys ({names}), and "
            f"{verdict.explain()}. Sign the image by digest (cosign sign --key KEY "
            f"REGISTRY/{repository}@{record.digest}) or ask a namespace admin",
            detail={"digest": record.digest, "reasons": verdict.reasons},
        )

    def _verdict(self, repository: str, digest: str, keys: tuple[TrustedKey, ...]) -> Verdict:
        key = (repository, digest, tuple(k.pem for k in keys))
        at = self._clock()
        with self._lock:
            cached = self._verdicts.get(key)
        if cached is not None:
            ttl = VERIFIED_TTL if cached[1].verified else self._ttl
            if at - cached[0] < ttl:
                return cached[1]
        require_io()  # verifying reads the signature manifests and blobs
        verdict = self._verifier.verify(repository, digest, list(keys))
        with self._lock:
            if len(self._verdicts) >= _MAX_CACHED:
                self._verdicts.clear()
            self._verdicts[key] = (at, verdict)
        return verdict


def _needs_signature(record: ManifestRecord) -> bool:
    """Container images and indexes do; signatures and other artifacts do not."""
    if not mt.is_scannable(record.media_type, record.artifact_type, record.subject):
        return False
    return not is_signature(record)

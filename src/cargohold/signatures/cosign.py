"""Verify cosign signatures of stored images against public keys (key-based signing).

cosign (../shared/specs/cosign/specs/SIGNATURE_SPEC.md) stores the signatures of an
image ``sha256:abc...`` as one OCI manifest, tagged ``sha256-abc....sig`` in the image's
repository (newer cosign versions can also attach it as an OCI 1.1 referrer with
artifactType ``application/vnd.dev.cosign.artifact.sig.v1+json``). Each layer of that
manifest is a Simple Signing payload (a JSON blob naming the image's digest) whose
base64 signature sits in the layer's ``dev.cosignproject.cosign/signature`` annotation.

An image is verified when one such payload names exactly its digest, has cosign's
``critical.type``, and its signature verifies over the payload's bytes with one of the
trusted keys (ECDSA P-256 with SHA-256 as cosign's default; RSA and Ed25519 keys too).

    verdict = CosignVerifier(registry).verify("team/app", digest, keys)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from cargohold import mediatypes as mt
from cargohold.core.registry import Registry
from cargohold.errors import RegistryError
from cargohold.storage.meta import ManifestRecord

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
COSIGN_TYPE = "cosign container image signature"
MAX_PAYLOAD = 64 << 10  # a Simple Signing payload is a few hundred bytes
MAX_SIGNATURES = 50  # layers read per signature manifest


class KeyInvalid(ValueError):
    """A public key that cannot be used to verify signatures."""


@dataclass(frozen=True)
class TrustedKey:
    """A named public key (PEM, as `cosign generate-key-pair` writes cosign.pub)."""

    name: str
    pem: str

    def load(self) -> Any:
        return load_public_key(self.pem)


def load_public_key(pem: str) -> Any:
    """The public key of a PEM ``PUBLIC KEY`` block; KeyInvalid when it is not one of
    the kinds cosign signs with (ECDSA, RSA, Ed25519)."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise KeyInvalid(f"not a PEM public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise KeyInvalid(f"unsupported key type {type(key).__name__}: use ECDSA, RSA or Ed25519")
    return key


def key_fingerprint(pem: str) -> str:
    """sha256 of the key's DER SubjectPublicKeyInfo: the same key, however it is written."""
    der = load_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def signature_tag(digest: str) -> str:
    """The tag cosign stores the signatures of ``digest`` under (``sha256-<hex>.sig``)."""
    return digest.replace(":", "-", 1) + ".sig"


@dataclass
class Verdict:
    verified: bool
    key: str | None = None  # the trusted key's name that verified
    signature_manifest: str | None = None
    reasons: list[str] = field(default_factory=list)  # why not, when not verified

    def explain(self) -> str:
        if self.verified:
            return f"signed with key {self.key!r} (signature {self.signature_manifest})"
        return "; ".join(self.reasons) or "no cosign signature"


def verify_payload(payload: bytes, signature_b64: str, digest: str, keys: Iterable[Any]) -> int:
    """The index in ``keys`` of the key whose signature over ``payload`` verifies, when the
    payload is a cosign Simple Signing payload naming ``digest``; raises ValueError with
    the reason otherwise."""
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        raise ValueError("the signed payload is not JSON") from None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict) or critical.get("type") != COSIGN_TYPE:
        raise ValueError("the signed payload is not a cosign Simple Signing payload")
    image = critical.get("image")
    named = None
    if isinstance(image, dict):
        # The spec writes Docker-manifest-digest; cosign writes docker-manifest-digest.
        named = next((v for k, v in image.items() if k.lower() == "docker-manifest-digest"), None)
    if named != digest:
        raise ValueError(f"the signed payload names {named}, not {digest}")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signature annotation is not base64") from None
    for index, key in enumerate(keys):
        if _verifies(key, signature, payload):
            return index
    raise ValueError("the signature does not verify with any trusted key")


def _verifies(key: Any, signature: bytes, payload: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
                key.verify(signature, payload, pss, hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


class CosignVerifier:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def signature_manifests(self, repository: str, digest: str) -> list[ManifestRecord]:
        """Every cosign signature manifest of ``digest``: the ``.sig`` tag's, then the
        referrers of cosign's artifact type."""
        found: list[ManifestRecord] = []
        with contextlib.suppress(RegistryError):
            found.append(self._registry.manifests.get(repository, signature_tag(digest)))
        try:
            referrers = self._registry.manifests.referrers(repository, digest, SIGNATURE_ARTIFACT)
        except RegistryError:
            referrers = []
        for referrer in referrers:
            if all(r.digest != referrer.digest for r in found):
                try:
                    found.append(self._registry.manifests.get(repository, referrer.digest))
                except RegistryError:
                    continue
        return found

    def verify(self, repository: str, digest: str, keys: list[TrustedKey]) -> Verdict:
        """Whether ``digest`` in ``repository`` carries a cosign signature by one of
        ``keys``."""
        if not keys:
            return Verdict(False, reasons=["no trusted keys are configured"])
        loaded = [key.load() for key in keys]
        manifests = self.signature_manifests(repository, digest)
        if not manifests:
            return Verdict(
                False,
                reasons=[
                    f"no cosign signature found (tag {signature_tag(digest)} or a referrer "
                    f"of type {SIGNATURE_ARTIFACT})"
                ],
            )
        reasons: list[str] = []
        for record in manifests:
            for layer in _signature_layers(record)[:MAX_SIGNATURES]:
                try:
                    payload = self._payload(repository, layer)
                    index = verify_payload(
                        payload, layer["annotations"][SIGNATURE_ANNOTATION], digest, loaded
                    )
                except ValueError as exc:
                    reasons.append(f"signature in {record.digest}: {exc}")
                    continue
                return Verdict(True, keys[index].name, record.digest)
        return Verdict(False, reasons=reasons or ["the signature manifest holds no signature"])

    def _payload(self, repository: str, layer: dict[str, Any]) -> bytes:
        if not isinstance(layer.get("size"), int) or layer["size"] > MAX_PAYLOAD:
            raise ValueError("the signed payload is missing or too large")
        try:
            blob = self._registry.blobs.get(repository, str(layer.get("digest")))
            return b"".join(blob.stream())
        except RegistryError as exc:
            raise ValueError(f"the signed payload is not stored: {exc}") from None


def _signature_layers(record: ManifestRecord) -> list[dict[str, Any]]:
    if record.media_type not in mt.IMAGE_MANIFESTS:
        return []
    try:
        doc = json.loads(record.content)
    except (ValueError, RecursionError):
        return []
    layers = doc.get("layers") if isinstance(doc, dict) else None
    return [
        layer
        for layer in layers or []
        if isinstance(layer, dict)
        and layer.get("mediaType") == SIMPLE_SIGNING
        and isinstance((layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION), str)
    ]


def is_signature(record: ManifestRecord) -> bool:
    """Whether a manifest is a cosign signature manifest (it needs no signature itself)."""
    if record.artifact_type == SIGNATURE_ARTIFACT:
        return True
    # Most manifests are images: a substring test spares them a JSON parse on every pull.
    if SIGNATURE_ANNOTATION.encode() not in record.content:
        return False
    return bool(_signature_layers(record))

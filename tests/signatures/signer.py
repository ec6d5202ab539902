"""Cosign signatures as cosign writes them (../shared/specs/cosign/specs/SIGNATURE_SPEC.md),
made here because no cosign signer runs on this machine (Debian builds skopeo and podman
with sigstore signing disabled). A signature manifest is an OCI image manifest whose
layers are Simple Signing payloads naming the image's digest, each with its base64
signature in the `dev.cosignproject.cosign/signature` annotation; it is stored under the
tag `sha256-<hex>.sig`, or attached as a referrer (artifactType
application/vnd.dev.cosign.artifact.sig.v1+json) as newer cosign versions can."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SIGNATURE_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"


@dataclass
class KeyPair:
    private: Any

    @classmethod
    def ecdsa(cls) -> KeyPair:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def rsa(cls) -> KeyPair:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ed25519(cls) -> KeyPair:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, payload: bytes) -> str:
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            raw = self.private.sign(payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(self.private, rsa.RSAPrivateKey):
            raw = self.private.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            raw = self.private.sign(payload)
        return base64.b64encode(raw).decode()


def simple_signing_payload(digest: str, reference: str = "registry/team/app") -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def signature_tag(digest: str) -> str:
    return digest.replace(":", "-") + ".sig"


@dataclass
class SignatureManifest:
    body: bytes
    blobs: dict[str, bytes]  # digest -> bytes (the config and the payloads)

    @property
    def digest(self) -> str:
        return sha256(self.body)


def signature_manifest(
    signed: list[tuple[bytes, str]],
    subject: dict[str, Any] | None = None,
) -> SignatureManifest:
    """A manifest carrying ``signed`` (payload, base64 signature) pairs; with ``subject``,
    shaped as a referrer of it."""
    config = b"{}" if subject else json.dumps({"architecture": "", "os": ""}).encode()
    config_type = "application/vnd.oci.empty.v1+json" if subject else OCI_CONFIG
    blobs = {sha256(config): config}
    layers = []
    for payload, signature in signed:
        blobs[sha256(payload)] = payload
        layers.append(
            {
                "mediaType": SIMPLE_SIGNING,
                "digest": sha256(payload),
                "size": len(payload),
                "annotations": {"dev.cosignproject.cosign/signature": signature},
            }
        )
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": sha256(config), "size": len(config)},
        "layers": layers,
    }
    if subject:
        doc["artifactType"] = SIGNATURE_ARTIFACT
        doc["subject"] = subject
    return SignatureManifest(json.dumps(doc).encode(), blobs)


def sign(key: KeyPair, digest: str) -> SignatureManifest:
    payload = simple_signing_payload(digest)
    return signature_manifest([(payload, key.sign(payload))])


Pusher = Callable[[str, bytes], None]

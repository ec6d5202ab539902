"""Cosign signature verification over real stores: tag-based `.sig` manifests and cosign
referrers, ECDSA/RSA/Ed25519 keys, and every way a signature can fail to count."""

from __future__ import annotations

import pytest
from tests.scan.test_service import app_layers, push_blob, push_image

from cargohold.core.registry import Registry
from cargohold.signatures.cosign import (
    CosignVerifier,
    KeyInvalid,
    TrustedKey,
    is_signature,
    key_fingerprint,
    load_public_key,
)

from .signer import (
    OCI_MANIFEST,
    KeyPair,
    SignatureManifest,
    sign,
    signature_manifest,
    signature_tag,
    simple_signing_payload,
)


def store_signature(
    registry: Registry, repository: str, manifest: SignatureManifest, tag: str | None
) -> str:
    for data in manifest.blobs.values():
        push_blob(registry, repository, data, "application/octet-stream")
    reference = tag or manifest.digest
    return registry.manifests.put(repository, reference, manifest.body, OCI_MANIFEST).digest


def trusted(name: str, key: KeyPair) -> TrustedKey:
    return TrustedKey(name, key.public_pem)


@pytest.mark.parametrize("kind", ["ecdsa", "rsa", "ed25519"])
def test_a_tag_based_signature_verifies_with_the_signing_key_only(registry: Registry, kind: str):
    image = push_image(registry, "team/app", "1.0", app_layers()[:1])
    key, other = getattr(KeyPair, kind)(), KeyPair.ecdsa()
    verifier = CosignVerifier(registry)
    unsigned = verifier.verify("team/app", image, [trusted("ci", key)])
    assert not unsigned.verified
    assert signature_tag(image) in unsigned.explain()

    sig = store_signature(registry, "team/app", sign(key, image), signature_tag(image))
    verdict = verifier.verify("team/app", image, [trusted("other", other), trusted("ci", key)])
    assert verdict.verified and verdict.key == "ci" and verdict.signature_manifest == sig
    wrong = verifier.verify("team/app", image, [trusted("other", other)])
    assert not wrong.verified
    assert "does not verify with any trusted key" in wrong.explain()
    assert not verifier.verify("team/app", image, []).verified


def test_a_signature_of_another_image_or_a_tampered_payload_does_not_count(registry: Registry):
    image = push_image(registry, "team/app", "1.0", app_layers()[:1])
    other_image = push_image(registry, "team/app", "2.0", app_layers()[1:2])
    key = KeyPair.ecdsa()
    # A valid signature of the other image, stored under this image's .sig tag.
    store_signature(registry, "team/app", sign(key, other_image), signature_tag(image))
    verdict = CosignVerifier(registry).verify("team/app", image, [trusted("ci", key)])
    assert not verdict.verified
    assert f"names {other_image}" in verdict.explain()

    # A payload naming this image, signed, then one byte changed.
    payload = simple_signing_payload(image)
    signature = key.sign(payload)
    tampered = payload.replace(b"registry/team/app", b"registry/team/apq")
    manifest = signature_manifest([(tampered, signature)])
    store_signature(registry, "team/app", manifest, signature_tag(image))
    verdict = CosignVerifier(registry).verify("team/app", image, [trusted("ci", key)])
    assert not verdict.verified and "does not verify" in verdict.explain()


def test_one_good_signature_among_several_layers_is_enough(registry: Registry):
    image = push_image(registry, "team/app", "1.0", app_layers()[:1])
    alice, bob = KeyPair.ecdsa(), KeyPair.ecdsa()
    payload = simple_signing_payload(image)
    manifest = signature_manifest([(payload, alice.sign(payload)), (payload, bob.sign(payload))])
    store_signature(registry, "team/app", manifest, signature_tag(image))
    verdict = CosignVerifier(registry).verify("team/app", image, [trusted("bob", bob)])
    assert verdict.verified and verdict.key == "bob"


def test_a_cosign_referrer_verifies_and_is_recognised_as_a_signature(registry: Registry):
    image = push_image(registry, "team/app", "1.0", app_layers()[:1])
    record = registry.manifests.get("team/app", image)
    subject = {"mediaType": record.media_type, "digest": image, "size": len(record.content)}
    key = KeyPair.ecdsa()
    payload = simple_signing_payload(image)
    referrer = signature_manifest([(payload, key.sign(payload))], subject=subject)
    digest = store_signature(registry, "team/app", referrer, None)
    verdict = CosignVerifier(registry).verify("team/app", image, [trusted("ci", key)])
    assert verdict.verified and verdict.signature_manifest == digest
    assert is_signature(registry.manifests.get("team/app", digest))
    assert not is_signature(record)
    tagged = store_signature(registry, "team/app", sign(key, image), signature_tag(image))
    assert is_signature(registry.manifests.get("team/app", tagged))


def test_keys_are_validated_and_fingerprinted_by_their_content():
    key = KeyPair.ecdsa()
    pem = key.public_pem
    assert key_fingerprint(pem) == key_fingerprint("\n" + pem + "\n")
    assert key_fingerprint(pem) != key_fingerprint(KeyPair.ecdsa().public_pem)
    with pytest.raises(KeyInvalid):
        load_public_key("not a key")
    with pytest.raises(KeyInvalid):
        load_public_key(pem.replace("PUBLIC KEY", "PRIVATE KEY"))

"""Promotion between namespaces over real stores: gates (scan, signature, immutable tag)
refuse with reasons and leave nothing behind; a promotion links the image, its platforms,
referrers and signature into the target without copying blobs, recorded in tag history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.scan.fixtures import add_files, dist_info
from tests.scan.layerkit import OCI_LAYER_GZIP, Layer
from tests.scan.test_sbom import push_index
from tests.scan.test_service import ADVISORIES, SITE, app_layers, push_image

from cargohold.core.registry import Registry
from cargohold.errors import Denied
from cargohold.promotion import PromotionRefused, PromotionService
from cargohold.scan.sbom import CYCLONEDX_JSON
from cargohold.scan.worker import ScanWorker
from cargohold.signatures.store import SignatureStore
from cargohold.stores import Stores
from cargohold.vulndb.osv import parse_record
from cargohold.vulndb.store import AdvisoryStore

from .signer import KeyPair, sign, signature_tag
from .test_cosign import store_signature


def scan_everything(registry: Registry, stores: Stores, sbom: bool = False) -> None:
    worker = ScanWorker(registry, stores.engine, attach_sbom=sbom, name="test")
    while worker.run_once():
        pass


def blob_files(data_dir: Path) -> int:
    return sum(1 for p in (data_dir / "blobs").rglob("*") if p.is_file())


@pytest.fixture
def advisories(stores: Stores) -> None:
    AdvisoryStore(stores.engine).save([(parse_record(r), json.dumps(r)) for r in ADVISORIES])


def test_without_gates_a_promotion_links_everything_and_copies_no_blob(
    registry: Registry, stores: Stores, data_dir: Path
):
    index, amd, arm = push_index(registry, "team/app", "1.4")
    scan_everything(registry, stores, sbom=True)  # SBOM referrers on both platforms
    key = KeyPair.ecdsa()
    store_signature(registry, "team/app", sign(key, index), signature_tag(index))
    files = blob_files(data_dir)

    result = PromotionService(registry, stores.engine).promote(
        "team/app", "1.4", "prod/app", None, "alice"
    )
    assert (result.target, result.tag, result.digest, result.changed) == (
        "prod/app",
        "1.4",
        index,
        True,
    )
    assert result.gates == []
    assert blob_files(data_dir) == files  # nothing copied
    assert registry.manifests.get("prod/app", "1.4").digest == index
    for platform in (amd, arm):
        assert registry.manifests.get("prod/app", platform).digest == platform
        [sbom] = registry.manifests.referrers("prod/app", platform, CYCLONEDX_JSON)
        assert registry.manifests.get("prod/app", sbom.digest)
    assert registry.manifests.get("prod/app", signature_tag(index)).digest == (
        registry.manifests.get("team/app", signature_tag(index)).digest
    )
    # index, 2 platforms, 2 SBOMs, the signature manifest
    assert result.manifests_linked == 6
    [event] = [e for e in registry.tags.history("prod/app", "1.4") if e.tag == "1.4"]
    assert (event.via, event.actor, event.new_digest) == ("promote", "alice", index)
    # Blobs are readable from the target.
    doc = json.loads(registry.manifests.get("prod/app", amd).content)
    assert b"".join(registry.blobs.get("prod/app", doc["layers"][0]["digest"]).stream())

    again = PromotionService(registry, stores.engine).promote(
        "team/app", "1.4", "prod/app", None, "alice"
    )
    assert again.changed is False and again.manifests_linked == 0


def test_the_scan_gate_refuses_unscanned_and_vulnerable_images(
    registry: Registry, stores: Stores, advisories: None
):
    vulnerable = push_image(registry, "team/app", "1.4", app_layers())
    jinja = add_files(Layer(), dist_info(SITE, "Jinja2", "3.1.4", dirname="jinja2"))
    clean = push_image(registry, "team/app", "1.5", [(jinja.gzip(), OCI_LAYER_GZIP)])
    SignatureStore(stores.engine).set_gates("prod", "high", False, False, "admin")
    service = PromotionService(registry, stores.engine)

    with pytest.raises(PromotionRefused) as refused:
        service.promote("team/app", "1.4", "prod/app", None, "alice")
    assert "has not been scanned" in refused.value.message
    assert "cargohold scan run" in refused.value.message
    assert not registry.meta.repository_exists("prod/app")

    scan_everything(registry, stores)
    with pytest.raises(PromotionRefused) as refused:
        service.promote("team/app", "1.4", "prod/app", None, "alice")
    message = refused.value.message
    assert "vulnerabilities" in message and "at or above high" in message
    assert "CVE-2099-REQ1 (critical, requests 2.19.0)" in message
    assert isinstance(refused.value, Denied)
    assert [g["gate"] for g in refused.value.detail["gates"]] == ["vulnerabilities"]
    assert not registry.meta.repository_exists("prod/app")

    result = service.promote("team/app", clean, "prod/app", "1.5", "alice")
    assert result.digest == clean
    assert [(g.gate, g.passed) for g in result.gates] == [("vulnerabilities", True)]
    assert vulnerable != clean


def test_the_signature_gate_uses_the_target_namespaces_keys(registry: Registry, stores: Stores):
    image = push_image(registry, "team/app", "1.4", app_layers()[:1])
    keys = SignatureStore(stores.engine)
    keys.set_gates("prod", None, True, False, "admin")
    service = PromotionService(registry, stores.engine)
    with pytest.raises(PromotionRefused) as refused:
        service.promote("team/app", "1.4", "prod/app", None, "alice")
    assert "trusts no keys yet" in refused.value.message

    release, dev = KeyPair.ecdsa(), KeyPair.ecdsa()
    keys.add_key("prod", "release", release.public_pem, "admin")
    keys.add_key("team", "dev", dev.public_pem, "admin")
    store_signature(registry, "team/app", sign(dev, image), signature_tag(image))
    with pytest.raises(PromotionRefused) as refused:
        service.promote("team/app", "1.4", "prod/app", None, "alice")
    assert "does not verify with any trusted key" in refused.value.message

    store_signature(registry, "team/app", sign(release, image), signature_tag(image))
    result = service.promote("team/app", "1.4", "prod/app", None, "alice")
    assert [(g.gate, g.passed) for g in result.gates] == [("signature", True)]
    assert "release" in result.gates[0].message
    assert registry.manifests.get("prod/app", signature_tag(image))


def test_the_immutable_gate_needs_a_rule_protecting_the_target_tag(
    registry: Registry, stores: Stores
):
    image = push_image(registry, "team/app", "1.4", app_layers()[:1])
    SignatureStore(stores.engine).set_gates("prod", None, False, True, "admin")
    service = PromotionService(registry, stores.engine)
    with pytest.raises(PromotionRefused) as refused:
        service.promote("team/app", "1.4", "prod/app", None, "alice")
    assert "cargohold tag immutable add prod '1.4'" in refused.value.message
    registry.tags.add_rule("prod", "1.*", None, "admin")
    result = service.promote("team/app", "1.4", "prod/app", None, "alice")
    assert result.gates[0].passed and "1.*" in result.gates[0].message

    # Once promoted, the tag cannot be promoted over with another image.
    other = push_image(registry, "team/app", "1.4b", app_layers()[1:2])
    with pytest.raises(Denied) as moved:
        service.promote("team/app", other, "prod/app", "1.4", "alice")
    assert "immutable" in moved.value.message
    assert registry.manifests.get("prod/app", "1.4").digest == image

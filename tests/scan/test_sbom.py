"""SBOMs: the scan inventory as CycloneDX 1.5 JSON, attached to the image as an OCI
referrer and found again through the referrers API (with its artifactType filter) and
oras-py, against a live server."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveRegistry

from cargohold.core.registry import Registry
from cargohold.scan.sbom import (
    CYCLONEDX_JSON,
    EMPTY_DESCRIPTOR,
    attach_sbom,
    bom_bytes,
    cyclonedx,
    image_inventories,
)
from cargohold.scan.service import ScanService
from cargohold.stores import Stores
from cargohold.vulndb.store import AdvisoryStore

from .layerkit import OCI_LAYER_GZIP
from .test_service import (
    OCI_INDEX,
    OCI_MANIFEST,
    app_layers,
    cargohold,
    push_image,
    push_manifest,
    python_layer,
)

UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_index(registry: Registry, repository: str, tag: str) -> tuple[str, str, str]:
    amd = push_image(registry, repository, None, app_layers(), arch="amd64")
    arm = push_image(registry, repository, None, [(python_layer().gzip(), OCI_LAYER_GZIP)], "arm64")

    def child(digest: str, arch: str) -> dict:
        size = len(registry.manifests.get(repository, digest).content)
        return {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": size,
            "platform": {"os": "linux", "architecture": arch},
        }

    index = push_manifest(
        registry,
        repository,
        tag,
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [child(amd, "amd64"), child(arm, "arm64")],
        },
    )
    return index, amd, arm


def validate_schema(bom: dict) -> None:
    """CycloneDX's own 1.5 JSON schema (bundled in cyclonedx-python-lib, a dev dependency)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(bom))
    assert error is None, str(error)[:2000]


def check_bom_shape(bom: dict, repository: str, digest: str) -> None:
    """CycloneDX's schema, plus what this BOM promises beyond it."""
    validate_schema(bom)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5"
    assert UUID_URN.match(bom["serialNumber"]), bom["serialNumber"]
    assert bom["version"] == 1
    meta = bom["metadata"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", meta["timestamp"])
    [tool] = meta["tools"]["components"]
    assert tool["type"] == "application" and tool["name"] == "cargohold" and tool["version"]
    image = meta["component"]
    assert image["type"] == "container"
    assert image["name"] == repository and image["version"] == digest
    name = repository.rsplit("/", 1)[-1]
    assert image["purl"] == f"pkg:oci/{name}@{digest.replace(':', '%3A')}"
    refs = [c["bom-ref"] for c in bom["components"]] + [image["bom-ref"]]
    assert len(refs) == len(set(refs)), "bom-refs must be unique"
    for component in bom["components"]:
        assert component["type"] in ("library", "operating-system")
        assert isinstance(component["name"], str) and component["name"]
        for prop in component.get("properties", []):
            assert set(prop) == {"name", "value"} and isinstance(prop["value"], str)


def test_bom_lists_the_inventory(registry: Registry, stores: Stores):
    digest = push_image(registry, "team/app", "1.0", app_layers())
    [image] = list(image_inventories(registry, "team/app", "1.0"))
    assert image.digest == digest and image.platform == "linux/amd64"
    bom = cyclonedx(image.inventory, "team/app", digest)
    check_bom_shape(bom, "team/app", digest)
    assert json.loads(bom_bytes(bom)) == bom

    # The same packages as the vulnerability scan's inventory.
    analysis = ScanService(registry, AdvisoryStore(stores.engine)).analyze_image(
        "team/app",
        digest,
        json.loads(registry.manifests.get("team/app", digest).content),
        None,
    )
    assert analysis.inventory is not None
    packages = analysis.inventory.packages
    libraries = [c for c in bom["components"] if c["type"] == "library"]
    assert sorted(c["purl"] for c in libraries) == sorted(p.purl for p in packages)
    assert len(libraries) == 6  # 4 debs, requests and jinja2 (urllib3 was whited out)
    assert {c["name"] for c in libraries} == {p.name for p in packages}
    assert all(c["bom-ref"] == c["purl"] for c in libraries)
    by_purl = {p.purl: p for p in packages}
    for component in libraries:
        package = by_purl[component["purl"]]
        assert component["version"] == package.version
        props = {p["name"]: p["value"] for p in component["properties"]}
        assert props["cargohold:layer"] == package.layer_digest
        assert props["cargohold:path"] == package.path
    openssl = next(c for c in libraries if c["name"] == "openssl")
    assert openssl["purl"].startswith("pkg:deb/debian/openssl@")
    [os_component] = [c for c in bom["components"] if c["type"] == "operating-system"]
    assert (os_component["name"], os_component["version"]) == ("debian", "12")


def test_schema_validation_can_fail():
    with pytest.raises(AssertionError):
        validate_schema({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [{}]})


def test_duplicate_purls_get_distinct_bom_refs(registry: Registry):
    digest = push_image(registry, "team/app", "1.0", app_layers())
    [image] = list(image_inventories(registry, "team/app", "1.0"))
    first = image.inventory.packages[0]
    image.inventory.packages.append(
        type(first)(**{**first.__dict__, "path": "opt/other/" + first.path})
    )
    bom = cyclonedx(image.inventory, "team/app", digest)
    check_bom_shape(bom, "team/app", digest)
    assert [c.get("purl") for c in bom["components"]].count(first.purl) == 2


def test_attach_in_process_makes_a_referrer(registry: Registry):
    _index, amd, arm = push_index(registry, "team/multi", "1.0")
    images = list(image_inventories(registry, "team/multi", "1.0"))
    assert [(i.digest, i.platform) for i in images] == [
        (amd, "linux/amd64"),
        (arm, "linux/arm64"),
    ]
    bom = bom_bytes(cyclonedx(images[1].inventory, "team/multi", arm))
    referrer = attach_sbom(registry, "team/multi", images[1].descriptor, bom, actor="tester")
    doc = json.loads(registry.manifests.get("team/multi", referrer).content)
    assert doc["artifactType"] == CYCLONEDX_JSON
    assert doc["config"] == EMPTY_DESCRIPTOR
    assert base64.b64decode(EMPTY_DESCRIPTOR["data"]) == b"{}"
    assert _sha(b"{}") == EMPTY_DESCRIPTOR["digest"]
    assert doc["subject"] == images[1].descriptor
    assert doc["layers"] == [{"mediaType": CYCLONEDX_JSON, "digest": _sha(bom), "size": len(bom)}]
    blob = registry.blobs.get("team/multi", _sha(bom))
    assert b"".join(blob.stream()) == bom
    # A second attach adds a referrer; the first stays.
    again = attach_sbom(registry, "team/multi", images[1].descriptor, bom)
    assert registry.manifests.get("team/multi", referrer).digest == referrer
    assert registry.manifests.get("team/multi", again).digest == again


def _referrers(url: str, repository: str, digest: str, **params: str) -> list[dict]:
    response = httpx.get(f"{url}/v2/{repository}/referrers/{digest}", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mediaType"] == OCI_INDEX
    return body["manifests"]


def test_cli_attaches_sboms_found_through_the_referrers_api(
    registry: Registry, stores: Stores, data_dir: Path, tmp_path: Path
):
    import oras.client  # a pinned dev dependency (see tests/e2e/test_oras.py)

    app = push_image(registry, "team/app", "1.0", app_layers())
    index, amd, arm = push_index(registry, "team/multi", "2.0")
    stores.close()

    server = LiveRegistry(data_dir)
    try:
        assert _referrers(server.url, "team/app", app) == []
        out = tmp_path / "bom.json"
        run = cargohold(data_dir, "scan", "sbom", "team/app:1.0", "--attach", "--output", str(out))
        [line] = run.stdout.splitlines()
        platform, subject, referrer = line.split("\t")
        assert (platform, subject) == ("linux/amd64", app)
        referrer = referrer.removeprefix("sbom ")
        bom = out.read_bytes()
        check_bom_shape(json.loads(bom), "team/app", app)

        [listed] = _referrers(server.url, "team/app", app)
        assert listed["digest"] == referrer
        assert listed["artifactType"] == CYCLONEDX_JSON
        assert listed["annotations"]["dev.cargohold.sbom.format"] == "CycloneDX 1.5"
        assert "org.opencontainers.image.created" in listed["annotations"]
        # `oras discover --artifact-type application/vnd.cyclonedx+json`
        filtered = httpx.get(
            f"{server.url}/v2/team/app/referrers/{app}?artifactType=application/vnd.cyclonedx%2Bjson"
        )
        assert filtered.status_code == 200
        assert [m["digest"] for m in filtered.json()["manifests"]] == [referrer]
        assert _referrers(server.url, "team/app", app, artifactType="application/spdx+json") == []

        manifest = httpx.get(
            f"{server.url}/v2/team/app/manifests/{referrer}",
            headers={"Accept": OCI_MANIFEST},
        )
        assert manifest.status_code == 200
        doc = manifest.json()
        assert doc["subject"]["digest"] == app
        [layer] = doc["layers"]
        assert layer["mediaType"] == CYCLONEDX_JSON
        blob = httpx.get(f"{server.url}/v2/team/app/blobs/{layer['digest']}", follow_redirects=True)
        assert blob.status_code == 200 and blob.content == bom
        empty = httpx.get(
            f"{server.url}/v2/team/app/blobs/{doc['config']['digest']}", follow_redirects=True
        )
        assert empty.content == b"{}"

        # oras-py reads the same referrer manifest.
        oras = oras.client.OrasClient(hostname=server.host, insecure=True)
        pulled = oras.get_manifest(f"{server.host}/team/app@{referrer}")
        assert pulled["artifactType"] == CYCLONEDX_JSON
        assert pulled["subject"]["digest"] == app

        # Printing without --attach stores nothing.
        printed = cargohold(data_dir, "scan", "sbom", "team/app:1.0")
        check_bom_shape(json.loads(printed.stdout), "team/app", app)
        assert len(_referrers(server.url, "team/app", app)) == 1

        # An index: one SBOM per platform image, each the referrer of its platform manifest.
        refused = cargohold(data_dir, "scan", "sbom", "team/multi:2.0", code=2)
        assert "--platform" in refused.stderr
        both = cargohold(
            data_dir, "scan", "sbom", "team/multi:2.0", "--attach", "-o", str(out), code=2
        )
        assert "--platform" in both.stderr
        multi = cargohold(data_dir, "scan", "sbom", "team/multi:2.0", "--attach")
        lines = [line.split("\t") for line in multi.stdout.splitlines()]
        assert [(p, d) for p, d, _ in lines] == [("linux/amd64", amd), ("linux/arm64", arm)]
        for _, digest, ref in lines:
            [listed] = _referrers(server.url, "team/multi", digest, artifactType=CYCLONEDX_JSON)
            assert listed["digest"] == ref.removeprefix("sbom ")
        assert _referrers(server.url, "team/multi", index) == []

        one = cargohold(
            data_dir, "scan", "sbom", "team/multi:2.0", "--platform", "linux/arm64"
        ).stdout
        arm_bom = json.loads(one)
        check_bom_shape(arm_bom, "team/multi", arm)
        assert {c["name"] for c in arm_bom["components"]} == {"requests", "Jinja2", "urllib3"}
    finally:
        server.stop()

"""SBOMs of stored images: the scan inventory as a CycloneDX 1.5 JSON BOM, attached to
the image as an OCI referrer (an artifact manifest whose ``subject`` is the image).

    for image in image_inventories(registry, "team/app", "1.0"):
        bom = bom_bytes(cyclonedx(image.inventory, "team/app", image.digest))
        referrer = attach_sbom(registry, "team/app", image.descriptor, bom)

The referrer follows the OCI 1.1 artifact guidance: ``artifactType`` and the BOM layer
are ``application/vnd.cyclonedx+json``, the config is the empty descriptor, so
``oras discover --artifact-type application/vnd.cyclonedx+json`` lists it. Every attach
makes a new referrer (the BOM's serial number and timestamp change): nothing is
replaced, the newest one is the one with the latest ``org.opencontainers.image.created``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

from cargohold import __version__
from cargohold import mediatypes as mt
from cargohold.core.registry import Registry
from cargohold.scan.inventory import Inventory
from cargohold.scan.service import ScanService

CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
SBOM_FORMAT = "CycloneDX 1.5"
FORMAT_ANNOTATION = "dev.cargohold.sbom.format"
CREATED_ANNOTATION = "org.opencontainers.image.created"
EMPTY_CONFIG = b"{}"
EMPTY_DESCRIPTOR = {
    "mediaType": mt.OCI_EMPTY,
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "size": 2,
    "data": "e30=",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_purl(repository: str, digest: str, registry_host: str | None = None) -> str:
    """``pkg:oci/NAME@DIGEST[?repository_url=HOST/REPOSITORY]`` (purl's oci type)."""
    name = repository.rsplit("/", 1)[-1].lower()
    purl = f"pkg:oci/{quote(name, safe='')}@{quote(digest, safe='')}"
    if registry_host:
        purl += "?repository_url=" + quote(f"{registry_host}/{repository}", safe="/")
    return purl


def cyclonedx(
    inventory: Inventory,
    repository: str,
    digest: str,
    *,
    registry_host: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """The CycloneDX 1.5 BOM of one image manifest (``digest`` in ``repository``): one
    ``library`` component per package of ``inventory`` (bom-ref = its purl, made unique
    when two packages share one), and an ``operating-system`` component for the distro."""
    components: list[dict[str, Any]] = []
    seen: set[str] = set()
    if inventory.os is not None:
        ref = f"os:{inventory.os.id}@{inventory.os.version_id or 'unknown'}"
        seen.add(ref)
        os_component: dict[str, Any] = {
            "type": "operating-system",
            "bom-ref": ref,
            "name": inventory.os.id,
        }
        if inventory.os.version_id:
            os_component["version"] = inventory.os.version_id
        if inventory.os.pretty_name:
            os_component["description"] = inventory.os.pretty_name
        components.append(os_component)
    for package in inventory.packages:
        ref = package.purl
        if ref in seen:
            ref = f"{package.purl}#{package.path}"
            n = 2
            while ref in seen:
                ref = f"{package.purl}#{package.path}-{n}"
                n += 1
        seen.add(ref)
        properties = [
            {"name": "cargohold:layer", "value": package.layer_digest},
            {"name": "cargohold:path", "value": package.path},
            {"name": "cargohold:ecosystem", "value": package.ecosystem},
            {"name": "cargohold:kind", "value": package.kind},
        ]
        if package.source_name:
            properties.append({"name": "cargohold:source-name", "value": package.source_name})
        if package.source_version:
            properties.append({"name": "cargohold:source-version", "value": package.source_version})
        components.append(
            {
                "type": "library",
                "bom-ref": ref,
                "name": package.name,
                "version": package.version,
                "purl": package.purl,
                "properties": properties,
            }
        )
    image_ref = image_purl(repository, digest, registry_host)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp or _now(),
            "tools": {
                "components": [{"type": "application", "name": "cargohold", "version": __version__}]
            },
            "component": {
                "type": "container",
                "bom-ref": image_ref,
                "name": repository,
                "version": digest,
                "purl": image_ref,
            },
        },
        "components": components,
    }


def bom_bytes(bom: dict[str, Any]) -> bytes:
    """The BOM as stored and printed (the referrer's layer is exactly these bytes)."""
    return (json.dumps(bom, indent=2) + "\n").encode()


@dataclass
class ImageInventory:
    """One platform image of a stored manifest and what is installed in it."""

    digest: str
    platform: str | None
    descriptor: dict[str, Any]  # mediaType, digest, size: the referrer's subject
    inventory: Inventory


class _NoAdvisories:
    def findings(self, packages: Any) -> list[Any]:
        return []


def image_inventories(
    registry: Registry, repository: str, reference: str
) -> Iterator[ImageInventory]:
    """The inventory of ``reference`` (a tag or digest), or of each platform image of an
    index; artifacts and attestations are left out. Raises the registry's errors for an
    unknown repository or manifest."""
    service = ScanService(registry, cast(Any, _NoAdvisories()))
    record = registry.manifests.get(repository, reference)
    doc = _json(record.content)
    if record.media_type in mt.INDEXES:
        children = [c for c in doc.get("manifests") or [] if isinstance(c, dict)]
    else:
        children = [
            {"mediaType": record.media_type, "digest": record.digest, "size": len(record.content)}
        ]
    for child in children:
        if child.get("mediaType") not in mt.IMAGE_MANIFESTS:
            continue
        annotations = child.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        image = registry.manifests.get(repository, str(child["digest"]))
        platform = child.get("platform")
        platform_text = (
            "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))
            if isinstance(platform, dict)
            else None
        )
        analysis = service.analyze_image(
            repository, image.digest, _json(image.content), platform_text
        )
        if analysis.inventory is None:
            continue
        yield ImageInventory(
            digest=image.digest,
            platform=analysis.result.platform,
            descriptor={
                "mediaType": image.media_type,
                "digest": image.digest,
                "size": len(image.content),
            },
            inventory=analysis.inventory,
        )


def _put_blob(registry: Registry, repository: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if registry.meta.link_existing_blob(repository, digest):
        return digest
    upload_id = str(uuid.uuid4())
    store = registry.blob_store
    store.start_upload(upload_id)
    with store.open_upload(upload_id, 0) as writer:
        writer.write(data)
    store.flush_upload(upload_id)  # outside commit_blob's lock
    registry.meta.commit_blob(
        repository, digest, len(data), lambda: store.commit_upload(upload_id, digest)
    )
    return digest


def sbom_manifest(subject: dict[str, Any], bom: bytes, created: str | None = None) -> bytes:
    """The referrer manifest (bytes as pushed) carrying ``bom`` for ``subject``."""
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": CYCLONEDX_JSON,
        "config": EMPTY_DESCRIPTOR,
        "layers": [
            {
                "mediaType": CYCLONEDX_JSON,
                "digest": "sha256:" + hashlib.sha256(bom).hexdigest(),
                "size": len(bom),
            }
        ],
        "subject": {k: subject[k] for k in ("mediaType", "digest", "size")},
        "annotations": {
            CREATED_ANNOTATION: created or _now(),
            FORMAT_ANNOTATION: SBOM_FORMAT,
        },
    }
    return json.dumps(doc, indent=2).encode()


def attach_sbom(
    registry: Registry,
    repository: str,
    subject: dict[str, Any],
    bom: bytes,
    actor: str | None = None,
) -> str:
    """Store ``bom`` (CycloneDX JSON bytes) as a referrer of ``subject`` (the image's
    descriptor: mediaType, digest, size) and return the referrer manifest's digest.

    Each call adds a referrer; earlier SBOMs stay (nothing is replaced)."""
    _put_blob(registry, repository, bom)
    _put_blob(registry, repository, EMPTY_CONFIG)
    body = sbom_manifest(subject, bom)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return registry.manifests.put(repository, digest, body, mt.OCI_MANIFEST, actor=actor).digest


def _json(content: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(content)
    except (ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}

"""Parse manifest bytes into what the registry needs: references, subject, artifact type.

The bytes themselves are stored untouched; parsing only extracts and validates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cargohold import mediatypes as mt
from cargohold.digest import Digest
from cargohold.errors import DigestInvalid, ManifestInvalid


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    has_urls: bool = False


@dataclass(slots=True)
class ParsedManifest:
    media_type: str
    blobs: list[Descriptor] = field(default_factory=list)
    manifests: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None


# Types sent by clients that don't name the manifest type; the body's mediaType decides.
_GENERIC_CONTENT_TYPES = {"", "application/json", "application/octet-stream"}


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a manifest body and extract its references.

    Raises ManifestInvalid for anything that is not a schema-2 image manifest or index.
    """
    try:
        doc = json.loads(body)
    # ValueError: also a number of over 4300 digits, which Python refuses to convert.
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")

    header_type = (content_type or "").split(";", 1)[0].strip().lower()
    body_type = doc.get("mediaType")
    if body_type is not None:
        body_type = _storable(body_type, "mediaType")
    media_type = _decide_media_type(header_type, body_type, doc)

    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2 (schema 1 manifests are not supported)")

    if media_type in mt.INDEXES:
        return _parse_index(doc, media_type)
    return _parse_image_manifest(doc, media_type)


def _decide_media_type(header_type: str, body_type: str | None, doc: dict[str, Any]) -> str:
    if header_type in mt.DOCKER_SCHEMA1 or body_type in mt.DOCKER_SCHEMA1:
        raise ManifestInvalid(
            "Docker schema 1 manifests are not supported: push with a client that "
            "writes schema 2 or OCI manifests"
        )
    if header_type not in _GENERIC_CONTENT_TYPES:
        if header_type not in mt.MANIFEST_TYPES:
            raise ManifestInvalid(f"unsupported manifest media type {header_type!r}")
        if body_type is not None and body_type != header_type:
            raise ManifestInvalid(
                f"Content-Type {header_type!r} does not match the manifest's mediaType "
                f"{body_type!r}"
            )
        return header_type
    if body_type is not None:
        if body_type not in mt.MANIFEST_TYPES:
            raise ManifestInvalid(f"unsupported manifest media type {body_type!r}")
        return body_type
    # OCI allows mediaType to be absent; tell the two OCI shapes apart by their fields.
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc:
        return mt.OCI_MANIFEST
    raise ManifestInvalid("cannot tell the manifest's media type: set Content-Type")


def _parse_image_manifest(doc: dict[str, Any], media_type: str) -> ParsedManifest:
    if "manifests" in doc:
        raise ManifestInvalid("an image manifest must not have a manifests field")
    config = _descriptor(doc.get("config"), "config")
    layers_raw = doc.get("layers", [] if media_type == mt.OCI_MANIFEST else None)
    if not isinstance(layers_raw, list):
        raise ManifestInvalid("layers must be a list of descriptors")
    layers = [_descriptor(item, f"layers[{i}]") for i, item in enumerate(layers_raw)]
    artifact_type = _optional_string(doc, "artifactType")
    return ParsedManifest(
        media_type=media_type,
        # Foreign layers (with urls) live elsewhere, so the registry cannot require them.
        blobs=[config, *(layer for layer in layers if not layer.has_urls)],
        subject=_subject(doc),
        artifact_type=artifact_type or config.media_type,
        annotations=_annotations(doc),
    )


def _parse_index(doc: dict[str, Any], media_type: str) -> ParsedManifest:
    if "layers" in doc or "config" in doc:
        raise ManifestInvalid("an index must not have config or layers")
    items = doc.get("manifests")
    if not isinstance(items, list):
        raise ManifestInvalid("manifests must be a list of descriptors")
    children = [_descriptor(item, f"manifests[{i}]") for i, item in enumerate(items)]
    return ParsedManifest(
        media_type=media_type,
        manifests=children,
        subject=_subject(doc),
        artifact_type=_optional_string(doc, "artifactType"),
        annotations=_annotations(doc),
    )


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object")
    media_type = raw.get("mediaType")
    digest = raw.get("digest")
    size = raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType must be a non-empty string")
    _storable(media_type, f"{where}.mediaType")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest must be a string")
    try:
        Digest.parse(digest)
    except DigestInvalid as exc:
        raise ManifestInvalid(f"{where}.digest: {exc.message}") from None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size >= 2**63:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    urls = raw.get("urls")
    if urls is not None and not (isinstance(urls, list) and all(isinstance(u, str) for u in urls)):
        raise ManifestInvalid(f"{where}.urls must be a list of strings")
    artifact_type = raw.get("artifactType")
    if artifact_type is not None:
        _storable(artifact_type, f"{where}.artifactType")
    return Descriptor(media_type, digest, size, artifact_type, has_urls=bool(urls))


def _subject(doc: dict[str, Any]) -> Descriptor | None:
    raw = doc.get("subject")
    return None if raw is None else _descriptor(raw, "subject")


def _optional_string(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    return _storable(value, key) or None


def _annotations(doc: dict[str, Any]) -> dict[str, str] | None:
    raw = doc.get("annotations")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ManifestInvalid("annotations must map strings to strings")
    for key, value in raw.items():
        _storable(key, "annotations key")
        _storable(value, f"annotations[{key[:60]!r}]")
    return raw


def _storable(value: Any, where: str) -> str:
    """A string the metadata database can hold: JSON allows NUL and lone surrogates
    (\\u0000, \\ud800), but PostgreSQL text and UTF-8 do not, so refuse them here."""
    if not isinstance(value, str):
        raise ManifestInvalid(f"{where} must be a string")
    if "\x00" in value:
        raise ManifestInvalid(f"{where} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ManifestInvalid(f"{where} is not valid Unicode (a lone surrogate)") from None
    return value

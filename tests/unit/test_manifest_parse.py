from __future__ import annotations

import json

import pytest

from cargohold import mediatypes as mt
from cargohold.errors import ManifestInvalid
from cargohold.manifest import parse_manifest

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


mt_config = "application/vnd.oci.image.config.v1+json"
mt_layer = "application/vnd.oci.image.layer.v1.tar+gzip"


def image(**extra: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": A, "size": 2},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": B, "size": 9}
        ],
    }
    doc.update(extra)
    return doc


def parse(doc: object, content_type: str | None = mt.OCI_MANIFEST):
    return parse_manifest(json.dumps(doc).encode(), content_type)


def test_image_manifest_references_config_and_layers() -> None:
    parsed = parse(image())
    assert [d.digest for d in parsed.blobs] == [A, B]
    assert parsed.manifests == []
    assert parsed.artifact_type == "application/vnd.oci.image.config.v1+json"


def test_artifact_type_and_subject() -> None:
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": C, "size": 100}
    parsed = parse(
        image(artifactType="application/x.sbom", subject=subject, annotations={"a": "b"})
    )
    assert parsed.artifact_type == "application/x.sbom"
    assert parsed.subject is not None and parsed.subject.digest == C
    assert parsed.annotations == {"a": "b"}


def test_index_references_children() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": A, "size": 5}],
    }
    parsed = parse(doc, mt.OCI_INDEX)
    assert [d.digest for d in parsed.manifests] == [A]
    assert parsed.blobs == []
    assert parsed.artifact_type is None


def test_docker_types() -> None:
    doc = image(mediaType=mt.DOCKER_MANIFEST)
    assert parse(doc, mt.DOCKER_MANIFEST).media_type == mt.DOCKER_MANIFEST
    listing = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST_LIST, "manifests": []}
    assert parse(listing, mt.DOCKER_MANIFEST_LIST).media_type == mt.DOCKER_MANIFEST_LIST


def test_media_type_from_body_when_header_is_generic() -> None:
    assert parse(image(), "application/json").media_type == mt.OCI_MANIFEST
    doc = image()
    del doc["mediaType"]
    assert parse(doc, None).media_type == mt.OCI_MANIFEST


def test_foreign_layers_are_not_required() -> None:
    foreign = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": C,
        "size": 1,
        "urls": ["https://example.invalid/layer"],
    }
    parsed = parse(image(layers=[foreign]))
    assert [d.digest for d in parsed.blobs] == [A]


@pytest.mark.parametrize(
    ("doc", "content_type"),
    [
        ([], mt.OCI_MANIFEST),
        ("string", mt.OCI_MANIFEST),
        (image(schemaVersion=1), mt.OCI_MANIFEST),
        (image(), mt.OCI_INDEX),
        (image(), "application/vnd.docker.distribution.manifest.v1+prettyjws"),
        (image(), "text/plain"),
        (image(config={"digest": A, "size": 2}), mt.OCI_MANIFEST),
        (image(config={"mediaType": "x", "digest": "sha256:zz", "size": 2}), mt.OCI_MANIFEST),
        (image(config={"mediaType": "x", "digest": A, "size": -1}), mt.OCI_MANIFEST),
        (image(config={"mediaType": "x", "digest": A, "size": True}), mt.OCI_MANIFEST),
        (image(layers="nope"), mt.OCI_MANIFEST),
        (image(annotations={"a": 1}), mt.OCI_MANIFEST),
        (image(subject="x"), mt.OCI_MANIFEST),
        (image(artifactType=5), mt.OCI_MANIFEST),
        ({"schemaVersion": 2}, None),
    ],
)
def test_invalid_manifests(doc: object, content_type: str | None) -> None:
    with pytest.raises(ManifestInvalid):
        parse(doc, content_type)


def test_not_json_and_deep_nesting() -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(b"\xff\xfe not json", mt.OCI_MANIFEST)
    with pytest.raises(ManifestInvalid):
        parse_manifest(b"[" * 100_000 + b"]" * 100_000, mt.OCI_MANIFEST)

"""Content discovery: the referrers API (end-12a, end-12b)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .oci import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Pushed,
    assert_not_server_error,
    describe,
    digest_of,
    expect,
    link_next,
    manifest_path,
    push,
    push_artifact,
    push_image,
    push_index,
    random_bytes,
    referrers_path,
    unique,
    upload_blob,
)

SBOM = "application/vnd.example.sbom.v1"
SIG = "application/vnd.example.signature.v1"


def _referrers(client: httpx.Client, repo: str, digest: str,
               artifact_type: str | None = None) -> httpx.Response:
    params = {"artifactType": artifact_type} if artifact_type else None
    resp = client.get(referrers_path(repo, digest), params=params)
    expect(resp, 200)
    return resp


def _entries(resp: httpx.Response) -> dict[str, dict[str, Any]]:
    return {d["digest"]: d for d in resp.json()["manifests"]}


def test_referrers_content_type_is_oci_index(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    resp = _referrers(client, repo, subject.digest)
    assert resp.headers.get("content-type", "").split(";")[0].strip() == OCI_INDEX, describe(resp)


def test_referrers_empty_is_empty_index(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    body = _referrers(client, repo, subject.digest).json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    assert body["manifests"] == []


def test_referrers_unknown_subject_is_200_empty(client: httpx.Client) -> None:
    repo = unique("ref")
    push_image(client, repo, "v1")
    resp = _referrers(client, repo, digest_of(random_bytes(16)))
    assert resp.json()["manifests"] == [], describe(resp)


def test_referrers_unknown_repository_is_not_404(client: httpx.Client) -> None:
    resp = client.get(referrers_path(unique("ref-none"), digest_of(random_bytes(16))))
    expect(resp, 200)
    assert resp.json()["manifests"] == [], describe(resp)


def test_referrers_lists_artifact_descriptor(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    annotations = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z",
                   "org.example.sbom.format": "json"}
    sbom = push_artifact(client, repo, subject, SBOM, annotations=annotations)
    resp = _referrers(client, repo, subject.digest)
    entries = _entries(resp)
    assert list(entries) == [sbom.digest], describe(resp)
    entry = entries[sbom.digest]
    assert entry["mediaType"] == OCI_MANIFEST
    assert entry["size"] == sbom.size
    assert entry["artifactType"] == SBOM
    assert entry["annotations"] == annotations


def test_referrers_artifact_type_falls_back_to_config_media_type(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    referrer = push_image(client, repo, subject=subject.descriptor())
    entry = _entries(_referrers(client, repo, subject.digest))[referrer.digest]
    assert entry["artifactType"] == OCI_CONFIG


def test_referrers_custom_config_media_type_as_artifact_type(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    cfg_type = "application/vnd.example.config.v1+json"
    referrer = push_image(client, repo, subject=subject.descriptor(), config_type=cfg_type)
    entry = _entries(_referrers(client, repo, subject.digest))[referrer.digest]
    assert entry["artifactType"] == cfg_type


def test_referrers_index_with_artifact_type(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    index = push_index(client, repo, [push_image(client, repo)], subject=subject.descriptor(),
                       artifact_type="application/vnd.example.bundle.v1",
                       annotations={"k": "v"})
    entry = _entries(_referrers(client, repo, subject.digest))[index.digest]
    assert entry["mediaType"] == OCI_INDEX
    assert entry["artifactType"] == "application/vnd.example.bundle.v1"
    assert entry["annotations"] == {"k": "v"}
    assert entry["size"] == index.size


def test_referrers_index_without_artifact_type_omits_it(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    index = push_index(client, repo, [push_image(client, repo)], subject=subject.descriptor(),
                       annotations={"org.opencontainers.image.created": "2023-01-01T07:21:33Z"})
    entry = _entries(_referrers(client, repo, subject.digest))[index.digest]
    assert "artifactType" not in entry, entry
    assert entry["annotations"] == {"org.opencontainers.image.created": "2023-01-01T07:21:33Z"}


def test_referrers_lists_several(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    pushed = [push_artifact(client, repo, subject, SBOM), push_artifact(client, repo, subject, SIG),
              push_artifact(client, repo, subject, SBOM)]
    entries = _entries(_referrers(client, repo, subject.digest))
    assert set(entries) == {p.digest for p in pushed}


def test_referrers_only_lists_direct_referrers_of_subject(client: httpx.Client) -> None:
    repo = unique("ref")
    subject, other = push_image(client, repo, "v1"), push_image(client, repo, "v2")
    mine = push_artifact(client, repo, subject, SBOM)
    push_artifact(client, repo, other, SBOM)
    push_artifact(client, repo, mine, SIG)  # a referrer of the referrer
    assert set(_entries(_referrers(client, repo, subject.digest))) == {mine.digest}


def test_referrers_filter_by_artifact_type(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    sbom = push_artifact(client, repo, subject, SBOM)
    push_artifact(client, repo, subject, SIG)
    resp = _referrers(client, repo, subject.digest, SBOM)
    assert set(_entries(resp)) == {sbom.digest}, describe(resp)


def test_referrers_filter_sets_oci_filters_applied(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    push_artifact(client, repo, subject, SBOM)
    resp = _referrers(client, repo, subject.digest, SBOM)
    applied = [v.strip() for v in resp.headers.get_list("oci-filters-applied", split_commas=True)]
    assert applied == ["artifactType"], describe(resp)


def test_referrers_filter_without_match_is_empty(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    push_artifact(client, repo, subject, SBOM)
    resp = _referrers(client, repo, subject.digest, "application/vnd.example.none")
    assert resp.json()["manifests"] == [], describe(resp)
    assert resp.headers.get("oci-filters-applied") == "artifactType", describe(resp)


def test_referrers_without_filter_has_no_filters_applied(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    push_artifact(client, repo, subject, SBOM)
    resp = _referrers(client, repo, subject.digest)
    assert "oci-filters-applied" not in resp.headers, describe(resp)


def test_referrer_pushed_before_subject(client: httpx.Client) -> None:
    elsewhere, repo = unique("ref"), unique("ref")
    subject = push_image(client, elsewhere, "v0")  # exists only in `elsewhere` for now
    sbom = push_artifact(client, repo, subject, SBOM)
    assert set(_entries(_referrers(client, repo, subject.digest))) == {sbom.digest}
    for blob in subject.blobs.values():
        upload_blob(client, repo, blob)
    push(client, repo, Pushed(subject.body, subject.media_type), "v1")
    assert set(_entries(_referrers(client, repo, subject.digest))) == {sbom.digest}


def test_referrers_are_scoped_to_repository(client: httpx.Client) -> None:
    repo, other = unique("ref"), unique("ref")
    subject = push_image(client, repo, "v1")
    push_artifact(client, other, subject, SBOM)  # same subject digest, other repository
    assert _referrers(client, repo, subject.digest).json()["manifests"] == []


def test_referrer_pushed_by_tag_is_listed(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    sbom = push_artifact(client, repo, subject, SBOM, ref="sbom")
    assert sbom.digest in _entries(_referrers(client, repo, subject.digest))


def test_deleted_referrer_is_not_listed(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    keep = push_artifact(client, repo, subject, SBOM)
    drop = push_artifact(client, repo, subject, SIG)
    expect(client.delete(manifest_path(repo, drop.digest)), 202)
    assert set(_entries(_referrers(client, repo, subject.digest))) == {keep.digest}


def test_referrers_sha512_subject_digest(client: httpx.Client) -> None:
    repo = unique("ref")
    push_image(client, repo, "v1")
    resp = _referrers(client, repo, digest_of(random_bytes(16), "sha512"))
    assert resp.json()["manifests"] == []


@pytest.mark.parametrize("bad", ["sha256:abc", "notadigest", "sha256:" + "Z" * 64, "latest"])
def test_referrers_invalid_digest_is_400(client: httpx.Client, bad: str) -> None:
    repo = unique("ref")
    push_image(client, repo, "v1")
    resp = client.get(referrers_path(repo, bad))
    assert_not_server_error(resp)
    expect(resp, 400)


def test_referrers_filter_matches_config_media_type_fallback(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    image_ref = push_image(client, repo, subject=subject.descriptor())  # no artifactType
    push_artifact(client, repo, subject, SBOM)
    resp = _referrers(client, repo, subject.digest, OCI_CONFIG)
    assert set(_entries(resp)) == {image_ref.digest}, describe(resp)


def test_referrers_many_are_all_reachable(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    pushed = {push_artifact(client, repo, subject, SBOM).digest for _ in range(30)}
    seen: list[str] = []
    url: str | None = referrers_path(repo, subject.digest)
    while url:
        resp = expect(client.get(url), 200)
        seen.extend(d["digest"] for d in resp.json()["manifests"])
        url = link_next(resp)
        assert len(seen) <= len(pushed), describe(resp)
    assert sorted(seen) == sorted(pushed)


def test_referrers_subject_is_an_index(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_index(client, repo, [push_image(client, repo)], "multi")
    sig = push_artifact(client, repo, subject, SIG)
    entries = _entries(_referrers(client, repo, subject.digest))
    assert set(entries) == {sig.digest}
    assert entries[sig.digest]["artifactType"] == SIG


def test_referrer_without_annotations(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    sbom = push_artifact(client, repo, subject, SBOM)
    entry = _entries(_referrers(client, repo, subject.digest))[sbom.digest]
    assert entry.get("annotations") in (None, {}), entry
    assert entry["artifactType"] == SBOM


def test_referrers_filter_with_plus_in_artifact_type(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    plus = push_artifact(client, repo, subject, "application/vnd.example.sbom+json")
    push_artifact(client, repo, subject, SBOM)
    resp = _referrers(client, repo, subject.digest, "application/vnd.example.sbom+json")
    assert set(_entries(resp)) == {plus.digest}, describe(resp)


def test_referrers_preserve_unicode_annotations(client: httpx.Client) -> None:
    repo = unique("ref")
    subject = push_image(client, repo, "v1")
    annotations = {"org.example.note": "caf\u00e9 \u2603", "org.example.empty": ""}
    sbom = push_artifact(client, repo, subject, SBOM, annotations=annotations)
    entry = _entries(_referrers(client, repo, subject.digest))[sbom.digest]
    assert entry["annotations"] == annotations

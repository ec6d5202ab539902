"""Hypothesis properties of the parsers, called directly: whatever the input, they return
a value or raise the domain error that maps to the spec's code, never anything else."""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from cargohold.digest import Digest
from cargohold.errors import (
    BlobUploadInvalid,
    DigestInvalid,
    ManifestInvalid,
    NameInvalid,
    PaginationInvalid,
    SizeInvalid,
    TagInvalid,
)
from cargohold.http.handlers.common import MAX_PAGE, chunk_bounds, content_range, pagination
from cargohold.manifest.parse import parse_manifest
from cargohold.reference import MAX_NAME_LENGTH, parse_ref, validate_name, validate_tag

from .strategies import (
    OCI_MANIFEST,
    fuzz,
    hostile_text,
    manifest_documents,
    media_types,
    names,
    sha256_digests,
    tags,
)

NAME = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)


# ---------------------------------------------------------------- names, tags, references


@fuzz(300)
@given(names)
def test_every_name_of_the_grammar_is_accepted(name: str) -> None:
    assert NAME.match(name)  # the strategy itself follows the spec's grammar
    assert validate_name(name) == name


@fuzz(500)
@given(hostile_text)
def test_any_text_is_a_valid_name_or_name_invalid(text: str) -> None:
    try:
        validate_name(text)
    except NameInvalid as exc:
        assert exc.message
        return
    assert len(text) <= MAX_NAME_LENGTH
    assert ".." not in text and "//" not in text and not text.startswith("/")
    assert set(text) <= set(string.ascii_lowercase + string.digits + "._-/")


@fuzz(300)
@given(tags)
def test_every_tag_of_the_grammar_is_accepted(tag: str) -> None:
    assert validate_tag(tag) == tag


@fuzz(500)
@given(hostile_text)
def test_any_text_is_a_valid_tag_or_tag_invalid(text: str) -> None:
    try:
        validate_tag(text)
    except TagInvalid:
        return
    assert 1 <= len(text) <= 128
    assert set(text) <= set(string.ascii_letters + string.digits + "._-")
    assert text[0] not in ".-"


@fuzz(300)
@given(names, st.one_of(st.none(), tags), st.one_of(st.none(), sha256_digests))
def test_valid_references_round_trip(name: str, tag: str | None, digest: str | None) -> None:
    text = name + (f":{tag}" if tag and not digest else "") + (f"@{digest}" if digest else "")
    ref = parse_ref(text)
    assert str(ref) == text
    assert parse_ref(str(ref)) == ref


@fuzz(500)
@given(hostile_text)
def test_any_text_is_a_reference_or_a_domain_error(text: str) -> None:
    try:
        ref = parse_ref(text)
    except (NameInvalid, TagInvalid, DigestInvalid):
        return
    validate_name(ref.repository)


# ---------------------------------------------------------------- digests


@fuzz(200)
@given(st.binary(max_size=256), st.sampled_from(["sha256", "sha512"]))
def test_computed_digests_parse_back(data: bytes, algorithm: str) -> None:
    digest = Digest.of(data, algorithm)
    assert Digest.parse(str(digest)) == digest


@fuzz(500)
@given(st.one_of(hostile_text, st.from_regex(r"[a-z0-9+._-]{1,12}:[a-zA-Z0-9=_-]{0,140}")))
def test_any_text_is_a_digest_or_digest_invalid(text: str) -> None:
    try:
        digest = Digest.parse(text)
    except DigestInvalid:
        return
    assert str(digest) == text
    assert digest.algorithm in ("sha256", "sha512")
    assert set(digest.encoded) <= set("0123456789abcdef")


# ---------------------------------------------------------------- manifests


def _parse_or_invalid(body: bytes, content_type: str | None) -> None:
    try:
        parsed = parse_manifest(body, content_type)
    except ManifestInvalid as exc:
        assert exc.message
        return
    # Whatever was accepted is storable: strings without NUL, digests that parse.
    for descriptor in [*parsed.blobs, *parsed.manifests]:
        Digest.parse(descriptor.digest)
        assert 0 <= descriptor.size < 2**63
        assert "\x00" not in descriptor.media_type
    assert "\x00" not in (parsed.artifact_type or "")


@fuzz(300)
@given(st.binary(max_size=2000), st.one_of(st.none(), media_types))
def test_any_bytes_are_a_manifest_or_manifest_invalid(body: bytes, content_type: str) -> None:
    _parse_or_invalid(body, content_type)


@fuzz(300)
@given(manifest_documents, st.one_of(st.none(), media_types))
def test_near_manifests_are_parsed_or_manifest_invalid(
    doc: dict[str, Any], content_type: str
) -> None:
    _parse_or_invalid(json.dumps(doc).encode(), content_type)


@fuzz(20)
@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_manifest_invalid(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    body = (opener * depth + "1" + closer * depth).encode()
    with pytest.raises(ManifestInvalid):
        parse_manifest(body, OCI_MANIFEST)


@fuzz(20)
@given(st.integers(min_value=4000, max_value=50_000), st.sampled_from(["schemaVersion", "size"]))
def test_huge_numbers_are_manifest_invalid(digits: int, field: str) -> None:
    number = "7" * digits
    body = (
        f'{{"schemaVersion": {number}}}'
        if field == "schemaVersion"
        else f'{{"schemaVersion": 2, "config": {{"mediaType": "a", "digest": "sha256:{"a" * 64}",'
        f' "size": {number}}}, "layers": []}}'
    ).encode()
    with pytest.raises(ManifestInvalid):
        parse_manifest(body, OCI_MANIFEST)


# ---------------------------------------------------------------- request headers and query


def _request(headers: dict[bytes, bytes] | None = None, query: bytes = b"") -> Request:
    return Request(
        {
            "type": "http",
            "method": "PATCH",
            "path": "/v2/x/blobs/uploads/u",
            "headers": list((headers or {}).items()),
            "query_string": query,
        }
    )


@fuzz(500)
@given(
    st.one_of(
        st.binary(max_size=60),
        st.from_regex(rb"(bytes[ =])?\d{1,25}-\d{1,25}(/(\d+|\*))?", fullmatch=True),
    )
)
def test_content_range_is_bounds_or_blob_upload_invalid(raw: bytes) -> None:
    try:
        bounds = content_range(_request({b"content-range": raw}))
    except BlobUploadInvalid:
        return
    assert bounds is not None
    start, end = bounds
    assert 0 <= start <= end


@fuzz(300)
@given(
    st.integers(0, 2**64),
    st.integers(0, 2**64),
    st.one_of(st.none(), st.integers(0, 2**64), st.binary(max_size=12)),
)
def test_chunk_bounds_agree_with_content_length(start: int, end: int, length: Any) -> None:
    headers = {b"content-range": f"{start}-{end}".encode()}
    if length is not None:
        headers[b"content-length"] = str(length).encode() if isinstance(length, int) else length
    try:
        first, size = chunk_bounds(_request(headers))
    except (BlobUploadInvalid, SizeInvalid):
        return
    assert first == start and size == end - start + 1
    assert length is None or int(length) == size


@fuzz(500)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["n", "last", "N", "x"]),
            st.one_of(st.integers(-5, 2**70).map(str), hostile_text),
        ),
        max_size=4,
    )
)
def test_pagination_is_bounded_or_refused(params: list[tuple[str, str]]) -> None:
    try:
        limit, last = pagination(_request(query=urlencode(params).encode()))
    except PaginationInvalid:
        assert (
            [k for k, _ in params].count("n") > 1
            or [k for k, _ in params].count("last") > 1
            or any(k == "n" and v and not v.isdigit() for k, v in params)
        )
        return
    assert limit is None or 0 <= limit <= MAX_PAGE
    assert last is None or last

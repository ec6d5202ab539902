"""Hypothesis properties of /v2 over HTTP, against both live setups (SQLite + files, and
PostgreSQL + S3 + Redis): hostile names, references, digests, Content-Range headers,
pagination parameters and manifest bodies never cause a 5xx, and what the spec's grammar
refuses gets the spec's error code."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from hypothesis import given
from hypothesis import strategies as st
from tests.api.oci import describe, error_codes, unique

from cargohold.digest import Digest
from cargohold.errors import DigestInvalid, NameInvalid, TagInvalid
from cargohold.reference import validate_name, validate_tag

from .strategies import (
    OCI_INDEX,
    fuzz,
    hostile_text,
    manifest_documents,
    media_types,
    names,
    sha256_digests,
    tags,
)

SPEC_CODES = {
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
    "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS",
}  # fmt: skip
EMPTY_INDEX = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()


def _segment(text: str) -> str:
    """One path segment, every reserved character escaped (the server decodes it); a lone
    surrogate goes as the bytes it would have, which are no valid UTF-8."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _spec_error(resp: httpx.Response, status: int | None = None) -> set[str]:
    assert resp.status_code < 500, describe(resp)
    if status is not None:
        assert resp.status_code == status, describe(resp)
    codes = set(error_codes(resp))
    assert codes <= SPEC_CODES, describe(resp)
    return codes


def _routable(text: str) -> bool:
    """Whether `text` stays one path segment: not empty, no / or newline or NUL (which
    make the path another route, or none), not . or .. (which clients resolve away)."""
    return bool(text) and not set(text) & {"\x00", "\n", "/"} and text not in (".", "..")


def _valid(check: Any, text: str) -> bool:
    try:
        check(text)
    except (NameInvalid, TagInvalid, DigestInvalid):
        return False
    return True


@fuzz(60)
@given(name=st.one_of(hostile_text, names))
def test_names_are_known_unknown_or_name_invalid(client: httpx.Client, name: str) -> None:
    resp = client.get(f"/v2/{_segment(name)}/tags/list")
    if _valid(validate_name, name):
        assert resp.status_code in (200, 404), describe(resp)
        if resp.status_code == 404:
            assert _spec_error(resp) == {"NAME_UNKNOWN"}
    elif _routable(name):
        assert "NAME_INVALID" in _spec_error(resp, 400)
    else:
        assert resp.status_code < 500 and (resp.status_code < 400 or _spec_error(resp))


@fuzz(60)
@given(tag=st.one_of(hostile_text.filter(lambda t: ":" not in t), tags))
def test_tags_are_pushed_or_refused_by_the_grammar(client: httpx.Client, tag: str) -> None:
    repo = unique("fuzz-tags")
    resp = client.put(
        f"/v2/{repo}/manifests/{_segment(tag)}",
        content=EMPTY_INDEX,
        headers={"Content-Type": OCI_INDEX},
    )
    if _valid(validate_tag, tag):
        assert resp.status_code == 201, describe(resp)
        again = client.get(f"/v2/{repo}/manifests/{_segment(tag)}")
        assert again.status_code == 200 and again.content == EMPTY_INDEX, describe(again)
    elif _routable(tag):
        # The spec has no tag code; an invalid tag is an invalid manifest reference.
        assert _spec_error(resp, 400) & {"MANIFEST_INVALID", "NAME_INVALID", "TAG_INVALID"}
    else:  # another path: a redirect (trailing /) or no endpoint
        assert resp.status_code < 400 or _spec_error(resp)


@fuzz(60)
@given(
    digest=st.one_of(hostile_text, sha256_digests, st.from_regex(r"sha(256|512):[a-f0-9]{60,130}"))
)
def test_digests_are_unknown_or_digest_invalid(client: httpx.Client, digest: str) -> None:
    resp = client.get(f"/v2/fuzz/digests/blobs/{_segment(digest)}")
    if _valid(Digest.parse, digest):
        assert _spec_error(resp, 404) & {"BLOB_UNKNOWN", "NAME_UNKNOWN"}
    elif _routable(digest):
        assert _spec_error(resp, 400) == {"DIGEST_INVALID"}
    else:  # another path: a redirect (trailing /) or no endpoint
        assert resp.status_code < 400 or _spec_error(resp)


@fuzz(40)
@given(
    header=st.one_of(
        # Bytes a client can send in a header at all (no control characters).
        st.binary(max_size=40).filter(
            lambda b: all((c >= 0x20 and c != 0x7F) or c == 0x09 for c in b)
        ),
        st.from_regex(rb"(bytes[ =])?[0-9]{1,22}-[0-9]{1,22}(/([0-9]+|\*))?", fullmatch=True),
    ),
    body=st.binary(max_size=64),
)
def test_content_range_never_breaks_an_upload(
    client: httpx.Client, header: bytes, body: bytes
) -> None:
    location = client.post("/v2/fuzz/ranges/blobs/uploads/").headers["location"]
    resp = client.patch(
        location,
        content=body,
        headers=[
            (b"Content-Range", header.strip(b" \t")),
            (b"Content-Type", b"application/octet-stream"),
        ],
    )
    if resp.status_code != 202:
        assert resp.status_code in (400, 416), describe(resp)
        if resp.headers.get("content-type", "").startswith("text/plain"):
            # Bytes HTTP itself forbids in a header: the server's HTTP parser refused the
            # request before the registry saw it.
            assert resp.text == "Invalid HTTP request received.", describe(resp)
        else:
            assert _spec_error(resp) <= {"BLOB_UPLOAD_INVALID", "SIZE_INVALID"}
    # Whatever happened, the session still answers with what it holds.
    status = client.get(location)
    assert status.status_code == 204, describe(status)
    held = 0 if resp.status_code != 202 else len(body)
    assert status.headers["range"] == f"0-{max(held - 1, 0)}", describe(status)
    client.delete(location)


@fuzz(60)
@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(["n", "last", "n", "last", "x"]),
            st.one_of(st.integers(-3, 2**70).map(str), hostile_text, names),
        ),
        max_size=4,
    ),
    catalog=st.booleans(),
)
def test_pagination_answers_a_page_or_an_error(
    client: httpx.Client, params: list[tuple[str, str]], catalog: bool
) -> None:
    path = "/v2/_catalog" if catalog else "/v2/fuzz/pages/tags/list"
    resp = client.get(f"{path}?{urlencode(params)}")
    if resp.status_code != 200:
        _spec_error(resp)
        assert resp.status_code in (400, 404), describe(resp)
        return
    items = resp.json()["repositories" if catalog else "tags"]
    numbers = [v for k, v in params if k == "n"]
    if numbers and numbers[0].isdigit():
        assert len(items) <= int(numbers[0])


@fuzz(80)
@given(doc=manifest_documents, content_type=st.one_of(st.none(), media_types))
def test_manifest_bodies_are_stored_or_refused(
    client: httpx.Client, doc: dict[str, Any], content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = client.put(
        "/v2/fuzz/manifests/manifests/latest", content=json.dumps(doc).encode(), headers=headers
    )
    if resp.status_code != 201:
        assert resp.status_code in (400, 404), describe(resp)
        assert _spec_error(resp) & {"MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"}

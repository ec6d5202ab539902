from __future__ import annotations

import hashlib

import pytest

from cargohold.digest import Digest, is_digest_like
from cargohold.errors import DigestInvalid, NameInvalid, TagInvalid
from cargohold.reference import validate_name, validate_tag

SHA256 = "sha256:" + "a" * 64
SHA512 = "sha512:" + "b" * 128


def test_parse_valid_digests() -> None:
    assert str(Digest.parse(SHA256)) == SHA256
    assert Digest.parse(SHA512).algorithm == "sha512"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "md5:" + "a" * 32,
        "sha256:../../etc/passwd",
        "sha256:" + "a" * 64 + "/x",
        "SHA256:" + "a" * 64,
        "x" * 1000,
    ],
)
def test_parse_rejects_invalid_digests(text: str) -> None:
    with pytest.raises(DigestInvalid):
        Digest.parse(text)


def test_digest_of_data() -> None:
    assert str(Digest.of(b"abc")) == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert Digest.of(b"abc", "sha512").encoded == hashlib.sha512(b"abc").hexdigest()


def test_digest_like_references() -> None:
    assert is_digest_like(SHA256)
    assert not is_digest_like("latest")


@pytest.mark.parametrize(
    "name", ["a", "team/app", "a.b/c_d/e__f", "x-y--z", "a0/b1/c2", "library/ubuntu"]
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Team/app", "a//b", "/a", "a/", "a/../b", "..", "a_-b", "-a", "a.", "a b", "a" * 256],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(NameInvalid):
        validate_name(name)


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_x", "A-b_c.d", "x" * 128])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".x", "-x", "x" * 129, "a/b", "a:b", "ünï"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(TagInvalid):
        validate_tag(tag)

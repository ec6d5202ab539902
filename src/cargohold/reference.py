"""Repository names and tags, with the grammar the distribution spec requires."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cargohold.digest import Digest
from cargohold.errors import NameInvalid, TagInvalid

_NAME = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")

# Many clients cap "host:port/name" at 255 characters; keep well inside that.
MAX_NAME_LENGTH = 255


def validate_name(name: str) -> str:
    # fullmatch: with match, `$` would also accept a trailing newline ("latest\n").
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise NameInvalid(
            f"invalid repository name {name[:100]!r}: use lowercase letters, digits and "
            "separators (., _, __, -) in path components separated by /",
            detail={"name": name[:300]},
        )
    return name


def validate_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise TagInvalid(
            f"invalid tag {tag[:140]!r}: at most 128 characters of [a-zA-Z0-9_.-], "
            "not starting with . or -",
            detail={"tag": tag[:300]},
        )
    return tag


@dataclass(frozen=True, slots=True)
class Ref:
    """NAME, NAME:TAG or NAME@DIGEST (the registry host is never part of it)."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        if self.tag:
            return f"{self.repository}:{self.tag}"
        return self.repository


def parse_ref(text: str) -> Ref:
    """Split and validate a reference; NameInvalid/TagInvalid/DigestInvalid on bad input."""
    name, at, digest = text.partition("@")
    head, slash, last = name.rpartition("/")
    tag = None
    if ":" in last:
        last, _, tag = last.partition(":")
    repository = f"{head}{slash}{last}"
    if ":" in repository:  # only a host:port has a colon before the last component
        raise NameInvalid(
            f"{text!r} has a registry host or port: give the repository without it "
            "(team/app:prod, not localhost:5000/team/app:prod)"
        )
    validate_name(repository)
    if at:
        if tag is not None:
            raise TagInvalid(f"{text!r} has both a tag and a digest: give one of them")
        return Ref(repository, digest=str(Digest.parse(digest)))
    if tag is not None:
        return Ref(repository, tag=validate_tag(tag))
    return Ref(repository)

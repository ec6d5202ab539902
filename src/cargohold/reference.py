"""Repository names and tags, with the grammar the distribution spec requires."""

from __future__ import annotations

import re

from cargohold.errors import NameInvalid, TagInvalid

_NAME = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")

# Many clients cap "host:port/name" at 255 characters; keep well inside that.
MAX_NAME_LENGTH = 255


def validate_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise NameInvalid(
            f"invalid repository name {name[:100]!r}: use lowercase letters, digits and "
            "separators (., _, __, -) in path components separated by /",
            detail={"name": name[:300]},
        )
    return name


def validate_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise TagInvalid(
            f"invalid tag {tag[:140]!r}: at most 128 characters of [a-zA-Z0-9_.-], "
            "not starting with . or -",
            detail={"tag": tag[:300]},
        )
    return tag

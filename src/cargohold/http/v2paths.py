"""Which repository and which kind of route a /v2 path names, read exactly as the route
table (routes.py) reads it: the name takes as much as it can and each route ends in a
fixed suffix, so a name may itself contain "blobs", "manifests", "tags" or "referrers"
(acme/tags/app). Access control and the metrics' route labels both ask here, once per
distinct path (pulls repeat the same few)."""

from __future__ import annotations

import functools
import re

# In route order.
_ROUTES = (
    (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/[^/]*$"), "uploads"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/[^/]+$"), "blobs"),
    (re.compile(r"^/v2/(?P<name>.+)/manifests/[^/]+$"), "manifests"),
    (re.compile(r"^/v2/(?P<name>.+)/tags/list$"), "tags"),
    (re.compile(r"^/v2/(?P<name>.+)/referrers/[^/]+$"), "referrers"),
)


@functools.lru_cache(maxsize=4096)
def v2_route(path: str) -> tuple[str, str] | None:
    """(repository, kind) for a repository route, kind one of uploads, blobs, manifests,
    tags, referrers; None for any other path."""
    for pattern, kind in _ROUTES:
        match = pattern.match(path)
        if match is not None:
            return match.group("name"), kind
    return None

"""What a restarted registry must show of the pushes a Ledger recorded.

Each check returns a description of what is wrong, or None.
"""

from __future__ import annotations

import httpx
from tests.reliability.crash_clients import OCI_MANIFEST, error_code, sha256
from tests.reliability.crash_ledger import BlobPush, ManifestPush


def _describe(what: str, response: httpx.Response) -> str:
    return f"{what}: {response.status_code} {response.text[:200]!r}"


def acknowledged_blob(http: httpx.Client, push: BlobPush) -> str | None:
    path = f"/v2/{push.repository}/blobs/{push.digest}"
    head = http.head(path)
    if head.status_code != 200:
        return _describe(f"acknowledged {push.how} blob {path}: HEAD", head)
    return _whole(http, path, head, push, f"acknowledged {push.how} blob {path}: GET")


def _whole(
    http: httpx.Client, path: str, head: httpx.Response, push: BlobPush, what: str
) -> str | None:
    """After a HEAD 200: the size it gives and the bytes GET gives are the pushed ones."""
    if head.headers.get("content-length") != str(len(push.data)):
        return f"HEAD {path}: size {head.headers.get('content-length')}, pushed {len(push.data)}"
    get = http.get(path)
    if get.status_code != 200 or sha256(get.content) != push.digest:
        return _describe(f"{what} gives other bytes", get)
    return None


def blob_in_doubt(http: httpx.Client, push: BlobPush) -> str | None:
    """Absent, or there whole: never a wrong size, never other bytes."""
    path = f"/v2/{push.repository}/blobs/{push.digest}"
    head = http.head(path)
    if head.status_code == 404:
        # Clients wait while the checks run, so HEAD and GET must agree.
        get = http.get(path)
        if get.status_code == 404 and error_code(get) == "BLOB_UNKNOWN":
            return None
        return _describe(f"unacknowledged blob {path}: HEAD 404, GET", get)
    if head.status_code != 200:
        return _describe(f"unacknowledged blob {path}: HEAD", head)
    return _whole(http, path, head, push, f"unacknowledged blob {path}: GET")


def acknowledged_manifest(http: httpx.Client, push: ManifestPush) -> str | None:
    for reference in (push.tag, push.digest):
        path = f"/v2/{push.repository}/manifests/{reference}"
        get = http.get(path, headers={"Accept": OCI_MANIFEST})
        if get.status_code != 200:
            return _describe(f"acknowledged manifest {path}", get)
        if get.content != push.body or get.headers.get("docker-content-digest") != push.digest:
            return f"GET {path}: other content than acknowledged"
    return None


def manifest_in_doubt(http: httpx.Client, push: ManifestPush) -> str | None:
    for reference in (push.digest, push.tag):
        path = f"/v2/{push.repository}/manifests/{reference}"
        get = http.get(path, headers={"Accept": OCI_MANIFEST})
        if get.status_code == 404 and error_code(get) in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"):
            continue
        if get.status_code != 200:
            return _describe(f"unacknowledged manifest {path}", get)
        if get.content != push.body or get.headers.get("docker-content-digest") != push.digest:
            return f"GET {path}: unacknowledged manifest shown with other content"
    return None

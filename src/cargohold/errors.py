"""Domain errors raised by the registry core.

They carry no HTTP: http/errors.py maps each one to an OCI error code and status.
"""

from __future__ import annotations

from typing import Any

from cargohold.sizes import format_size


class RegistryError(Exception):
    """Base class: `message` is for people, `detail` is structured data for clients."""

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class BlobUnknown(RegistryError):
    pass


class BlobUploadInvalid(RegistryError):
    pass


class BlobUploadUnknown(RegistryError):
    pass


class DigestInvalid(RegistryError):
    pass


class ManifestBlobUnknown(RegistryError):
    pass


class ManifestInvalid(RegistryError):
    pass


class ManifestUnknown(RegistryError):
    pass


class ManifestTooLarge(RegistryError):
    pass


class NameInvalid(RegistryError):
    pass


class NameUnknown(RegistryError):
    pass


class TagInvalid(RegistryError):
    pass


class SizeInvalid(RegistryError):
    pass


class BlobTooLarge(RegistryError):
    """An upload would grow past the registry's configured maximum blob size."""


class RangeInvalid(RegistryError):
    """A chunk does not continue where the upload stands (the spec's 416)."""

    def __init__(self, message: str, upload_id: str, offset: int) -> None:
        super().__init__(message)
        self.upload_id = upload_id
        self.offset = offset


class Unsupported(RegistryError):
    pass


class Denied(RegistryError):
    pass


class Unauthorized(RegistryError):
    pass


class TooManyRequests(RegistryError):
    pass


class PaginationInvalid(RegistryError):
    pass


class TagImmutable(Denied):
    """A push, delete or rollback would move or remove a tag that a rule protects."""


class Conflict(RegistryError):
    """The change clashes with what exists (a rule defined twice, say)."""


class QuotaExceeded(Denied):
    """Storing a blob would take its namespace over the namespace's quota."""

    def __init__(self, namespace: str, usage: int, limit: int, needed: int) -> None:
        super().__init__(
            f"namespace {namespace} would use {format_size(usage + needed)} of its "
            f"{format_size(limit)} quota (now {format_size(usage)}); delete tags and run "
            "garbage collection, or ask an admin to raise the quota",
            detail={"namespace": namespace, "usage": usage, "limit": limit, "needed": needed},
        )
        self.namespace = namespace
        self.usage = usage
        self.limit = limit
        self.needed = needed


class ScanPolicyViolation(Denied):
    """A pull the namespace's vulnerability-scan policy refuses (findings, or no scan yet)."""


class StorageFull(RegistryError):
    """The disk under the blob store or the embedded database has no room left. What the
    request was writing has been rolled back; what was stored before is intact."""


class StorageUnavailable(RegistryError):
    """The object store, database or Redis failed or could not be reached. Nothing the
    request was writing became visible; retrying later is safe."""

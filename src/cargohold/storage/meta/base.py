"""The MetadataStore protocol: repositories, manifests, tags, references, uploads.

Names, digests and tags arrive validated by the core; the store only keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    digest: str
    media_type: str
    content: bytes
    artifact_type: str | None = None
    subject: str | None = None
    annotations: dict[str, str] | None = None

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True, slots=True)
class ReferrerRecord:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class UploadRecord:
    upload_id: str
    repository: str
    algorithm: str
    created_at: datetime


class MetadataStore(Protocol):
    # -- repositories
    def repository_exists(self, name: str) -> bool: ...

    def list_repositories(self, after: str | None, limit: int | None) -> list[str]:
        """Repository names in ASCII order, strictly after `after`, at most `limit`."""

    # -- blobs
    def link_blob(self, repository: str, digest: str, size: int) -> None:
        """Record a committed blob and make it visible in `repository` (created if new)."""

    def blob_size(self, repository: str, digest: str) -> int | None:
        """Size of a blob visible in `repository`, or None."""

    def blob_sizes(self, repository: str, digests: Iterable[str]) -> dict[str, int]:
        """Sizes of those of `digests` visible in `repository`."""

    def unlink_blob(self, repository: str, digest: str) -> bool:
        """Hide a blob from `repository`; False when it was not visible there."""

    # -- manifests and tags
    def put_manifest(
        self,
        repository: str,
        manifest: ManifestRecord,
        blob_digests: Sequence[str],
        child_digests: Sequence[str],
        tags: Sequence[str],
    ) -> None:
        """Store a manifest with its references and point `tags` at it, atomically.

        Storing a manifest that exists already only moves the tags.
        """

    def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None: ...

    def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None: ...

    def existing_manifests(self, repository: str, digests: Iterable[str]) -> set[str]: ...

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Remove a manifest, its references and every tag pointing at it."""

    def delete_tag(self, repository: str, tag: str) -> bool: ...

    def list_tags(self, repository: str, after: str | None, limit: int | None) -> list[str]:
        """Tags in ASCII order, strictly after `after`, at most `limit`."""

    def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None
    ) -> list[ReferrerRecord]: ...

    # -- upload sessions
    def create_upload(self, record: UploadRecord) -> None: ...

    def get_upload(self, upload_id: str) -> UploadRecord | None: ...

    def delete_upload(self, upload_id: str) -> bool: ...

    def count_uploads(self) -> int:
        """Upload sessions in progress (for metrics)."""

    # -- health
    def ping(self) -> None:
        """Raise when the store cannot answer a query."""

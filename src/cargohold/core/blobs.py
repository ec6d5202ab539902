"""Reading, deleting and mounting blobs that are already committed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cargohold.digest import Digest
from cargohold.errors import BlobUnknown, NameUnknown
from cargohold.reference import validate_name
from cargohold.storage.blobs import BlobStore
from cargohold.storage.meta import MetadataStore

if TYPE_CHECKING:
    from cargohold.proxy import ProxyService

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BlobContent:
    """Where a blob's bytes can be read: a local file for zero-copy, else a stream."""

    digest: str
    size: int
    path: Path | None
    store: BlobStore

    def stream(self, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The bytes; BlobUnknown if storage lost a blob the metadata still records."""
        try:
            return self.store.read(self.digest, offset, length)
        except FileNotFoundError:
            log.error("blob %s is recorded but missing from storage", self.digest)
            raise BlobUnknown(f"blob {self.digest} is no longer stored") from None


class BlobService:
    def __init__(self, blobs: BlobStore, meta: MetadataStore) -> None:
        self._blobs = blobs
        self._meta = meta
        # Pull-through cache (cargohold.proxy): a miss in a cached namespace is fetched.
        self.proxy: ProxyService | None = None

    def get(self, repository: str, digest: str) -> BlobContent:
        validate_name(repository)
        digest = str(Digest.parse(digest))
        size = self._meta.blob_size(repository, digest)
        if size is None:
            rule = self.proxy.rule_for(repository) if self.proxy is not None else None
            if rule is not None:
                assert self.proxy is not None
                return self.proxy.get_blob(rule, repository, digest)
            raise BlobUnknown(f"blob {digest} is not in repository {repository}")
        # No storage round trip here: the metadata says the blob is there, and a read of a
        # blob that storage lost fails in stream() (see BlobContent), where the HTTP layer
        # answers BLOB_UNKNOWN.
        return BlobContent(digest, size, self._blobs.local_path(digest), self._blobs)

    def delete(self, repository: str, digest: str) -> None:
        """Hide a blob from one repository; garbage collection reclaims the bytes."""
        validate_name(repository)
        digest = str(Digest.parse(digest))
        if not self._meta.unlink_blob(repository, digest):
            if not self._meta.repository_exists(repository):
                raise NameUnknown(f"repository {repository} is not known")
            raise BlobUnknown(f"blob {digest} is not in repository {repository}")

    def mount(self, repository: str, digest: str, source: str) -> bool:
        """Make a blob of `source` visible in `repository`; False when it cannot."""
        validate_name(repository)
        validate_name(source)
        digest = str(Digest.parse(digest))
        size = self._meta.blob_size(source, digest)
        if size is None or self._blobs.stat(digest) is None:
            return False
        # Never re-creates a blob row: garbage collection may have just removed it.
        return self._meta.link_existing_blob(repository, digest)

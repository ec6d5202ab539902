"""The registry facade: one object the HTTP layer (and later the CLI and workers) call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cargohold.core.blobs import BlobService
from cargohold.core.manifests import ManifestService
from cargohold.core.uploads import UploadService
from cargohold.core.versioning import TagService
from cargohold.errors import NameUnknown, PaginationInvalid
from cargohold.reference import validate_name, validate_tag
from cargohold.storage.blobs import BlobStore
from cargohold.storage.meta import MetadataStore

if TYPE_CHECKING:
    from cargohold.proxy import ProxyService


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; `more` says whether a next page exists."""

    items: list[str]
    more: bool


class Registry:
    def __init__(
        self,
        blobs: BlobStore,
        meta: MetadataStore,
        max_manifest_size: int,
        *,
        max_upload_size: int = 0,
        max_uploads_per_owner: int = 0,
    ) -> None:
        self.blob_store = blobs
        self.meta = meta
        self.blobs = BlobService(blobs, meta)
        self.uploads = UploadService(blobs, meta, max_upload_size, max_uploads_per_owner)
        self.manifests = ManifestService(meta, max_manifest_size)
        self.tags = TagService(meta)
        self.proxy: ProxyService | None = None

    def set_proxy(self, proxy: ProxyService | None) -> None:
        """Pull-through cache: manifest and blob misses in cached namespaces go upstream."""
        self.proxy = proxy
        self.manifests.proxy = proxy
        self.blobs.proxy = proxy

    def list_tags(self, repository: str, limit: int | None, last: str | None) -> Page:
        validate_name(repository)
        if last is not None:
            validate_tag(last)
        if limit == 0:
            if not self.meta.repository_exists(repository):
                raise NameUnknown(f"repository {repository} is not known")
            return Page([], more=False)
        fetch = None if limit is None else limit + 1
        tags = self.meta.list_tags(repository, last, fetch)
        if not tags and not self.meta.repository_exists(repository):
            raise NameUnknown(f"repository {repository} is not known")
        return _page(tags, limit)

    def list_repositories(
        self,
        limit: int | None,
        last: str | None,
        visible: Callable[[str], bool] | None = None,
    ) -> Page:
        """A page of repository names; `visible` hides those the caller may not see."""
        if last is not None and "\x00" in last:
            # Any other text is a position in the sorted names; NUL cannot even be
            # compared by PostgreSQL.
            raise PaginationInvalid("last must not contain NUL characters")
        if limit == 0:
            return Page([], more=False)
        if visible is None:
            fetch = None if limit is None else limit + 1
            return _page(self.meta.list_repositories(last, fetch), limit)
        shown: list[str] = []
        batch = max(limit or 0, 100) + 1
        while limit is None or len(shown) <= limit:
            names = self.meta.list_repositories(last, batch)
            shown.extend(name for name in names if visible(name))
            if len(names) < batch:
                break
            last = names[-1]
        return _page(shown, limit)

    def check_ready(self) -> None:
        """Raise when a dependency cannot serve requests: the database or the blob store."""
        self.meta.ping()
        self.blob_store.check()


def _page(items: list[str], limit: int | None) -> Page:
    if limit is not None and len(items) > limit:
        return Page(items[:limit], more=True)
    return Page(items, more=False)

"""The two ends of a copy, behind one interface: this registry (through the core) and a
remote one (over HTTP). A push copies Local -> Remote, a pull Remote -> Local."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from cargohold.core.registry import Registry
from cargohold.digest import is_digest_like
from cargohold.errors import ManifestUnknown, NameUnknown
from cargohold.replication.client import RemoteRegistry


class Local:
    """This registry. Writes go through the core (verified, quota-checked, evented)."""

    def __init__(self, registry: Registry, actor: str) -> None:
        self.registry = registry
        self.meta = registry.meta
        self.actor = actor
        self.where = "local"

    # reading
    def repositories(self) -> list[str]:
        return self.meta.list_repositories(None, None)

    def tags(self, repo: str) -> list[str]:
        return self.meta.list_tags(repo, None, None)

    def manifest(self, repo: str, reference: str) -> tuple[bytes, str | None]:
        record = self.registry.manifests.get(repo, reference)
        return record.content, record.media_type

    def tag_digest(self, repo: str, tag: str) -> str | None:
        record = self.meta.tag_record(repo, tag)
        return None if record is None else record.digest

    def referrers(self, repo: str, digest: str) -> list[str]:
        return [r.digest for r in self.meta.list_referrers(repo, digest, None)]

    @contextmanager
    def open_blob(self, repo: str, digest: str) -> Iterator[Iterable[bytes]]:
        yield self.registry.blobs.get(repo, digest).stream()

    # writing
    def has_manifest(self, repo: str, digest: str) -> bool:
        return bool(self.meta.existing_manifests(repo, [digest]))

    def has_blob(self, repo: str, digest: str) -> bool:
        return self.meta.blob_size(repo, digest) is not None

    def mount(self, repo: str, digest: str, candidates: list[str]) -> tuple[bool, Any]:
        """Link a blob this registry holds in any repository: no bytes copied."""
        if self.registry.blob_store.stat(digest) is None:
            return False, None
        return self.meta.link_existing_blob(repo, digest), None

    def put_blob(
        self, repo: str, digest: str, size: int, chunks: Iterable[bytes], session: Any
    ) -> None:
        async def stream() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        asyncio.run(self.registry.uploads.upload_whole(repo, digest, stream(), size))

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> None:
        self.registry.manifests.put(repo, reference, body, media_type, actor=self.actor)

    def delete_tag(self, repo: str, tag: str) -> bool:
        try:
            self.registry.manifests.delete(repo, tag, actor=self.actor)
        except (ManifestUnknown, NameUnknown):
            return False
        return True


class Remote:
    """A registry over HTTP (RemoteRegistry)."""

    def __init__(self, client: RemoteRegistry) -> None:
        self.client = client
        self.where = client.url

    def repositories(self) -> list[str]:
        return self.client.catalog()

    def tags(self, repo: str) -> list[str]:
        return self.client.tags(repo)

    def manifest(self, repo: str, reference: str) -> tuple[bytes, str | None]:
        fetched = self.client.manifest(repo, reference)
        return fetched.body, fetched.media_type

    def tag_digest(self, repo: str, tag: str) -> str | None:
        return self.client.manifest_digest(repo, tag)

    def referrers(self, repo: str, digest: str) -> list[str]:
        return self.client.referrers(repo, digest)

    @contextmanager
    def open_blob(self, repo: str, digest: str) -> Iterator[Iterable[bytes]]:
        with self.client.open_blob(repo, digest) as chunks:
            yield chunks

    def has_manifest(self, repo: str, digest: str) -> bool:
        return self.client.manifest_digest(repo, digest) is not None

    def has_blob(self, repo: str, digest: str) -> bool:
        return self.client.has_blob(repo, digest)

    def mount(self, repo: str, digest: str, candidates: list[str]) -> tuple[bool, Any]:
        """Cross-repository mount from the first candidate; when the registry cannot, the
        upload session it opened instead is used for the upload."""
        sources = [c for c in candidates if c != repo]
        if not sources:
            return False, None
        session = self.client.mount(repo, digest, sources[0])
        return session is None, session

    def put_blob(
        self, repo: str, digest: str, size: int, chunks: Iterable[bytes], session: Any
    ) -> None:
        location = session or self.client.start_upload(repo)
        self.client.finish_upload(repo, location, digest, size, chunks)

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> None:
        self.client.put_manifest(repo, reference, body, media_type)

    def delete_tag(self, repo: str, tag: str) -> bool:
        assert not is_digest_like(tag)
        return self.client.delete_tag(repo, tag)


__all__ = ["Local", "Remote"]

"""A MetadataStore that answers hot lookups from a cache: Redis, shared by every replica
(scale-out), or each process's memory with change counters shared through a file
(embedded, see local_cache.py).

Pulls ask the same questions over and over: which manifest does `app:prod` name, what is
the manifest `sha256:…`, is this blob in this repository. With several replicas on one
PostgreSQL each answer costs a database round trip; here it costs one Redis call, or
none at all in the embedded setup.

Invalidation is by generation, not by deleting keys. Each repository has a counter; every
cache key embeds the counter's value at the time of the lookup. A write commits to the
database first and then increments the counter, so every lookup that starts after the
write is acknowledged uses a new key and misses. A slow reader that read the old
generation and stores an old answer stores it under the old key, which nobody reads any
more — the race that plain "delete the key" invalidation loses cannot happen. Entries
also expire after `ttl` seconds, which bounds how long a stale answer can survive when
Redis was unreachable at the moment of a write (or a write bypassed this store).

Only positive answers are cached (a miss goes to the database every time), and every
method of the protocol is spelled out below: a write added to the store without
invalidation here would fail the contract tests rather than serve stale data silently.
If Redis fails, lookups fall through to the database and the failure is logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cargohold.cache_only import require_io
from cargohold.storage.meta.base import (
    BY_DELETE,
    BY_PUSH,
    ChangeOrigin,
    ImmutableRule,
    ManifestRecord,
    MetadataStore,
    QuotaRecord,
    ReferrerRecord,
    RetentionPolicy,
    TagEvent,
    TagRecord,
    UploadRecord,
    UsageRecord,
)
from cargohold.storage.meta.gcgraph import GcGraph
from cargohold.storage.meta.local_cache import LocalLookupCache, SharedGenerations

if TYPE_CHECKING:  # redis itself is imported by the Redis cache only (the scale-out setup)
    import redis

log = logging.getLogger(__name__)

# One round trip: the repository's generation and the entry stored under it.
_LOOKUP = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])}
"""


class LookupCache(Protocol):
    """Where cached answers live, keyed by repository, generation and entry name.

    Entries are "tag:<tag>" and "digest:<digest>" (a ManifestRecord) and "blob:<digest>"
    (a blob size)."""

    def lookup(self, repository: str, entry: str) -> tuple[str | None, Any]:
        """(the repository's generation, the cached value or None); a None generation
        means the cache cannot answer now, and nothing should be remembered."""
        ...

    def remember(self, repository: str, generation: str | None, entry: str, value: Any) -> None: ...

    def changed(self, repository: str) -> None:
        """After a write committed: every earlier entry of the repository dies."""
        ...

    def ping(self) -> None: ...


class RedisLookupCache:
    """Entries in Redis with a TTL, generations as Redis counters: shared by replicas."""

    def __init__(self, client: redis.Redis, prefix: str = "cargohold", ttl: int = 60) -> None:
        from redis import RedisError

        self._errors = RedisError
        self._client = client
        self._prefix = f"{prefix}:meta"
        self._ttl = ttl
        self._lookup = client.register_script(_LOOKUP)

    def _generation_key(self, repository: str) -> str:
        return f"{self._prefix}:gen:{repository}"

    def _entry_prefix(self, repository: str) -> str:
        return f"{self._prefix}:entry:{repository}:"

    def lookup(self, repository: str, entry: str) -> tuple[str | None, Any]:
        require_io()  # a network round trip
        try:
            generation, value = self._lookup(
                keys=[self._generation_key(repository)],
                args=[self._entry_prefix(repository), entry],
            )
        except self._errors as exc:
            log.warning("metadata cache skipped, Redis unavailable: %s", exc)
            return None, None
        if value is None:
            return generation.decode(), None
        return generation.decode(), _decode(entry, value)

    def remember(self, repository: str, generation: str | None, entry: str, value: Any) -> None:
        if generation is None:
            return
        key = f"{self._entry_prefix(repository)}{generation}:{entry}"
        try:
            self._client.set(key, _encode(value), ex=self._ttl)
        except self._errors as exc:
            log.warning("metadata cache not filled, Redis unavailable: %s", exc)

    def changed(self, repository: str) -> None:
        try:
            self._client.incr(self._generation_key(repository))
        except self._errors as exc:
            log.error(
                "metadata cache of %s not invalidated, Redis unavailable (entries expire in "
                "%d s): %s",
                repository,
                self._ttl,
                exc,
            )

    def ping(self) -> None:
        self._client.ping()


class CachedMetadataStore:
    """A MetadataStore whose hot lookups are answered from a LookupCache."""

    def __init__(self, store: MetadataStore, cache: LookupCache) -> None:
        self._store = store
        self._cache = cache

    @property
    def engine(self) -> Any:
        """The database under the cache, which the stores of scans and advisories share."""
        return getattr(self._store, "engine", None)

    def _cached(self, repository: str, entry: str) -> tuple[str | None, Any]:
        return self._cache.lookup(repository, entry)

    def _remember(self, repository: str, generation: str | None, entry: str, value: Any) -> None:
        self._cache.remember(repository, generation, entry, value)

    def _changed(self, repository: str) -> None:
        self._cache.changed(repository)

    # -- repositories
    def repository_exists(self, name: str) -> bool:
        return self._store.repository_exists(name)

    def list_repositories(self, after: str | None, limit: int | None) -> list[str]:
        return self._store.list_repositories(after, limit)

    # -- blobs
    def link_blob(self, repository: str, digest: str, size: int) -> None:
        # Only positive answers are cached, so making a blob visible invalidates nothing.
        self._store.link_blob(repository, digest, size)

    def blob_size(self, repository: str, digest: str) -> int | None:
        entry = f"blob:{digest}"
        generation, value = self._cached(repository, entry)
        if value is not None:
            return int(value)
        size = self._store.blob_size(repository, digest)
        if size is not None:
            self._remember(repository, generation, entry, size)
        return size

    def blob_sizes(self, repository: str, digests: Iterable[str]) -> dict[str, int]:
        return self._store.blob_sizes(repository, digests)

    def unlink_blob(self, repository: str, digest: str) -> bool:
        try:
            return self._store.unlink_blob(repository, digest)
        finally:
            self._changed(repository)

    # -- manifests and tags
    def put_manifest(
        self,
        repository: str,
        manifest: ManifestRecord,
        blob_digests: Sequence[str],
        child_digests: Sequence[str],
        tags: Sequence[str],
        origin: ChangeOrigin = BY_PUSH,
    ) -> None:
        try:
            self._store.put_manifest(
                repository, manifest, blob_digests, child_digests, tags, origin
            )
        finally:
            if tags:  # a new digest alone was a miss before; moved tags were cached
                self._changed(repository)

    def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None:
        return self._manifest(repository, f"digest:{digest}", self._store.get_manifest, digest)

    def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None:
        return self._manifest(repository, f"tag:{tag}", self._store.get_tagged_manifest, tag)

    def _manifest(
        self, repository: str, entry: str, load: Any, reference: str
    ) -> ManifestRecord | None:
        generation, value = self._cached(repository, entry)
        if value is not None:
            return value  # type: ignore[no-any-return]
        record: ManifestRecord | None = load(repository, reference)
        if record is not None:
            self._remember(repository, generation, entry, record)
        return record

    def existing_manifests(self, repository: str, digests: Iterable[str]) -> set[str]:
        return self._store.existing_manifests(repository, digests)

    def delete_manifest(
        self, repository: str, digest: str, origin: ChangeOrigin = BY_DELETE
    ) -> bool:
        try:
            return self._store.delete_manifest(repository, digest, origin)
        finally:
            self._changed(repository)

    def delete_tag(self, repository: str, tag: str, origin: ChangeOrigin = BY_DELETE) -> bool:
        try:
            return self._store.delete_tag(repository, tag, origin)
        finally:
            self._changed(repository)

    def tag_manifest(
        self, repository: str, tag: str, digest: str, origin: ChangeOrigin
    ) -> TagEvent | None:
        try:
            return self._store.tag_manifest(repository, tag, digest, origin)
        finally:
            self._changed(repository)

    def tag_record(self, repository: str, tag: str) -> TagRecord | None:
        return self._store.tag_record(repository, tag)

    def list_tag_records(
        self, repository: str, after: str | None, limit: int | None
    ) -> list[TagRecord]:
        return self._store.list_tag_records(repository, after, limit)

    # -- tag history and immutable-tag rules: not cached, and they change no lookup
    def tag_history(
        self,
        repository: str,
        tag: str | None = None,
        *,
        before_id: int | None = None,
        at_or_before: datetime | None = None,
        limit: int = 100,
    ) -> list[TagEvent]:
        return self._store.tag_history(
            repository, tag, before_id=before_id, at_or_before=at_or_before, limit=limit
        )

    def tag_event(self, repository: str, event_id: int) -> TagEvent | None:
        return self._store.tag_event(repository, event_id)

    def digests_in_history(self, repository: str, since: datetime) -> set[str]:
        return self._store.digests_in_history(repository, since)

    def add_immutable_rule(
        self, namespace: str, repository: str, pattern: str, created_by: str | None
    ) -> ImmutableRule:
        return self._store.add_immutable_rule(namespace, repository, pattern, created_by)

    def immutable_rules(self, namespace: str) -> list[ImmutableRule]:
        return self._store.immutable_rules(namespace)

    def remove_immutable_rule(self, namespace: str, rule_id: int) -> bool:
        return self._store.remove_immutable_rule(namespace, rule_id)

    def list_tags(self, repository: str, after: str | None, limit: int | None) -> list[str]:
        entry = f"tags:{limit}:{after or ''}"
        generation, value = self._cached(repository, entry)
        if value is not None:
            return list(value)
        tags = self._store.list_tags(repository, after, limit)
        if tags:  # an empty page may mean an unknown repository: not cached, like misses
            self._remember(repository, generation, entry, tuple(tags))
        return tags

    def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None
    ) -> list[ReferrerRecord]:
        return self._store.list_referrers(repository, subject, artifact_type)

    # -- garbage collection: whatever it removes from a repository invalidates it
    def commit_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        store: Callable[[], None],
        discard: Callable[[], None] | None = None,
        finished_upload: str | None = None,
    ) -> None:
        self._store.commit_blob(repository, digest, size, store, discard, finished_upload)

    def link_existing_blob(self, repository: str, digest: str) -> bool:
        return self._store.link_existing_blob(repository, digest)

    def gc_graph(self, history_since: datetime) -> GcGraph:
        return self._store.gc_graph(history_since)

    def gc_delete_manifests(
        self,
        repository: str,
        manifest_ids: Sequence[int],
        older_than: datetime,
        history_since: datetime,
    ) -> list[int]:
        try:
            return self._store.gc_delete_manifests(
                repository, manifest_ids, older_than, history_since
            )
        finally:
            self._changed(repository)

    def gc_unlink(self, repository: str, digests: Sequence[str], older_than: datetime) -> list[str]:
        try:
            return self._store.gc_unlink(repository, digests, older_than)
        finally:
            self._changed(repository)

    def gc_delete_blobs(self, digests: Sequence[str], older_than: datetime) -> list[str]:
        # Only unlinked blobs go, and unlinking invalidated their repositories already.
        return self._store.gc_delete_blobs(digests, older_than)

    def gc_delete_files(
        self, digests: Sequence[str], delete_files: Callable[[list[str]], None]
    ) -> list[str]:
        return self._store.gc_delete_files(digests, delete_files)

    def gc_exclusive(self) -> AbstractContextManager[bool]:
        return self._store.gc_exclusive()

    def record_gc_run(self, trigger: str, dry_run: bool, report: dict[str, Any]) -> int:
        return self._store.record_gc_run(trigger, dry_run, report)

    def gc_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._store.gc_runs(limit)

    def uploads_older_than(self, moment: datetime) -> list[UploadRecord]:
        return self._store.uploads_older_than(moment)

    def upload_ids_known(self, upload_ids: Sequence[str]) -> set[str]:
        return self._store.upload_ids_known(upload_ids)

    # -- retention policies: removing a tag invalidates, the rest changes no lookup
    def add_retention_policy(
        self,
        namespace: str,
        repository: str,
        tag_pattern: str,
        keep_last: int | None,
        keep_days: int | None,
        created_by: str | None,
    ) -> RetentionPolicy:
        return self._store.add_retention_policy(
            namespace, repository, tag_pattern, keep_last, keep_days, created_by
        )

    def retention_policies(self, namespace: str | None = None) -> list[RetentionPolicy]:
        return self._store.retention_policies(namespace)

    def remove_retention_policy(self, namespace: str, policy_id: int) -> bool:
        return self._store.remove_retention_policy(namespace, policy_id)

    def retention_tags(self, namespace: str) -> dict[str, list[TagRecord]]:
        return self._store.retention_tags(namespace)

    def last_pulls(self, namespace: str, since: datetime) -> dict[str, dict[str, datetime]]:
        return self._store.last_pulls(namespace, since)

    def delete_tag_if_unchanged(
        self, repository: str, tag: str, digest: str, pushed_at: datetime, origin: ChangeOrigin
    ) -> bool:
        try:
            return self._store.delete_tag_if_unchanged(repository, tag, digest, pushed_at, origin)
        finally:
            self._changed(repository)

    # -- upload sessions
    def create_upload(self, record: UploadRecord) -> None:
        self._store.create_upload(record)

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        return self._store.get_upload(upload_id)

    def delete_upload(self, upload_id: str) -> bool:
        return self._store.delete_upload(upload_id)

    def count_uploads(self) -> int:
        return self._store.count_uploads()

    # -- namespace quotas and storage usage: never cached, usage must be current
    def set_quota(self, namespace: str, limit_bytes: int, updated_by: str | None) -> QuotaRecord:
        return self._store.set_quota(namespace, limit_bytes, updated_by)

    def get_quota(self, namespace: str) -> QuotaRecord | None:
        return self._store.get_quota(namespace)

    def remove_quota(self, namespace: str) -> bool:
        return self._store.remove_quota(namespace)

    def list_quotas(self) -> list[QuotaRecord]:
        return self._store.list_quotas()

    def check_quota(self, repository: str, size: int, digest: str | None = None) -> None:
        self._store.check_quota(repository, size, digest)

    def repository_usage(
        self, namespace: str | None = None, repository: str | None = None
    ) -> list[UsageRecord]:
        return self._store.repository_usage(namespace, repository)

    def namespace_usage(self, namespace: str | None = None) -> list[UsageRecord]:
        return self._store.namespace_usage(namespace)

    def registry_usage(self) -> UsageRecord:
        return self._store.registry_usage()

    # -- health
    def ping(self) -> None:
        self._store.ping()
        self._cache.ping()

    def close(self) -> None:
        close = getattr(self._store, "close", None)
        if close is not None:
            close()


class RedisCachedMetadataStore(CachedMetadataStore):
    """The scale-out setup's cache: answers shared by every replica through Redis."""

    def __init__(
        self,
        store: MetadataStore,
        client: redis.Redis,
        prefix: str = "cargohold",
        ttl: int = 60,
    ) -> None:
        super().__init__(store, RedisLookupCache(client, prefix, ttl))


class LocalCachedMetadataStore(CachedMetadataStore):
    """The embedded setup's cache: each process's memory, counters shared by file."""

    def __init__(
        self, store: MetadataStore, generations_file: Path, max_entries: int, ttl: float = 60
    ) -> None:
        self._generations = SharedGenerations(generations_file)
        super().__init__(store, LocalLookupCache(self._generations, max_entries, ttl))

    def close(self) -> None:
        super().close()
        self._generations.close()


def _encode(value: Any) -> bytes:
    if isinstance(value, ManifestRecord):
        return _encode_manifest(value)
    if isinstance(value, tuple):  # a page of tags
        return json.dumps(value).encode()
    return str(value).encode()


def _decode(entry: str, value: bytes) -> Any:
    if entry.startswith("blob:"):
        return int(value)
    if entry.startswith("tags:"):
        return tuple(json.loads(value))
    return _decode_manifest(value)


def _encode_manifest(record: ManifestRecord) -> bytes:
    header = {
        "digest": record.digest,
        "media_type": record.media_type,
        "artifact_type": record.artifact_type,
        "subject": record.subject,
        "annotations": record.annotations,
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + record.content


def _decode_manifest(value: bytes) -> ManifestRecord:
    header, _, content = value.partition(b"\n")
    return ManifestRecord(content=content, **json.loads(header))

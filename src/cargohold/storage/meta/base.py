"""The MetadataStore protocol: repositories, manifests, tags, references, uploads.

Names, digests and tags arrive validated by the core; the store only keeps them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cargohold.storage.meta.gcgraph import GcGraph


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


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Storage used by a repository, a namespace or the whole registry (name "").

    `stored_bytes` counts each blob linked there once (`blobs` of them); `logical_bytes`
    is what pulling every manifest would transfer without deduplication (each manifest's
    own size plus the sizes of the blobs it names); `shared_bytes` is the part of
    `stored_bytes` also linked elsewhere: in another repository (for a repository and for
    the registry) or outside the namespace (for a namespace).
    """

    name: str
    logical_bytes: int = 0
    stored_bytes: int = 0
    shared_bytes: int = 0
    blobs: int = 0
    manifests: int = 0
    repositories: int = 0


@dataclass(frozen=True, slots=True)
class QuotaRecord:
    """At most `limit_bytes` of unique blobs in the namespace's repositories."""

    namespace: str
    limit_bytes: int
    updated_by: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChangeOrigin:
    """Who changed a tag and through what, as the tag history records it.

    `via` is one of push, delete, rollback, retag, retention.
    """

    actor: str | None = None
    via: str = "push"


# Defaults for changes made through /v2 whose actor is not known to the caller.
BY_PUSH = ChangeOrigin()
BY_DELETE = ChangeOrigin(via="delete")


@dataclass(frozen=True, slots=True)
class TagEvent:
    """One change of what a tag names; `action` is created, moved or deleted."""

    id: int
    repository: str
    tag: str
    action: str
    old_digest: str | None
    new_digest: str | None
    via: str
    actor: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class TagRecord:
    name: str
    digest: str
    media_type: str
    size: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ImmutableRule:
    """Tags matching the glob `pattern` never move or go: in one repository, or in every
    repository of the namespace when `repository` is empty."""

    id: int
    namespace: str
    repository: str
    pattern: str
    created_by: str | None
    created_at: datetime

    def applies_to(self, repository: str, tag: str) -> bool:
        if repository.split("/", 1)[0] != self.namespace:
            return False
        if self.repository and self.repository != repository:
            return False
        return fnmatch.fnmatchcase(tag, self.pattern)

    def describe(self) -> str:
        where = self.repository or f"namespace {self.namespace}"
        return f"immutable-tag rule {self.id} ({self.pattern!r} in {where})"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Tags matching the glob `tag_pattern` (in one repository, or in every repository of
    the namespace when `repository` is empty) are removed unless among the `keep_last`
    most recently pushed, or pushed or pulled within `keep_days`; core/retention.py plans."""

    id: int
    namespace: str
    repository: str
    tag_pattern: str
    keep_last: int | None
    keep_days: int | None
    created_by: str | None
    created_at: datetime

    def applies_to(self, repository: str, tag: str) -> bool:
        if repository.split("/", 1)[0] != self.namespace:
            return False
        if self.repository and self.repository != repository:
            return False
        return fnmatch.fnmatchcase(tag, self.tag_pattern)

    def describe(self) -> str:
        where = self.repository or f"namespace {self.namespace}"
        return f"retention policy {self.id} ({self.tag_pattern!r} in {where})"


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
        origin: ChangeOrigin = BY_PUSH,
    ) -> None:
        """Store a manifest with its references and point `tags` at it, atomically.

        Storing a manifest that exists already only moves the tags. Each tag created or
        moved is recorded in the tag history; TagImmutable if a rule protects a tag that
        would move, and then nothing is stored.
        """

    def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None: ...

    def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None: ...

    def existing_manifests(self, repository: str, digests: Iterable[str]) -> set[str]: ...

    def delete_manifest(
        self, repository: str, digest: str, origin: ChangeOrigin = BY_DELETE
    ) -> bool:
        """Remove a manifest, its references and every tag pointing at it (each recorded).

        TagImmutable, and nothing removed, if a rule protects one of those tags.
        """

    def delete_tag(self, repository: str, tag: str, origin: ChangeOrigin = BY_DELETE) -> bool:
        """Remove a tag (recorded); TagImmutable if a rule protects it."""

    def tag_manifest(
        self, repository: str, tag: str, digest: str, origin: ChangeOrigin
    ) -> TagEvent | None:
        """Point `tag` at a manifest the repository holds; the recorded event, or None
        when the tag named it already. ManifestUnknown if the repository lacks the
        manifest; TagImmutable if a rule protects the tag."""

    def tag_record(self, repository: str, tag: str) -> TagRecord | None: ...

    def list_tag_records(
        self, repository: str, after: str | None, limit: int | None
    ) -> list[TagRecord]:
        """Tags with what they name, in the order of list_tags."""

    # -- tag history
    def tag_history(
        self,
        repository: str,
        tag: str | None = None,
        *,
        before_id: int | None = None,
        at_or_before: datetime | None = None,
        limit: int = 100,
    ) -> list[TagEvent]:
        """Events of one tag (or all tags) of a repository, newest first."""

    def tag_event(self, repository: str, event_id: int) -> TagEvent | None: ...

    def digests_in_history(self, repository: str, since: datetime) -> set[str]:
        """Manifests that events since `since` name (old or new): what rollback may need."""

    # -- immutable-tag rules
    def add_immutable_rule(
        self, namespace: str, repository: str, pattern: str, created_by: str | None
    ) -> ImmutableRule:
        """Conflict when the same rule exists."""

    def immutable_rules(self, namespace: str) -> list[ImmutableRule]: ...

    def remove_immutable_rule(self, namespace: str, rule_id: int) -> bool: ...

    def list_tags(self, repository: str, after: str | None, limit: int | None) -> list[str]:
        """Tags in ASCII order, strictly after `after`, at most `limit`."""

    def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None
    ) -> list[ReferrerRecord]: ...

    # -- garbage collection (see sql_gc.py for why it never removes anything live)
    def commit_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        store: Callable[[], None],
        discard: Callable[[], None] | None = None,
        finished_upload: str | None = None,
    ) -> None:
        """Run `store` (it puts the verified bytes in blob storage), then link the blob;
        never concurrently with gc_delete_files of the same digest.

        QuotaExceeded when a blob new to the namespace would take it over its quota:
        then nothing is linked, and `store` has not run, or (a concurrent push won the
        last bytes while storing) `discard` has removed what it stored.
        `finished_upload`: the upload session whose row ends in the same transaction.
        """

    def link_existing_blob(self, repository: str, digest: str) -> bool:
        """Link a blob that has a row already (a mount); False when it has none.

        QuotaExceeded, and nothing linked, when that would take the namespace over its
        quota."""

    def gc_graph(self, history_since: datetime) -> GcGraph:
        """A consistent snapshot of every reference, for marking."""

    def gc_delete_manifests(
        self,
        repository: str,
        manifest_ids: Sequence[int],
        older_than: datetime,
        history_since: datetime,
    ) -> list[int]:
        """Delete those manifests nothing references now; the ids really deleted."""

    def gc_unlink(self, repository: str, digests: Sequence[str], older_than: datetime) -> list[str]:
        """Remove links older than `older_than` that no manifest of the repository names."""

    def gc_delete_blobs(self, digests: Sequence[str], older_than: datetime) -> list[str]:
        """Remove blob rows that nothing links or names now."""

    def gc_delete_files(
        self, digests: Sequence[str], delete_files: Callable[[list[str]], None]
    ) -> list[str]:
        """Call delete_files with batches of the digests that still have no blob row,
        excluded against commit_blob of the same digests; the digests whose files were
        deleted."""

    def gc_exclusive(self) -> AbstractContextManager[bool]:
        """While held, no other process or replica collects; yields False if one does."""

    def record_gc_run(self, trigger: str, dry_run: bool, report: dict[str, Any]) -> int: ...

    def gc_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs' reports, newest first."""

    def uploads_older_than(self, moment: datetime) -> list[UploadRecord]: ...

    def upload_ids_known(self, upload_ids: Sequence[str]) -> set[str]: ...

    # -- retention policies (sql_retention.py; core/retention.py plans and runs them)
    def add_retention_policy(
        self,
        namespace: str,
        repository: str,
        tag_pattern: str,
        keep_last: int | None,
        keep_days: int | None,
        created_by: str | None,
    ) -> RetentionPolicy:
        """Conflict when a policy for the same namespace, repository and pattern exists."""

    def retention_policies(self, namespace: str | None = None) -> list[RetentionPolicy]:
        """The policies of one namespace, or of every namespace (None), in id order."""

    def remove_retention_policy(self, namespace: str, policy_id: int) -> bool: ...

    def retention_tags(self, namespace: str) -> dict[str, list[TagRecord]]:
        """Every tag of the namespace's repositories with its push time, by repository
        (repositories without tags are left out)."""

    def last_pulls(self, namespace: str, since: datetime) -> dict[str, dict[str, datetime]]:
        """From the audit log's pull events at or after `since`: repository -> reference
        (a tag or a digest) or pulled digest -> the latest such pull."""

    def delete_tag_if_unchanged(
        self, repository: str, tag: str, digest: str, pushed_at: datetime, origin: ChangeOrigin
    ) -> bool:
        """Remove a tag (recorded, as delete_tag) only if it still names `digest` and was
        last set at `pushed_at`; False otherwise. TagImmutable if a rule protects it."""

    # -- upload sessions
    def create_upload(self, record: UploadRecord) -> None: ...

    def get_upload(self, upload_id: str) -> UploadRecord | None: ...

    def delete_upload(self, upload_id: str) -> bool: ...

    def count_uploads(self) -> int:
        """Upload sessions in progress (for metrics)."""

    # -- namespace quotas and storage usage (sql_usage.py)
    def set_quota(self, namespace: str, limit_bytes: int, updated_by: str | None) -> QuotaRecord:
        """Create or replace the namespace's quota. A limit below the current usage is
        allowed: pushes of new blobs are refused until usage falls below it."""

    def get_quota(self, namespace: str) -> QuotaRecord | None: ...

    def remove_quota(self, namespace: str) -> bool: ...

    def list_quotas(self) -> list[QuotaRecord]:
        """Every quota, by namespace."""

    def check_quota(self, repository: str, size: int, digest: str | None = None) -> None:
        """QuotaExceeded if a blob of `size` bytes (`digest`, if known) cannot be added to
        the repository's namespace now; an early check before data arrives. Without the
        digest only a blob larger than any the namespace holds is refused."""

    def repository_usage(
        self, namespace: str | None = None, repository: str | None = None
    ) -> list[UsageRecord]:
        """Usage of every repository, of those of one namespace, or of one, by name."""

    def namespace_usage(self, namespace: str | None = None) -> list[UsageRecord]:
        """Usage of every namespace that has repositories (or of one), by name."""

    def registry_usage(self) -> UsageRecord: ...

    # -- health
    def ping(self) -> None:
        """Raise when the store cannot answer a query."""

"""Tags as versions: history, rollback, retagging, immutable-tag rules, resolving.

Every tag change made anywhere (a push, a delete, a rollback, a retag, retention) is
recorded by the metadata store in the same transaction as the change; this service adds
the operations people ask for by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

from cargohold.digest import Digest, is_digest_like
from cargohold.errors import (
    Denied,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    TagImmutable,
    TagInvalid,
)
from cargohold.manifest import parse_manifest
from cargohold.reference import validate_name, validate_tag
from cargohold.storage.meta import (
    ChangeOrigin,
    ImmutableRule,
    MetadataStore,
    TagEvent,
    TagRecord,
)

# A digest's algorithm part; ISO 8601 times have ':' too but never start like this.
_DIGEST_START = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
MAX_ID = 2**62  # history entry numbers are database ids; larger ones cannot exist
# Glob patterns: the tag alphabet plus fnmatch's wildcards, at most a tag's length.
_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]{1,128}$")
MAX_HISTORY_PAGE = 1000


@dataclass(frozen=True, slots=True)
class TagChange:
    """The outcome of a rollback or retag: `event` is None when nothing had to change."""

    repository: str
    tag: str
    digest: str
    event: TagEvent | None


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0]


def validate_pattern(pattern: str) -> str:
    if not _PATTERN.match(pattern):
        raise TagInvalid(
            f"invalid tag pattern {pattern[:130]!r}: use tag characters and the wildcards "
            "* ? [...], at most 128 characters (for example v* or release-*)"
        )
    return pattern


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date or time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TagInvalid(
            f"{text!r} is not a digest, a history entry number or an ISO 8601 time "
            "(for example 2026-11-30T09:15:00Z)"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)  # stored times are UTC, compared as such
    except OverflowError:  # 9999-12-31T23:00-05:00 is in the year 10000
        raise TagInvalid(f"{text!r} is outside the range of times cargohold stores") from None


class TagService:
    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta

    # -- reading
    def history(
        self,
        repository: str,
        tag: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[TagEvent]:
        """Newest first; page with `before_id` = the last entry's id."""
        validate_name(repository)
        if tag is not None:
            validate_tag(tag)
        limit = max(1, min(limit, MAX_HISTORY_PAGE))
        if before_id is not None:
            before_id = max(0, min(before_id, MAX_ID))
        events = self._meta.tag_history(repository, tag, before_id=before_id, limit=limit)
        if not events and not self._meta.repository_exists(repository):
            raise NameUnknown(f"repository {repository} is not known")
        return events

    def resolve(self, repository: str, tag: str) -> TagRecord:
        validate_name(repository)
        record = self._meta.tag_record(repository, validate_tag(tag))
        if record is None:
            self._unknown_tag(repository, tag)
        return record

    def records(self, repository: str, limit: int | None, after: str | None) -> list[TagRecord]:
        validate_name(repository)
        if after is not None:
            validate_tag(after)
        records = self._meta.list_tag_records(repository, after, limit)
        if not records and not self._meta.repository_exists(repository):
            raise NameUnknown(f"repository {repository} is not known")
        return records

    # -- changing
    def rollback(self, repository: str, tag: str, to: str | None, actor: str | None) -> TagChange:
        """Point `tag` back at an earlier manifest.

        `to` is a digest, a history entry number, or an ISO 8601 time (where the tag
        pointed then); None means the manifest the tag named before its latest change.
        """
        validate_name(repository)
        validate_tag(tag)
        digest = self._rollback_target(repository, tag, to)
        if self._meta.get_manifest(repository, digest) is None:
            if not self._meta.repository_exists(repository):
                raise NameUnknown(f"repository {repository} is not known")
            remembered = digest in self._meta.digests_in_history(
                repository, datetime.min.replace(tzinfo=UTC)
            )
            if not remembered:
                raise ManifestUnknown(f"{repository} has never held manifest {digest}")
            raise ManifestUnknown(
                f"manifest {digest} was deleted from {repository}; it cannot be restored "
                "by a rollback (push it again, then retag)"
            )
        event = self._meta.tag_manifest(repository, tag, digest, ChangeOrigin(actor, "rollback"))
        return TagChange(repository, tag, digest, event)

    def _rollback_target(self, repository: str, tag: str, to: str | None) -> str:
        if to is None:
            latest = self._meta.tag_history(repository, tag, limit=1)
            if not latest:
                self._unknown_tag(repository, tag)
            if latest[0].old_digest is None:
                raise ManifestUnknown(
                    f"{repository}:{tag} has no earlier version to roll back to "
                    f"(its history starts with entry {latest[0].id})"
                )
            return latest[0].old_digest
        if _DIGEST_START.match(to):
            return str(Digest.parse(to))
        if to.isascii() and to.isdigit():
            event = self._meta.tag_event(repository, int(to)) if int(to) < MAX_ID else None
            if event is None or event.tag != tag:
                raise ManifestUnknown(
                    f"history entry {to} is not an entry of {repository}:{tag}; "
                    f"see `cargohold tag history {repository}:{tag}`"
                )
            if event.new_digest is None:
                raise ManifestUnknown(
                    f"history entry {to} deleted the tag; choose an entry that set it"
                )
            return event.new_digest
        moment = parse_moment(to)
        then = self._meta.tag_history(repository, tag, at_or_before=moment, limit=1)
        if not then or then[0].new_digest is None:
            when = moment.isoformat().replace("+00:00", "Z")
            raise ManifestUnknown(f"{repository}:{tag} did not exist at {when}")
        return then[0].new_digest

    def add(
        self,
        source: str,
        reference: str,
        target: str,
        tag: str,
        actor: str | None,
    ) -> TagChange:
        """Point `target:tag` at the manifest `source@reference` (a digest or a tag) names.

        Within one namespace the manifest, its child manifests and its blobs are linked
        into the target repository without copying any bytes.
        """
        validate_name(source)
        validate_name(target)
        validate_tag(tag)
        if is_digest_like(reference):
            record = self._meta.get_manifest(source, str(Digest.parse(reference)))
        else:
            record = self._meta.get_tagged_manifest(source, validate_tag(reference))
        if record is None:
            if not self._meta.repository_exists(source):
                raise NameUnknown(f"repository {source} is not known")
            raise ManifestUnknown(f"{source} has no manifest {reference}")
        origin = ChangeOrigin(actor, "retag")
        self._refuse_if_protected(target, tag, record.digest)
        if source != target:
            if namespace_of(source) != namespace_of(target):
                raise Denied(
                    f"{source} and {target} are in different namespaces: retagging links "
                    "content only within a namespace; copy it with skopeo instead"
                )
            self.link_manifest(source, target, record.digest)
        event = self._meta.tag_manifest(target, tag, record.digest, origin)
        return TagChange(target, tag, record.digest, event)

    def link_manifest(self, source: str, target: str, digest: str) -> None:
        """Make a manifest of `source` (and what it references) present in `target`."""
        if self._meta.get_manifest(target, digest) is not None:
            return
        record = self._meta.get_manifest(source, digest)
        if record is None:
            raise ManifestUnknown(f"{source} lacks manifest {digest}, which an index names")
        parsed = parse_manifest(record.content, record.media_type)
        for child in parsed.manifests:
            self.link_manifest(source, target, child.digest)
        blob_digests = [d.digest for d in parsed.blobs]
        sizes = self._meta.blob_sizes(source, blob_digests)
        for blob in blob_digests:
            if blob in sizes and not self._meta.link_existing_blob(target, blob):
                raise ManifestUnknown(f"blob {blob} of {source} was just garbage-collected")
        self._meta.put_manifest(
            target,
            record,
            blob_digests,
            [d.digest for d in parsed.manifests],
            tags=[],
        )

    def tag(self, repository: str, tag: str, digest: str, origin: ChangeOrigin) -> TagChange:
        """Point `tag` at a manifest `repository` holds, recorded with `origin` (TagImmutable
        when a rule protects the tag and it names another manifest)."""
        validate_tag(tag)
        self._refuse_if_protected(repository, tag, digest)
        event = self._meta.tag_manifest(repository, tag, digest, origin)
        return TagChange(repository, tag, digest, event)

    def _refuse_if_protected(self, repository: str, tag: str, digest: str) -> None:
        """Refuse before linking anything (the store re-checks when it moves the tag)."""
        current = self._meta.tag_record(repository, tag)
        if current is None or current.digest == digest:
            return
        for rule in self._meta.immutable_rules(namespace_of(repository)):
            if rule.applies_to(repository, tag):
                raise TagImmutable(
                    f"tag {tag} of {repository} is immutable ({rule.describe()}): it cannot "
                    "be moved; ask a namespace admin to remove the rule",
                    detail={"tag": tag, "rule": rule.id, "pattern": rule.pattern},
                )

    # -- immutable-tag rules
    def rules(self, namespace: str) -> list[ImmutableRule]:
        return self._meta.immutable_rules(self._namespace(namespace))

    def add_rule(
        self, namespace: str, pattern: str, repository: str | None, actor: str | None
    ) -> ImmutableRule:
        namespace = self._namespace(namespace)
        if repository:
            validate_name(repository)
            if namespace_of(repository) != namespace:
                raise NameInvalid(f"repository {repository} is not in namespace {namespace}")
        return self._meta.add_immutable_rule(
            namespace, repository or "", validate_pattern(pattern), actor
        )

    def remove_rule(self, namespace: str, rule_id: int) -> bool:
        return self._meta.remove_immutable_rule(self._namespace(namespace), rule_id)

    @staticmethod
    def _namespace(namespace: str) -> str:
        validate_name(namespace)
        if "/" in namespace:
            raise NameInvalid(f"{namespace!r} is a repository; a namespace has no '/'")
        return namespace

    def _unknown_tag(self, repository: str, tag: str) -> NoReturn:
        if not self._meta.repository_exists(repository):
            raise NameUnknown(f"repository {repository} is not known")
        raise ManifestUnknown(f"{repository} has no tag {tag}")

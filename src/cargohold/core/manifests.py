"""Manifests and tags: accept only complete manifests, resolve tags, list referrers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cargohold.cache_only import require_io
from cargohold.digest import Digest, is_digest_like
from cargohold.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
)
from cargohold.manifest import ParsedManifest, parse_manifest
from cargohold.reference import validate_name, validate_tag
from cargohold.storage.meta import ChangeOrigin, ManifestRecord, MetadataStore, ReferrerRecord

if TYPE_CHECKING:
    from cargohold.proxy import ProxyService


@dataclass(frozen=True, slots=True)
class PutResult:
    digest: str
    subject: str | None
    tags: list[str]


class ManifestService:
    def __init__(self, meta: MetadataStore, max_manifest_size: int) -> None:
        self._meta = meta
        self.max_manifest_size = max_manifest_size
        # Pull-through cache (cargohold.proxy): consulted by get() in cached namespaces.
        self.proxy: ProxyService | None = None

    def put(
        self,
        repository: str,
        reference: str,
        body: bytes,
        content_type: str | None,
        extra_tags: Sequence[str] = (),
        actor: str | None = None,
    ) -> PutResult:
        validate_name(repository)
        if len(body) > self.max_manifest_size:
            raise ManifestTooLarge(
                f"manifest is {len(body)} bytes; the limit is {self.max_manifest_size}"
            )
        if is_digest_like(reference):
            claimed = Digest.parse(reference)
            digest = Digest.of(body, claimed.algorithm)
            if digest != claimed:
                raise DigestInvalid(
                    f"manifest body has digest {digest}, not {claimed}",
                    detail={"expected": str(claimed), "actual": str(digest)},
                )
            tags = [validate_tag(tag) for tag in extra_tags]
        else:
            digest = Digest.of(body)
            tags = [validate_tag(reference), *(validate_tag(tag) for tag in extra_tags)]
        parsed = parse_manifest(body, content_type)
        self._check_references(repository, parsed)
        record = ManifestRecord(
            digest=str(digest),
            media_type=parsed.media_type,
            content=body,
            artifact_type=parsed.artifact_type,
            subject=parsed.subject.digest if parsed.subject else None,
            annotations=parsed.annotations,
        )
        unique_tags = list(dict.fromkeys(tags))
        self._meta.put_manifest(
            repository,
            record,
            blob_digests=[d.digest for d in parsed.blobs],
            child_digests=[d.digest for d in parsed.manifests],
            tags=unique_tags,
            origin=ChangeOrigin(actor, "push"),
        )
        return PutResult(record.digest, record.subject, unique_tags)

    def _check_references(self, repository: str, parsed: ParsedManifest) -> None:
        sizes = self._meta.blob_sizes(repository, (d.digest for d in parsed.blobs))
        missing = [d.digest for d in parsed.blobs if d.digest not in sizes]
        children = self._meta.existing_manifests(repository, (d.digest for d in parsed.manifests))
        missing += [d.digest for d in parsed.manifests if d.digest not in children]
        if missing:
            raise ManifestBlobUnknown(
                f"manifest references {len(missing)} unknown blob(s) or manifest(s): "
                + ", ".join(missing[:5]),
                detail={"digests": missing},
            )
        wrong = [d for d in parsed.blobs if sizes[d.digest] != d.size]
        if wrong:
            first = wrong[0]
            raise ManifestInvalid(
                f"descriptor for {first.digest} says {first.size} bytes but the blob has "
                f"{sizes[first.digest]}",
                detail={"digest": first.digest},
            )

    def get(self, repository: str, reference: str) -> ManifestRecord:
        validate_name(repository)
        rule = self.proxy.rule_for(repository) if self.proxy is not None else None
        if rule is not None:
            assert self.proxy is not None
            require_io()  # the upstream may be asked
            record = self.proxy.get_manifest(rule, repository, reference, self._local(repository))
            return record
        if is_digest_like(reference):
            record = self._meta.get_manifest(repository, str(Digest.parse(reference)))
        else:
            record = self._meta.get_tagged_manifest(repository, validate_tag(reference))
        if record is None:
            self._raise_unknown(repository, reference)
        return record

    def _local(self, repository: str) -> Callable[[str], ManifestRecord | None]:
        def lookup(reference: str) -> ManifestRecord | None:
            if is_digest_like(reference):
                return self._meta.get_manifest(repository, str(Digest.parse(reference)))
            return self._meta.get_tagged_manifest(repository, validate_tag(reference))

        return lookup

    def delete(self, repository: str, reference: str, actor: str | None = None) -> None:
        validate_name(repository)
        origin = ChangeOrigin(actor, "delete")
        if is_digest_like(reference):
            found = self._meta.delete_manifest(repository, str(Digest.parse(reference)), origin)
        else:
            found = self._meta.delete_tag(repository, validate_tag(reference), origin)
        if not found:
            self._raise_unknown(repository, reference)

    def _raise_unknown(self, repository: str, reference: str) -> None:
        if not self._meta.repository_exists(repository):
            raise NameUnknown(f"repository {repository} is not known")
        raise ManifestUnknown(f"manifest {reference} is not in repository {repository}")

    def referrers(
        self, repository: str, subject: str, artifact_type: str | None
    ) -> list[ReferrerRecord]:
        validate_name(repository)
        digest = str(Digest.parse(subject))
        if artifact_type is not None and "\x00" in artifact_type:
            # No stored artifact type holds NUL (parsing refuses it), and PostgreSQL cannot
            # even compare one: nothing matches.
            return []
        return self._meta.list_referrers(repository, digest, artifact_type)

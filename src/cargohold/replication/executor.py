"""Run one attempt of a replication execution: what to copy (or delete), then copy it.

Per image (a tag): the manifest, every platform of an index (children first), the
blobs, the referrers of each (OCI 1.1 `subject`: signatures, SBOMs, attestations, to
MAX_REFERRER_DEPTH) and cosign's `sha256-<hex>.sig` tags after their subject, then the
tag. Whatever the destination has already is skipped: a manifest it has (HEAD) is not
sent again, nor are its blobs; a blob it has (HEAD) is not sent; a blob this run or the
source's other repositories put in another destination repository is mounted from
there. Replicating twice copies nothing the second time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cargohold.digest import Digest
from cargohold.manifest import parse_manifest
from cargohold.proxy.errors import UpstreamUnavailable
from cargohold.replication.sides import Local, Remote
from cargohold.replication.store import (
    FAILED,
    PARTIAL,
    SUCCEEDED,
    Execution,
    ReplicationStore,
    Rule,
)
from cargohold.signatures.cosign import signature_tag

log = logging.getLogger(__name__)

MAX_REFERRER_DEPTH = 3
BACKOFF_FACTORS = (1, 4, 20)  # times replication_backoff_seconds: 30 s, 2 min, 10 min
MAX_ATTEMPTS = len(BACKOFF_FACTORS) + 1
COSIGN_TAG = re.compile(r"^(sha256)-([a-f0-9]{64})\.(sig|att|sbom)$")

Side = Local | Remote


def retry_delay(attempts: int, base_seconds: float) -> float | None:
    """Seconds before the next attempt after ``attempts`` failed ones; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return base_seconds * BACKOFF_FACTORS[max(attempts, 1) - 1]


@dataclass
class Counts:
    manifests: int = 0
    blobs_copied: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    bytes: int = 0

    def as_task(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Work:
    """What one attempt does: (source repository, tag) copies and destination deletes."""

    copies: list[tuple[str, str]] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)  # (destination repo, tag)


class AttemptAborted(Exception):
    """The other side is unreachable: stop this attempt, retry later."""


class Copier:
    def __init__(
        self,
        rule: Rule,
        source: Side,
        destination: Side,
        mount_candidates: Callable[[str, str], list[str]],
    ) -> None:
        self.rule = rule
        self.src = source
        self.dst = destination
        self._candidates = mount_candidates
        self._seen: set[tuple[str, str]] = set()
        self._placed: dict[str, str] = {}  # blob digest -> a destination repo holding it

    def copy_tag(self, repo: str, tag: str, counts: Counts) -> str:
        """Copy ``repo:tag`` and everything that goes with it; the manifest digest."""
        dst_repo = self.rule.destination(repo)
        body, media_type = self.src.manifest(repo, tag)
        digest = str(Digest.of(body))
        self._manifest(repo, dst_repo, digest, 0, counts)
        if self.dst.tag_digest(dst_repo, tag) != digest:
            self.dst.put_manifest(dst_repo, tag, body, parse_manifest(body, media_type).media_type)
        return digest

    def _manifest(self, repo: str, dst_repo: str, digest: str, depth: int, counts: Counts) -> None:
        if (dst_repo, digest) in self._seen:
            return
        self._seen.add((dst_repo, digest))
        body, media_type = self.src.manifest(repo, digest)
        actual = str(Digest.of(body, Digest.parse(digest).algorithm))
        if actual != digest:
            raise ValueError(f"{self.src.where} sent {repo}@{digest} with digest {actual}")
        parsed = parse_manifest(body, media_type)
        for child in parsed.manifests:  # platforms first: an index needs them
            self._manifest(repo, dst_repo, child.digest, depth, counts)
        if not self.dst.has_manifest(dst_repo, digest):
            for blob in parsed.blobs:
                self._blob(repo, dst_repo, blob.digest, blob.size, counts)
            self.dst.put_manifest(dst_repo, digest, body, parsed.media_type)
            counts.manifests += 1
        if depth >= MAX_REFERRER_DEPTH:
            return
        for referrer in self.src.referrers(repo, digest):
            self._manifest(repo, dst_repo, referrer, depth + 1, counts)
        sig_tag = signature_tag(digest)
        signature = self.src.tag_digest(repo, sig_tag)
        if signature is not None:
            self._manifest(repo, dst_repo, signature, depth + 1, counts)
            if self.dst.tag_digest(dst_repo, sig_tag) != signature:
                sig_body, sig_type = self.src.manifest(repo, signature)
                self.dst.put_manifest(
                    dst_repo, sig_tag, sig_body, parse_manifest(sig_body, sig_type).media_type
                )

    def _blob(self, repo: str, dst_repo: str, digest: str, size: int, counts: Counts) -> None:
        if self.dst.has_blob(dst_repo, digest):
            counts.blobs_skipped += 1
            return
        candidates = [self._placed[digest]] if digest in self._placed else []
        candidates += self._candidates(repo, digest)
        mounted, session = self.dst.mount(dst_repo, digest, candidates)
        if mounted:
            counts.blobs_mounted += 1
        else:
            with self.src.open_blob(repo, digest) as chunks:
                self.dst.put_blob(dst_repo, digest, size, chunks, session)
            counts.blobs_copied += 1
            counts.bytes += size
        self._placed.setdefault(digest, dst_repo)


def plan(rule: Rule, execution: Execution, source: Side, destination: Side) -> Work:
    """The tags to copy and the destination tags to delete in this execution."""
    work = Work()
    scope = execution.scope
    if scope is not None:
        repo = scope["repository"]
        if scope.get("delete"):
            work.deletes = [(rule.destination(repo), t) for t in scope.get("tags") or []]
            return work
        if scope.get("tag"):
            work.copies = [(repo, scope["tag"])] if source.tag_digest(repo, scope["tag"]) else []
        elif scope.get("digest"):
            work.copies = [(repo, t) for t in _tags_naming(rule, source, repo, scope["digest"])]
        return work
    repositories = [rule.fixed_repository] if rule.fixed_repository else source.repositories()
    for repo in sorted(r for r in repositories if rule.matches_repository(r)):
        tags = [t for t in source.tags(repo) if rule.matches_tag(t) and not COSIGN_TAG.match(t)]
        work.copies += [(repo, t) for t in tags]
        if rule.replicate_deletes:
            dst_repo = rule.destination(repo)
            kept = set(tags)
            work.deletes += [
                (dst_repo, t)
                for t in destination.tags(dst_repo)
                if rule.matches_tag(t) and not COSIGN_TAG.match(t) and t not in kept
            ]
    return work


def _tags_naming(rule: Rule, source: Side, repo: str, digest: str) -> list[str]:
    """Tags of ``repo`` matching the rule that name ``digest`` or an index holding it."""
    found = []
    for tag in source.tags(repo):
        if not rule.matches_tag(tag) or COSIGN_TAG.match(tag):
            continue
        named = source.tag_digest(repo, tag)
        if named == digest:
            found.append(tag)
            continue
        body, media_type = source.manifest(repo, tag)
        if any(c.digest == digest for c in parse_manifest(body, media_type).manifests):
            found.append(tag)
    return found


def run_attempt(
    store: ReplicationStore,
    rule: Rule,
    execution: Execution,
    source: Side,
    destination: Side,
    on_progress: Callable[[], None] = lambda: None,
) -> tuple[str, str | None]:
    """One attempt: (outcome, error). The outcome is SUCCEEDED, or FAILED/PARTIAL when
    something failed (the caller retries those while attempts remain)."""
    attempt = execution.attempts

    def candidates(repo: str, digest: str) -> list[str]:
        if not isinstance(source, Local):
            return []
        return [
            rule.destination(r)
            for r in store.repositories_with_blob(digest)
            if r != repo  # a repository the destination lacks costs nothing: an upload
        ]

    copier = Copier(rule, source, destination, candidates)
    try:
        work = plan(rule, execution, source, destination)
    except UpstreamUnavailable as exc:
        return FAILED, f"listing what to replicate failed: {exc}"
    except Exception as exc:
        log.exception("replication rule %s: planning failed", rule.name)
        return FAILED, f"listing what to replicate failed: {type(exc).__name__}: {exc}"
    failures: list[str] = []
    done = 0

    def log_task(action: str, source_ref: str, dest_ref: str, **values: Any) -> None:
        store.record_task(
            execution.id,
            attempt,
            action=action,
            source=source_ref,
            destination=dest_ref,
            **values,
        )

    for repo, tag in work.copies:
        counts = Counts()
        source_ref, dest_ref = f"{repo}:{tag}", f"{rule.destination(repo)}:{tag}"
        try:
            digest = copier.copy_tag(repo, tag, counts)
        except Exception as exc:
            failures.append(f"{source_ref}: {_describe(exc)}")
            log_task(
                "copy", source_ref, dest_ref, state=FAILED, error=_describe(exc), **counts.as_task()
            )
            if isinstance(exc, UpstreamUnavailable):
                break  # the other side is down: no point trying every image now
            continue
        done += 1
        log_task("copy", source_ref, dest_ref, digest=digest, state=SUCCEEDED, **counts.as_task())
        on_progress()
    for dst_repo, tag in work.deletes:
        where = f"{dst_repo}:{tag}"
        try:
            removed = destination.delete_tag(dst_repo, tag)
        except Exception as exc:
            failures.append(f"delete {where}: {_describe(exc)}")
            log_task("delete", where, where, state=FAILED, error=_describe(exc))
            continue
        done += 1
        note = None if removed else "not there (already deleted)"
        log_task("delete", where, where, state=SUCCEEDED, error=note)
        on_progress()
    if not failures:
        return SUCCEEDED, None
    summary = f"{len(failures)} of {len(work.copies) + len(work.deletes)} failed: " + "; ".join(
        failures[:3]
    )
    return (PARTIAL if done else FAILED), summary[:2000]


def _describe(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {text}"[:1000]


def scope_for(rule: Rule, event: Any) -> dict[str, Any] | None:
    """What a push rule with trigger `event` replicates for a log event; None: nothing."""
    repo = event.repository
    if not repo or not rule.matches_repository(repo):
        return None
    if event.type == "delete":
        if not rule.replicate_deletes:
            return None
        tags = [event.tag] if event.tag else list(event.data.get("tags") or [])
        tags = [t for t in tags if rule.matches_tag(t) or COSIGN_TAG.match(t)]
        return {"repository": repo, "delete": True, "tags": tags} if tags else None
    if event.type not in ("push", "tag_created", "tag_moved"):
        return None
    tag = event.tag
    if tag:
        cosign = COSIGN_TAG.match(tag)
        if cosign:
            return {"repository": repo, "digest": f"{cosign[1]}:{cosign[2]}"}
        return {"repository": repo, "tag": tag} if rule.matches_tag(tag) else None
    subject = event.data.get("subject")
    return {"repository": repo, "digest": subject} if subject else None


__all__ = ["MAX_ATTEMPTS", "Copier", "plan", "retry_delay", "run_attempt", "scope_for"]

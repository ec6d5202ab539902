"""Retention policies: which tags go, planned by a pure function, removed through the store.

What a policy means (the CLI's and the admin API's help say the same):

- A policy belongs to a namespace and applies to the tags matching its glob `tag_pattern`
  (* ? [...]) in every repository of the namespace, or in its one `repository`.
- Each repository is planned on its own. Among the tags a policy applies to there, the
  policy keeps a tag when
  - it is one of the `keep_last` most recently pushed (push time: when the tag was last
    set, `tags.updated_at`; tags pushed at the same moment rank by name in ASCII order,
    so of `a` and `b` pushed together `a` counts as the more recent), or
  - it was pushed within `keep_days` days, or pulled within them: a pull counts for a tag
    when it asked for the tag by name, or fetched the digest the tag names now (by digest
    or through another tag). Pull times come from the audit log's pull events.
- A tag an immutable-tag rule protects is always kept. It still takes one of the
  `keep_last` places, as every matching tag does.
- Every other tag the policy applies to, the policy would remove. When several policies
  apply to one tag, it is removed only if every one of them would remove it: keep wins.
  Tags that no policy applies to are never touched.
- A policy has `keep_last`, `keep_days` or both (each >= 0). `keep_last` 0 alone removes
  every matching tag that is not immutable; with both set, either keeps a tag.

A removal deletes the tag only, recorded in the tag history (via "retention") and in the
audit log (one "retention_delete" event per tag: target "repository:tag", the digest and
the policies). The manifests become untagged; garbage collection removes them later
(after tag_history_keep_days, while they are rollback targets). A tag pushed again, or
protected by a new rule, between planning and removal is left alone and reported as
skipped. A dry run plans the same and removes nothing: it lists exactly what a run at
that moment would remove.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cargohold.auth.audit import AuditEvent
from cargohold.core.versioning import namespace_of, validate_pattern
from cargohold.errors import NameInvalid, RegistryError, TagImmutable
from cargohold.reference import validate_name
from cargohold.storage.meta import ChangeOrigin, ImmutableRule, MetadataStore, TagRecord
from cargohold.storage.meta.base import RetentionPolicy

log = logging.getLogger(__name__)

MAX_KEEP_LAST = 1_000_000
MAX_KEEP_DAYS = 36_500
AUDIT_ACTION = "retention_delete"


class PolicyInvalid(RegistryError):
    """keep_last / keep_days missing or out of range."""


# ------------------------------------------------------------------------------------------
# Planning: pure


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the policies decide for one tag that at least one of them applies to."""

    repository: str
    tag: str
    digest: str
    pushed_at: datetime
    pulled_at: datetime | None
    keep: bool
    reasons: tuple[str, ...]  # why it stays (empty when it goes)
    policies: tuple[int, ...]  # the ids of the policies that apply to it


@dataclass(frozen=True, slots=True)
class Plan:
    verdicts: tuple[Verdict, ...]  # by repository, then tag name

    @property
    def kept(self) -> set[tuple[str, str]]:
        return {(v.repository, v.tag) for v in self.verdicts if v.keep}

    @property
    def removed(self) -> set[tuple[str, str]]:
        return {(v.repository, v.tag) for v in self.verdicts if not v.keep}

    def removals(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.keep]

    def verdict(self, repository: str, tag: str) -> Verdict:
        for found in self.verdicts:
            if (found.repository, found.tag) == (repository, tag):
                return found
        raise KeyError((repository, tag))


def _covers(policy: RetentionPolicy, repository: str) -> bool:
    if namespace_of(repository) != policy.namespace:
        return False
    return not policy.repository or policy.repository == repository


def _ranked(records: Sequence[TagRecord]) -> list[TagRecord]:
    """Most recently pushed first; equal push times in ASCII order of the name."""
    by_name = sorted(records, key=lambda record: record.name)
    return sorted(by_name, key=lambda record: record.updated_at, reverse=True)


def _last_pull(record: TagRecord, pulls: Mapping[str, datetime]) -> datetime | None:
    """By the tag's name, or of the digest it names (by digest or through another tag)."""
    times = [pulls.get(record.name), pulls.get(record.digest)]
    return max((t for t in times if t is not None), default=None)


def plan_retention(
    policies: Sequence[RetentionPolicy],
    tags: Mapping[str, Sequence[TagRecord]],
    pulls: Mapping[str, Mapping[str, datetime]],
    rules: Sequence[ImmutableRule],
    now: datetime,
) -> Plan:
    """Decide every tag some policy applies to (see the module docstring).

    `tags`: repository -> its tags (updated_at = push time). `pulls`: repository -> tag
    name or digest -> latest pull. `rules`: the immutable-tag rules.
    """
    verdicts: list[Verdict] = []
    for repository in sorted(tags):
        applying = [policy for policy in policies if _covers(policy, repository)]
        if not applying:
            continue
        records = tags[repository]
        pulled_here = pulls.get(repository, {})
        reasons: dict[str, list[str]] = {}
        matched: dict[str, list[int]] = {}
        for policy in applying:
            matching = [r for r in records if policy.applies_to(repository, r.name)]
            cutoff = None if policy.keep_days is None else now - timedelta(days=policy.keep_days)
            for rank, record in enumerate(_ranked(matching)):
                matched.setdefault(record.name, []).append(policy.id)
                why = reasons.setdefault(record.name, [])
                if policy.keep_last is not None and rank < policy.keep_last:
                    why.append(
                        f"policy {policy.id}: #{rank + 1} of the {policy.keep_last} most "
                        "recently pushed"
                    )
                if cutoff is not None:
                    if record.updated_at >= cutoff:
                        why.append(f"policy {policy.id}: pushed within {policy.keep_days} days")
                    last_pull = _last_pull(record, pulled_here)
                    if last_pull is not None and last_pull >= cutoff:
                        why.append(f"policy {policy.id}: pulled within {policy.keep_days} days")
        for record in sorted(records, key=lambda r: r.name):
            if record.name not in matched:
                continue
            why = reasons[record.name]
            why.extend(
                rule.describe() for rule in rules if rule.applies_to(repository, record.name)
            )
            verdicts.append(
                Verdict(
                    repository=repository,
                    tag=record.name,
                    digest=record.digest,
                    pushed_at=record.updated_at,
                    pulled_at=_last_pull(record, pulled_here),
                    keep=bool(why),
                    reasons=tuple(why),
                    policies=tuple(matched[record.name]),
                )
            )
    return Plan(tuple(verdicts))


# ------------------------------------------------------------------------------------------
# Running


class AuditSink(Protocol):
    def add(self, events: Sequence[AuditEvent]) -> None: ...


@dataclass(slots=True)
class RetentionReport:
    dry_run: bool
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    policies: int = 0
    removed: int = 0  # or, in a dry run, would be removed
    kept: int = 0
    skipped: int = 0
    # pulled_at: the latest pull within the longest keep_days of the namespace's policies.
    # repository -> {"removed": [{tag, digest, pushed_at, pulled_at, policies}],
    #                "kept": count, "skipped": [{tag, digest, reason}]}
    repositories: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def check_namespace(namespace: str) -> str:
    validate_name(namespace)
    if "/" in namespace:
        raise NameInvalid(f"{namespace!r} is a repository; a namespace has no '/'")
    return namespace


def check_keep(keep_last: int | None, keep_days: int | None) -> None:
    if keep_last is None and keep_days is None:
        raise PolicyInvalid("a retention policy needs keep_last, keep_days or both")
    if keep_last is not None and not 0 <= keep_last <= MAX_KEEP_LAST:
        raise PolicyInvalid(f"keep_last must be between 0 and {MAX_KEEP_LAST}")
    if keep_days is not None and not 0 <= keep_days <= MAX_KEEP_DAYS:
        raise PolicyInvalid(f"keep_days must be between 0 and {MAX_KEEP_DAYS}")


class RetentionService:
    def __init__(self, meta: MetadataStore, audit: AuditSink | None = None) -> None:
        self._meta = meta
        self._audit = audit

    # -- policies
    def policies(self, namespace: str) -> list[RetentionPolicy]:
        return self._meta.retention_policies(check_namespace(namespace))

    def add_policy(
        self,
        namespace: str,
        pattern: str,
        repository: str | None,
        keep_last: int | None,
        keep_days: int | None,
        actor: str | None,
    ) -> RetentionPolicy:
        namespace = check_namespace(namespace)
        if repository:
            validate_name(repository)
            if namespace_of(repository) != namespace:
                raise NameInvalid(f"repository {repository} is not in namespace {namespace}")
        check_keep(keep_last, keep_days)
        return self._meta.add_retention_policy(
            namespace, repository or "", validate_pattern(pattern), keep_last, keep_days, actor
        )

    def remove_policy(self, namespace: str, policy_id: int) -> bool:
        return self._meta.remove_retention_policy(check_namespace(namespace), policy_id)

    # -- planning and running
    def plan(self, namespace: str | None = None, now: datetime | None = None) -> Plan:
        """What a run would do now, for one namespace or every namespace with policies."""
        return self._plan(namespace, now or datetime.now(UTC))[0]

    def _plan(self, namespace: str | None, now: datetime) -> tuple[Plan, int]:
        """The plan and the number of policies it followed."""
        if namespace is not None:
            check_namespace(namespace)
        found = self._meta.retention_policies(namespace)
        by_namespace: dict[str, list[RetentionPolicy]] = {}
        for policy in found:
            by_namespace.setdefault(policy.namespace, []).append(policy)
        verdicts: list[Verdict] = []
        for name, policies in sorted(by_namespace.items()):
            tags = self._meta.retention_tags(name)
            if not tags:
                continue
            days = [p.keep_days for p in policies if p.keep_days is not None]
            pulls = self._meta.last_pulls(name, now - timedelta(days=max(days))) if days else {}
            rules = self._meta.immutable_rules(name)
            verdicts.extend(plan_retention(policies, tags, pulls, rules, now).verdicts)
        return Plan(tuple(verdicts)), len(found)

    def run(
        self,
        namespace: str | None,
        dry_run: bool,
        actor: str,
        now: datetime | None = None,
    ) -> RetentionReport:
        started = time.monotonic()
        now = now or datetime.now(UTC)
        report = RetentionReport(dry_run=dry_run, started_at=now.isoformat())
        plan, report.policies = self._plan(namespace, now)
        origin = ChangeOrigin(actor, "retention")
        by_repository: dict[str, list[Verdict]] = {}
        for verdict in plan.verdicts:
            by_repository.setdefault(verdict.repository, []).append(verdict)
        for repository, mine in sorted(by_repository.items()):
            entry: dict[str, Any] = {"removed": [], "kept": 0, "skipped": []}
            report.repositories[repository] = entry
            events: list[AuditEvent] = []
            try:
                for verdict in mine:
                    if verdict.keep:
                        entry["kept"] += 1
                        continue
                    reason = None if dry_run else self._remove(verdict, origin)
                    if reason is not None:
                        entry["skipped"].append(
                            {"tag": verdict.tag, "digest": verdict.digest, "reason": reason}
                        )
                        continue
                    entry["removed"].append(
                        {
                            "tag": verdict.tag,
                            "digest": verdict.digest,
                            "pushed_at": _iso(verdict.pushed_at),
                            "pulled_at": _iso(verdict.pulled_at),
                            "policies": list(verdict.policies),
                        }
                    )
                    if not dry_run:
                        events.append(
                            AuditEvent(
                                actor=actor,
                                action=AUDIT_ACTION,
                                target=f"{repository}:{verdict.tag}",
                                detail={
                                    "digest": verdict.digest,
                                    "policies": list(verdict.policies),
                                },
                            )
                        )
            finally:
                # What was removed is logged, even when a later removal failed.
                if events and self._audit is not None:
                    self._audit.add(events)
            report.removed += len(entry["removed"])
            report.kept += entry["kept"]
            report.skipped += len(entry["skipped"])
        report.finished_at = datetime.now(UTC).isoformat()
        report.seconds = round(time.monotonic() - started, 3)
        if not dry_run and (report.removed or report.skipped):
            log.info(
                "retention removed %d tags (%d kept, %d skipped) by %s",
                report.removed,
                report.kept,
                report.skipped,
                actor,
            )
        return report

    def _remove(self, verdict: Verdict, origin: ChangeOrigin) -> str | None:
        """Remove the tag if it is still what the plan saw; why not, otherwise."""
        try:
            removed = self._meta.delete_tag_if_unchanged(
                verdict.repository, verdict.tag, verdict.digest, verdict.pushed_at, origin
            )
        except TagImmutable:
            return "protected by an immutable-tag rule added meanwhile"
        return None if removed else "pushed again or deleted since it was planned"

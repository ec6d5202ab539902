"""The vulnerability-scan pull policy of a namespace: refuse pulls of vulnerable images.

What a policy means (the CLI's and the admin API's help say the same):

- A namespace has at most one policy: a severity threshold (`min_severity`: critical,
  high, medium or low) and whether images that have no scan result yet may be pulled
  (`allow_unscanned`). Without a policy, every pull is allowed.
- A GET of a container image or an index of them in the namespace is refused (403 DENIED)
  when its latest stored scan has a finding at or above the threshold that no allow-list
  entry excepts. Findings of severity "unknown" count at the threshold "low" only. For an
  index, the findings of every platform count; an image pulled as a platform of an index
  with no scan of its own is judged by the index's scan of that platform.
- An image without any scan result is refused unless `allow_unscanned` is set.
- Only images and indexes are judged: referrers (signatures, SBOMs, attestations) and
  other artifacts always pass, and so does HEAD (existence checks).
- An allow-list entry names a vulnerability: an advisory ID or any of its aliases (CVE
  IDs...), compared case-insensitively. It excepts that vulnerability in every image of
  the namespace until `expires_at` (none: until removed). An expired entry excepts nothing.

The pull path asks `PullPolicyGate`, which keeps each namespace's policy and allow-list in
memory for POLICY_CACHE_SECONDS: a change takes effect on every server within that time,
and a namespace without a policy costs no query per pull beyond that refresh.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select

from cargohold.core.versioning import namespace_of
from cargohold.errors import NameInvalid, RegistryError, ScanPolicyViolation
from cargohold.mediatypes import is_scannable
from cargohold.reference import validate_name
from cargohold.scan.results import ScanResultStore, StoredScan
from cargohold.scan.service import SEVERITIES
from cargohold.storage.meta import models as m
from cargohold.storage.meta.sqlbase import SqlBase

#: Seconds a server keeps a namespace's policy and allow-list before reading them again:
#: the longest a change takes to reach every pull.
POLICY_CACHE_SECONDS = 5.0

#: The thresholds a policy may have, most severe first.
THRESHOLDS = ("critical", "high", "medium", "low")

#: How many findings a refusal names.
NAMED_FINDINGS = 3

_RANK = {name: rank for rank, name in enumerate(THRESHOLDS)}
_VULNERABILITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,254}$")
_MAX_CACHED = 10_000


class ScanPolicyInvalid(RegistryError):
    """A threshold, vulnerability ID or expiry that cannot be."""


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def check_namespace(namespace: str) -> str:
    validate_name(namespace)
    if "/" in namespace:
        raise NameInvalid(f"{namespace!r} is a repository; a namespace has no '/'")
    return namespace


def check_severity(severity: str) -> str:
    value = severity.strip().lower()
    if value not in _RANK:
        raise ScanPolicyInvalid(
            f"invalid severity {severity[:40]!r}: use one of {', '.join(THRESHOLDS)}"
        )
    return value


def check_vulnerability(vulnerability: str) -> str:
    value = vulnerability.strip()
    if not _VULNERABILITY.match(value):
        raise ScanPolicyInvalid(
            f"invalid vulnerability ID {vulnerability[:80]!r}: give an advisory ID or alias "
            "such as CVE-2024-1234 or GHSA-xxxx-xxxx-xxxx (letters, digits, . _ : + -)"
        )
    return value


def severity_rank(severity: str) -> int:
    """0 for critical .. 3 for low; "unknown" (and anything else) ranks as low."""
    return _RANK.get(severity, _RANK["low"])


# ------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class ScanPolicy:
    namespace: str
    min_severity: str
    allow_unscanned: bool
    updated_at: datetime
    updated_by: str | None

    def describe(self) -> str:
        unscanned = "allows" if self.allow_unscanned else "refuses"
        return (
            f"namespace {self.namespace} refuses images with findings of severity "
            f"{self.min_severity} or worse, and {unscanned} images not scanned yet"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "min_severity": self.min_severity,
            "allow_unscanned": self.allow_unscanned,
            "updated_at": self.updated_at.astimezone(UTC).isoformat(),
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True, slots=True)
class AllowEntry:
    namespace: str
    vulnerability: str
    expires_at: datetime | None
    reason: str | None
    created_at: datetime
    created_by: str | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def matches(self, finding: dict[str, Any]) -> bool:
        wanted = self.vulnerability.casefold()
        return wanted in finding_ids(finding)

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "vulnerability": self.vulnerability,
            "expires_at": self.expires_at.astimezone(UTC).isoformat() if self.expires_at else None,
            "expired": self.expired(now),
            "reason": self.reason,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "created_by": self.created_by,
        }


def finding_ids(finding: dict[str, Any]) -> set[str]:
    """The advisory ID and its aliases, case-folded."""
    ids = [finding.get("advisory") or "", *(finding.get("aliases") or [])]
    return {str(i).casefold() for i in ids if i}


def preferred_id(finding: dict[str, Any]) -> str:
    """The ID to name a finding by in an exception: its CVE alias if any, else the advisory."""
    for alias in finding.get("aliases") or []:
        if str(alias).upper().startswith("CVE-"):
            return str(alias)
    return str(finding.get("advisory") or "?")


# ------------------------------------------------------------------------------------------
# Evaluation: pure


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    """What a namespace's policy says about one pull."""

    allowed: bool
    # no-policy | not-an-image | unscanned | unscanned-allowed | clean | violations
    reason: str
    threshold: str | None = None
    violations: tuple[dict[str, Any], ...] = ()  # worst first, one per advisory and package
    excepted: tuple[dict[str, Any], ...] = ()  # would violate, but an allow-list entry excepts
    scanned_at: datetime | None = None

    def worst(self, count: int = NAMED_FINDINGS) -> list[dict[str, Any]]:
        return list(self.violations[:count])


def _distinct(findings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One finding per (advisory, package, installed version): platforms repeat them."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for finding in findings:
        key = (finding.get("advisory"), finding.get("package"), finding.get("installed_version"))
        if key not in seen:
            seen.add(key)
            out.append(finding)
    return out


def _worst_first(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {name: rank for rank, name in enumerate(SEVERITIES)}
    return sorted(
        findings,
        key=lambda f: (
            order.get(f.get("severity", "unknown"), len(SEVERITIES)),
            str(f.get("advisory")),
            str(f.get("package")),
        ),
    )


def evaluate_findings(
    policy: ScanPolicy,
    allowlist: Sequence[AllowEntry],
    findings: Iterable[dict[str, Any]],
    now: datetime,
    scanned_at: datetime | None = None,
) -> PolicyVerdict:
    """Judge scanned findings: refused when one at or above the threshold is not excepted."""
    threshold = _RANK[policy.min_severity]
    live = [entry for entry in allowlist if not entry.expired(now)]
    violations, excepted = [], []
    for finding in _distinct(findings):
        if severity_rank(str(finding.get("severity", "unknown"))) > threshold:
            continue
        if any(entry.matches(finding) for entry in live):
            excepted.append(finding)
        else:
            violations.append(finding)
    return PolicyVerdict(
        allowed=not violations,
        reason="violations" if violations else "clean",
        threshold=policy.min_severity,
        violations=tuple(_worst_first(violations)),
        excepted=tuple(_worst_first(excepted)),
        scanned_at=scanned_at,
    )


def evaluate(
    policy: ScanPolicy | None,
    allowlist: Sequence[AllowEntry],
    scan: StoredScan | None,
    now: datetime,
) -> PolicyVerdict:
    """Judge an image's latest stored scan (None: it has none) at the moment `now`."""
    if policy is None:
        return PolicyVerdict(allowed=True, reason="no-policy")
    if scan is None:
        return PolicyVerdict(
            allowed=policy.allow_unscanned,
            reason="unscanned-allowed" if policy.allow_unscanned else "unscanned",
            threshold=policy.min_severity,
        )
    if scan.report.status == "not-an-image":
        return PolicyVerdict(allowed=True, reason="not-an-image", threshold=policy.min_severity)
    return evaluate_findings(policy, allowlist, scan.report.findings, now, scan.scanned_at)


# ------------------------------------------------------------------------------------------
# Storage


class ScanPolicyStore(SqlBase):
    """Policies and allow-lists in SQL, on the metadata store's engine."""

    # -- policies
    def get(self, namespace: str) -> ScanPolicy | None:
        p = m.scan_policies
        with self._read() as conn:
            row = conn.execute(select(p).where(p.c.namespace == namespace)).first()
        return None if row is None else _policy(row)

    def set(
        self,
        namespace: str,
        min_severity: str,
        allow_unscanned: bool,
        actor: str | None,
        now: datetime | None = None,
    ) -> ScanPolicy:
        """Create or replace the namespace's policy."""
        check_namespace(namespace)
        values = {
            "namespace": namespace,
            "min_severity": check_severity(min_severity),
            "allow_unscanned": bool(allow_unscanned),
            "updated_at": now or datetime.now(UTC),
            "updated_by": actor,
        }
        statement = self._insert(m.scan_policies).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["namespace"],
            set_={k: v for k, v in values.items() if k != "namespace"},
        )
        with self._write() as conn:
            conn.execute(statement)
        return ScanPolicy(
            namespace,
            values["min_severity"],
            values["allow_unscanned"],
            values["updated_at"],
            actor,
        )

    def remove(self, namespace: str) -> bool:
        """Remove the namespace's policy (its allow-list stays); False if it had none."""
        check_namespace(namespace)
        with self._write() as conn:
            result = conn.execute(
                delete(m.scan_policies).where(m.scan_policies.c.namespace == namespace)
            )
        return bool(result.rowcount)

    # -- allow-list
    def allowlist(self, namespace: str) -> list[AllowEntry]:
        a = m.scan_allowlist
        with self._read() as conn:
            rows = conn.execute(
                select(a).where(a.c.namespace == namespace).order_by(a.c.vulnerability)
            ).all()
        return [_entry(row) for row in rows]

    def allow(
        self,
        namespace: str,
        vulnerability: str,
        expires_at: datetime | None,
        reason: str | None,
        actor: str | None,
        now: datetime | None = None,
    ) -> AllowEntry:
        """Add an exception, or replace the one for the same ID (in any letter case)."""
        check_namespace(namespace)
        vulnerability = check_vulnerability(vulnerability)
        now = now or datetime.now(UTC)
        expires_at = _aware(expires_at)
        if expires_at is not None and expires_at <= now:
            raise ScanPolicyInvalid(
                f"the expiry {expires_at.isoformat()} has passed already; give a future date"
            )
        if reason is not None and len(reason) > 1000:
            raise ScanPolicyInvalid("the reason is longer than 1000 characters")
        a = m.scan_allowlist
        with self._write() as conn:
            conn.execute(delete(a).where(*self._same(namespace, vulnerability)))
            conn.execute(
                a.insert().values(
                    namespace=namespace,
                    vulnerability=vulnerability,
                    expires_at=expires_at,
                    reason=reason or None,
                    created_at=now,
                    created_by=actor,
                )
            )
        return AllowEntry(namespace, vulnerability, expires_at, reason or None, now, actor)

    def disallow(self, namespace: str, vulnerability: str) -> AllowEntry | None:
        """Remove an exception (the ID in any letter case); the entry removed, or None."""
        check_namespace(namespace)
        a = m.scan_allowlist
        with self._write() as conn:
            row = conn.execute(select(a).where(*self._same(namespace, vulnerability))).first()
            if row is None:
                return None
            conn.execute(delete(a).where(*self._same(namespace, vulnerability)))
        return _entry(row)

    @staticmethod
    def _same(namespace: str, vulnerability: str) -> tuple[Any, ...]:
        a = m.scan_allowlist
        return (
            a.c.namespace == namespace,
            func.lower(a.c.vulnerability) == vulnerability.strip().lower(),
        )

    # -- the scan an image is judged by
    def index_scans(self, repository: str, digest: str) -> list[StoredScan]:
        """The latest scans of the indexes in `repository` that list `digest` as a child."""
        mf, ch, rp = m.manifests, m.manifest_children, m.repositories
        with self._read() as conn:
            parents = conn.execute(
                select(mf.c.digest)
                .select_from(mf.join(ch, ch.c.manifest_id == mf.c.id))
                .join(rp, rp.c.id == mf.c.repository_id)
                .where(rp.c.name == repository, ch.c.child_digest == digest)
                .order_by(mf.c.digest)
            ).all()
        results = ScanResultStore(self.engine)
        found = (results.latest(repository, row.digest) for row in parents)
        return [scan for scan in found if scan is not None]


def _policy(row: Any) -> ScanPolicy:
    return ScanPolicy(
        namespace=row.namespace,
        min_severity=row.min_severity,
        allow_unscanned=bool(row.allow_unscanned),
        updated_at=_aware(row.updated_at) or datetime.now(UTC),
        updated_by=row.updated_by,
    )


def _entry(row: Any) -> AllowEntry:
    return AllowEntry(
        namespace=row.namespace,
        vulnerability=row.vulnerability,
        expires_at=_aware(row.expires_at),
        reason=row.reason,
        created_at=_aware(row.created_at) or datetime.now(UTC),
        created_by=row.created_by,
    )


# ------------------------------------------------------------------------------------------
# The pull path


@dataclass(frozen=True, slots=True)
class NamespaceRules:
    policy: ScanPolicy | None
    allowlist: tuple[AllowEntry, ...] = ()


@dataclass
class _Cached:
    loaded: float
    rules: NamespaceRules = field(default_factory=lambda: NamespaceRules(None))


def _finding_text(finding: dict[str, Any]) -> str:
    ident = str(finding.get("advisory") or "?")
    aliases = [str(a) for a in finding.get("aliases") or [] if str(a) != ident]
    named = f"{ident} ({', '.join(aliases[:2])})" if aliases else ident
    fixed = finding.get("fixed_versions") or []
    fix = f"fixed in {', '.join(fixed[:2])}" if fixed else "no fixed version yet"
    return (
        f"{named} in {finding.get('package')} {finding.get('installed_version')} "
        f"[{finding.get('severity')}; {fix}]"
    )


def violation_message(repository: str, digest: str, namespace: str, verdict: PolicyVerdict) -> str:
    """The text of a refusal: what is wrong, the threshold, how to get an exception."""
    if verdict.reason == "unscanned":
        return (
            f"{repository}@{digest} has not been scanned for vulnerabilities yet, and the scan "
            f"policy of namespace {namespace} refuses unscanned images: a scan is queued when "
            f"an image is pushed; pull again once it has run, or scan it now with "
            f"`cargohold scan run {repository}@{digest}`"
        )
    worst = verdict.worst()
    more = len(verdict.violations) - len(worst)
    listed = "; ".join(_finding_text(f) for f in worst) + (f"; and {more} more" if more else "")
    example = preferred_id(worst[0]) if worst else "VULN-ID"
    return (
        f"{repository}@{digest} has vulnerabilities at or above the {verdict.threshold} "
        f"severity that the scan policy of namespace {namespace} refuses: {listed}. Update the "
        f"image, or for an exception ask a namespace admin: `cargohold scan allow {namespace} "
        f"{example} --expires YYYY-MM-DD --reason TEXT`"
    )


def violation_detail(namespace: str, verdict: PolicyVerdict) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "min_severity": verdict.threshold,
        "reason": verdict.reason,
        "findings": [
            {
                key: f.get(key)
                for key in (
                    "advisory",
                    "aliases",
                    "severity",
                    "package",
                    "installed_version",
                    "fixed_versions",
                )
            }
            for f in verdict.worst()
        ],
        "more": max(len(verdict.violations) - NAMED_FINDINGS, 0),
    }


class PullPolicyGate:
    """Decides each manifest GET against the namespace's policy (see the module docstring).

    `check` raises ScanPolicyViolation for a refused pull. Policies and allow-lists are
    cached per namespace for `ttl` seconds; scan results are read only for namespaces
    that have a policy.
    """

    def __init__(
        self,
        policies: ScanPolicyStore,
        results: ScanResultStore,
        ttl: float = POLICY_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._policies = policies
        self._results = results
        self._ttl = ttl
        self._clock = clock
        self._now = now
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self.loads = 0  # database reads of policies, for tests and metrics

    def rules(self, namespace: str) -> NamespaceRules:
        """The namespace's policy and allow-list, from the cache while it is fresh."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(namespace)
        if cached is not None and now - cached.loaded < self._ttl:
            return cached.rules
        policy = self._policies.get(namespace)
        allowlist = tuple(self._policies.allowlist(namespace)) if policy is not None else ()
        rules = NamespaceRules(policy, allowlist)
        with self._lock:
            self.loads += 1
            if len(self._cache) >= _MAX_CACHED:
                self._cache = {k: v for k, v in self._cache.items() if now - v.loaded < self._ttl}
            self._cache[namespace] = _Cached(now, rules)
        return rules

    def invalidate(self, namespace: str | None = None) -> None:
        """Forget the cached rules (of one namespace), e.g. after a change in this process."""
        with self._lock:
            if namespace is None:
                self._cache.clear()
            else:
                self._cache.pop(namespace, None)

    def verdict(
        self,
        repository: str,
        digest: str,
        media_type: str,
        artifact_type: str | None,
        subject: str | None = None,
    ) -> PolicyVerdict:
        if not is_scannable(media_type, artifact_type, subject):
            return PolicyVerdict(allowed=True, reason="not-an-image")
        rules = self.rules(namespace_of(repository))
        if rules.policy is None:
            return PolicyVerdict(allowed=True, reason="no-policy")
        now = self._now()
        scan = self._results.latest(repository, digest)
        if scan is None:
            # A platform of an index: judged by the index's scan of it, if it has none.
            for parent in self._policies.index_scans(repository, digest):
                images = [i for i in parent.report.images if i.digest == digest]
                if images:
                    findings = [f for image in images for f in image.findings]
                    return evaluate_findings(
                        rules.policy, rules.allowlist, findings, now, parent.scanned_at
                    )
        return evaluate(rules.policy, rules.allowlist, scan, now)

    def check(
        self,
        repository: str,
        digest: str,
        media_type: str,
        artifact_type: str | None,
        subject: str | None = None,
    ) -> None:
        """Raise ScanPolicyViolation if the namespace's policy refuses this pull."""
        verdict = self.verdict(repository, digest, media_type, artifact_type, subject)
        if verdict.allowed:
            return
        namespace = namespace_of(repository)
        raise ScanPolicyViolation(
            violation_message(repository, digest, namespace, verdict),
            detail=violation_detail(namespace, verdict),
        )


def parse_expiry(text: str) -> datetime:
    """An expiry as typed: YYYY-MM-DD (midnight UTC, when that day begins) or an ISO 8601
    time (UTC unless it has an offset)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ScanPolicyInvalid(
            f"invalid expiry {text[:40]!r}: give a date YYYY-MM-DD (midnight UTC) or an ISO "
            "8601 time such as 2030-01-31T12:00:00Z"
        ) from None
    return _aware(moment) or moment

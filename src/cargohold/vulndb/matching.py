"""Whether an installed package version is affected, following the OSV evaluation rules.

A version is affected by an `affected` entry when it is listed in `versions` (exactly, or
equal in the ecosystem's order: PyPI `2.10` is `2.10.0`) or falls in one of its ranges.
Within a range the events are sorted by version and replayed: `introduced` opens (`0` is
below every version), `fixed` closes at that version, `last_affected` closes after it
(inclusive); with `limit` events the version must also be below one of them (`*` is
infinity). `ECOSYSTEM` ranges use the ecosystem's order, `SEMVER` ranges SemVer; `GIT` ranges
never reach here (see osv.py).

Ecosystems: an advisory for `Debian:11` applies to packages of `Debian:11`; one for bare
`Debian` to every Debian release. Linux distributions publish advisories by *source* package
(Debian source, Alpine origin), so a package is matched by its source name when the caller
gives one, and compared at its source version when given (Debian binNMUs differ).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from cargohold.vulndb.osv import Advisory, Affected, Range, sort_events
from cargohold.vulndb.versions import (
    Ordering,
    VersionError,
    base_ecosystem,
    canonical_ecosystem,
    ecosystem_ordering,
    normalize_package,
    ordering_for,
)

_SOURCE_PACKAGES = {"Debian", "Ubuntu", "Alpine", "Wolfi", "Chainguard"}


class InstalledPackage(Protocol):
    """What matching needs of an installed package (an inventory's package type fits)."""

    @property
    def ecosystem(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def source_name(self) -> str | None: ...
    @property
    def source_version(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class PackageRef:
    """An installed package, as an inventory reports it.

    `source_name`: the Debian source package or Alpine origin package, when it differs from
    `name` (advisories of those distributions name source packages). `source_version`: the
    source package's version, when it differs from the binary's (Debian binNMUs).
    """

    ecosystem: str
    name: str
    version: str
    source_name: str | None = None
    source_version: str | None = None

    @classmethod
    def of(cls, package: InstalledPackage) -> PackageRef:
        if isinstance(package, PackageRef):
            return package
        return cls(
            package.ecosystem,
            package.name,
            package.version,
            getattr(package, "source_name", None),
            getattr(package, "source_version", None),
        )

    @property
    def canonical_ecosystem(self) -> str:
        return canonical_ecosystem(self.ecosystem)

    @property
    def match_name(self) -> str:
        """The name advisories use for this package, normalized."""
        ecosystem = self.canonical_ecosystem
        name = self.name
        if base_ecosystem(ecosystem) in _SOURCE_PACKAGES and self.source_name:
            name = self.source_name
        return normalize_package(ecosystem, name)

    @property
    def match_version(self) -> str:
        ecosystem = self.canonical_ecosystem
        if base_ecosystem(ecosystem) in _SOURCE_PACKAGES and self.source_version:
            return self.source_version.strip()
        return self.version.strip()


@dataclass(frozen=True, slots=True)
class Finding:
    """One advisory affecting one installed package."""

    advisory_id: str
    aliases: tuple[str, ...]
    severity: str
    package: str  # the installed package's name, as given
    ecosystem: str  # the installed package's ecosystem, canonical
    installed_version: str
    fixed_versions: tuple[str, ...]  # per matching range, the lowest fix above the installed
    link: str | None
    matched_name: str = ""  # the (source) package name the advisory names
    summary: str | None = None
    cvss_score: float | None = None
    upstream: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "advisory": self.advisory_id,
            "aliases": list(self.aliases),
            "upstream": list(self.upstream),
            "severity": self.severity,
            "cvss_score": self.cvss_score,
            "package": self.package,
            "source_package": self.matched_name,
            "ecosystem": self.ecosystem,
            "installed_version": self.installed_version,
            "fixed_versions": list(self.fixed_versions),
            "link": self.link,
            "summary": self.summary,
        }


def ecosystems_covering(ecosystem: str) -> tuple[str, ...]:
    """The advisory ecosystems that apply to packages of `ecosystem`: itself and, for a
    release-scoped one like `Debian:12`, the unscoped `Debian`."""
    ecosystem = canonical_ecosystem(ecosystem)
    base = base_ecosystem(ecosystem)
    return (ecosystem,) if base == ecosystem else (ecosystem, base)


def _key(ordering: Ordering, version: str) -> Any | None:
    try:
        return ordering.key(version)
    except VersionError:
        return None


def _event_key(ordering: Ordering, version: str) -> Any | None:
    return None if version == "0" else _key(ordering, version)


def _before_limits(installed: Any, rng: Range, ordering: Ordering) -> bool:
    limits = [e.version for e in rng.events if e.kind == "limit"]
    if not limits:
        return True
    for limit in limits:
        if "*" in limit:
            return True
        key = _key(ordering, limit)
        if key is not None and installed < key:
            return True
    return False


def range_match(rng: Range, ecosystem: str, version: str) -> tuple[bool, str | None]:
    """(affected, lowest fixed version above `version` in this range or None).

    Events are sorted here again, so a Range built by hand need not be sorted. A version or
    event the ecosystem's order cannot read leaves the range out: (False, None).
    """
    ordering = ordering_for(ecosystem, rng.type)
    if ordering is None:
        return False, None
    installed = _key(ordering, version)
    if installed is None:
        return False, None
    try:
        events = sort_events(rng.events, ordering)
    except VersionError:
        return False, None
    if not _before_limits(installed, rng, ordering):
        return False, None
    vulnerable = False
    fixed: str | None = None
    closed = False  # has an event above the installed version closed its interval?
    for event in events:
        if event.kind == "limit":
            continue
        if event.kind == "introduced":
            key = _event_key(ordering, event.version)
            if key is None or installed >= key:
                vulnerable = True
            continue
        key = ordering.key(event.version)
        if event.kind == "fixed":
            if installed >= key:
                vulnerable = False
            elif not closed:
                closed, fixed = True, event.version
        elif event.kind == "last_affected":
            if installed > key:
                vulnerable = False
            elif not closed:
                closed = True  # affected up to and including it; no fix known
    return vulnerable, (fixed if vulnerable else None)


def _in_versions(entry: Affected, version: str) -> bool:
    if version in entry.versions:
        return True
    ordering = ecosystem_ordering(entry.ecosystem)
    if ordering is None:
        return False
    installed = _key(ordering, version)
    if installed is None:
        return False
    return any(_key(ordering, listed) == installed for listed in entry.versions)


def _lowest_fix_above(entry: Affected, version: str) -> str | None:
    """For a version matched only through `versions`: the lowest fixed event above it."""
    best: tuple[Any, str] | None = None
    for rng in entry.ranges:
        ordering = ordering_for(entry.ecosystem, rng.type)
        if ordering is None:
            continue
        installed = _key(ordering, version)
        if installed is None:
            continue
        for event in rng.events:
            if event.kind != "fixed":
                continue
            key = _key(ordering, event.version)
            if key is not None and key > installed and (best is None or key < best[0]):
                best = (key, event.version)
    return best[1] if best else None


def entry_match(entry: Affected, version: str) -> tuple[bool, tuple[str, ...]]:
    """(affected, fixed versions) for one affected entry: each matching range's lowest fix
    above `version`, sorted by the ecosystem's order."""
    fixes: list[str] = []
    affected = False
    for rng in entry.ranges:
        hit, fixed = range_match(rng, entry.ecosystem, version)
        if hit:
            affected = True
            if fixed is not None and fixed not in fixes:
                fixes.append(fixed)
    if not affected and entry.versions and _in_versions(entry, version):
        affected = True
        fixed = _lowest_fix_above(entry, version)
        if fixed is not None:
            fixes.append(fixed)
    return affected, _sorted_versions(entry.ecosystem, fixes)


def _sorted_versions(ecosystem: str, versions: Iterable[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(versions))
    ordering = ecosystem_ordering(ecosystem)
    if ordering is None or len(unique) < 2:
        return tuple(unique)
    try:
        return tuple(sorted(unique, key=ordering.key))
    except VersionError:
        return tuple(unique)


def is_affected(entry: Affected, version: str) -> bool:
    """The OSV `IsVulnerable` test for one affected entry."""
    return entry_match(entry, version)[0]


def applies_to(entry: Affected, package: PackageRef) -> bool:
    return (
        entry.ecosystem in ecosystems_covering(package.ecosystem)
        and entry.package == package.match_name
    )


def match_advisory(advisory: Advisory, package: PackageRef) -> Finding | None:
    """The finding of `advisory` for `package`, or None (not affected, or withdrawn)."""
    if advisory.is_withdrawn:
        return None
    version = package.match_version
    affected = False
    fixes: list[str] = []
    for entry in advisory.affected:
        if not applies_to(entry, package):
            continue
        hit, fixed = entry_match(entry, version)
        if hit:
            affected = True
            fixes.extend(fixed)
    if not affected:
        return None
    ecosystem = package.canonical_ecosystem
    return Finding(
        advisory_id=advisory.id,
        aliases=advisory.aliases,
        severity=advisory.severity,
        package=package.name,
        ecosystem=ecosystem,
        installed_version=package.version,
        fixed_versions=_sorted_versions(ecosystem, fixes),
        link=advisory.link,
        matched_name=package.match_name,
        summary=advisory.summary,
        cvss_score=advisory.cvss_score,
        upstream=advisory.upstream,
    )


def finding_key(finding: Finding) -> tuple[str, str, str, str]:
    return (finding.ecosystem, finding.package, finding.installed_version, finding.advisory_id)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(
        findings, key=lambda f: (f.ecosystem, f.package, f.installed_version, f.advisory_id)
    )


class AdvisoryIndex:
    """Advisories held in memory, looked up by (ecosystem, package): the store's matching
    without a database, for tests and small tools."""

    def __init__(self, advisories: Iterable[Advisory]) -> None:
        self._by_package: dict[tuple[str, str], dict[str, Advisory]] = {}
        for advisory in advisories:
            for entry in advisory.affected:
                slot = self._by_package.setdefault((entry.ecosystem, entry.package), {})
                slot[advisory.id] = advisory

    def candidates(self, package: PackageRef) -> list[Advisory]:
        found: dict[str, Advisory] = {}
        for ecosystem in ecosystems_covering(package.ecosystem):
            found.update(self._by_package.get((ecosystem, package.match_name), {}))
        return [found[key] for key in sorted(found)]

    def is_affected(self, ecosystem: str, package: str, version: str) -> list[str]:
        """The ids of the advisories affecting `package` at `version`."""
        ref = PackageRef(ecosystem, package, version)
        return [f.advisory_id for f in self.findings([ref])]

    def findings(self, packages: Iterable[InstalledPackage]) -> list[Finding]:
        """One finding per (package, version, advisory), however often a package is given."""
        results: dict[tuple[str, str, str, str], Finding] = {}
        for package in map(PackageRef.of, packages):
            for advisory in self.candidates(package):
                finding = match_advisory(advisory, package)
                if finding is not None:
                    key = finding_key(finding)
                    results.setdefault(key, finding)
        return sort_findings(results.values())

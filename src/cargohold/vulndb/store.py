"""Advisories in the metadata database: saved in batches, looked up by (ecosystem, package).

`save` replaces records by id: a record whose stored copy has a newer `modified` is kept as
stored; otherwise the stored advisory and its affected rows are deleted and written anew.
Withdrawn advisories are kept (for `status`) without affected rows, so they never match.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select

from cargohold.storage.meta.models import advisories, advisory_affected, vulndb_imports
from cargohold.storage.meta.sqlbase import SqlBase, now
from cargohold.vulndb.matching import (
    Finding,
    InstalledPackage,
    PackageRef,
    ecosystems_covering,
    finding_key,
    match_advisory,
    sort_findings,
)
from cargohold.vulndb.osv import Advisory, Affected, Event, Range, Reference

_CHUNK = 500  # bound parameters per IN (...)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class SaveResult:
    added: int = 0
    updated: int = 0
    kept_newer: int = 0  # the stored copy had a newer `modified`
    saved_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class VulnDbStatus:
    records: int  # advisories stored, withdrawn ones included
    withdrawn: int
    by_ecosystem: dict[str, int]  # advisories not withdrawn naming each ecosystem
    imports: int
    last_import_at: datetime | None
    last_import_source: str | None
    last_import_counts: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "withdrawn": self.withdrawn,
            "by_ecosystem": self.by_ecosystem,
            "imports": self.imports,
            "last_import": None
            if self.last_import_at is None
            else {
                "imported_at": self.last_import_at.isoformat(),
                "source": self.last_import_source,
                "counts": self.last_import_counts,
            },
        }


def _affected_from_row(row: Any) -> Affected:
    ranges = tuple(
        Range(item["type"], tuple(Event(*next(iter(e.items()))) for e in item["events"]))
        for item in json.loads(row.ranges)
    )
    return Affected(row.ecosystem, row.package, ranges, tuple(json.loads(row.versions)))


class AdvisoryStore(SqlBase):
    """Advisories in SQL (SQLite or PostgreSQL), on the metadata store's engine."""

    # -- writing

    def save(
        self, batch: Sequence[tuple[Advisory, str]], imported_at: datetime | None = None
    ) -> SaveResult:
        """Save (advisory, raw JSON) pairs in one transaction; the newer `modified` wins.

        Within the batch, a later pair with the same id and a `modified` as new or newer
        replaces an earlier one.
        """
        imported_at = imported_at or now()
        unique: dict[str, tuple[Advisory, str]] = {}
        for advisory, raw in batch:
            previous = unique.get(advisory.id)
            if previous is None or advisory.modified >= previous[0].modified:
                unique[advisory.id] = (advisory, raw)
        result = SaveResult()
        if not unique:
            return result
        ids = list(unique)
        with self._write() as conn:
            stored: dict[str, datetime | None] = {}
            for chunk in _chunks(ids):
                rows = conn.execute(
                    select(advisories.c.id, advisories.c.modified).where(advisories.c.id.in_(chunk))
                )
                stored.update((row.id, _aware(row.modified)) for row in rows)
            writes: list[tuple[Advisory, str]] = []
            for advisory_id, (advisory, raw) in unique.items():
                if advisory_id in stored:
                    old = stored[advisory_id]
                    if old is not None and old > advisory.modified:
                        result.kept_newer += 1
                        continue
                    result.updated += 1
                else:
                    result.added += 1
                writes.append((advisory, raw))
            replaced = [a.id for a, _ in writes if a.id in stored]
            for chunk in _chunks(replaced):
                conn.execute(
                    delete(advisory_affected).where(advisory_affected.c.advisory_id.in_(chunk))
                )
                conn.execute(delete(advisories).where(advisories.c.id.in_(chunk)))
            if writes:
                conn.execute(
                    insert(advisories),
                    [self._advisory_row(a, raw, imported_at) for a, raw in writes],
                )
                affected_rows = [
                    row
                    for advisory, _ in writes
                    if not advisory.is_withdrawn
                    for row in self._affected_rows(advisory)
                ]
                if affected_rows:
                    conn.execute(insert(advisory_affected), affected_rows)
            result.saved_ids = [a.id for a, _ in writes]
        return result

    @staticmethod
    def _advisory_row(advisory: Advisory, raw: str, imported_at: datetime) -> dict[str, Any]:
        vector = (
            advisory.cvss_vector
            if advisory.cvss_vector and len(advisory.cvss_vector) <= 255
            else None
        )
        score = None if advisory.cvss_score is None else round(advisory.cvss_score * 10)
        return {
            "id": advisory.id,
            "modified": advisory.modified,
            "published": advisory.published,
            "withdrawn": advisory.withdrawn,
            "summary": advisory.summary,
            "details": advisory.details,
            "aliases": _dump(list(advisory.aliases)),
            "upstream": _dump(list(advisory.upstream)),
            "severity": advisory.severity,
            "cvss_vector": vector,
            "cvss_score_x10": score,
            "link": advisory.link,
            "refs": _dump([{"type": r.type, "url": r.url} for r in advisory.references]),
            "raw": raw,
            "imported_at": imported_at,
        }

    @staticmethod
    def _affected_rows(advisory: Advisory) -> list[dict[str, Any]]:
        rows = []
        for entry in advisory.affected:
            if not entry.matchable:
                continue
            rows.append(
                {
                    "advisory_id": advisory.id,
                    "ecosystem": entry.ecosystem,
                    "package": entry.package,
                    "ranges": _dump([r.to_json() for r in entry.ranges]),
                    "versions": _dump(list(entry.versions)),
                }
            )
        return rows

    def record_import(self, source: str, counts: dict[str, Any], imported_at: datetime) -> int:
        with self._write() as conn:
            result = conn.execute(
                insert(vulndb_imports).values(
                    imported_at=imported_at, source=source[:255], counts=_dump(counts)
                )
            )
            return int(result.inserted_primary_key[0])

    # -- reading

    def _select_advisories(self, pairs: dict[str, list[str]]) -> list[Advisory]:
        """Advisories not withdrawn with an affected row in `pairs` (ecosystem -> package
        names); each carries only those rows."""
        a, af = advisories, advisory_affected
        columns = (
            a.c.id,
            a.c.modified,
            a.c.published,
            a.c.summary,
            a.c.aliases,
            a.c.upstream,
            a.c.severity,
            a.c.cvss_vector,
            a.c.cvss_score_x10,
            a.c.link,
            af.c.ecosystem,
            af.c.package,
            af.c.ranges,
            af.c.versions,
        )
        heads: dict[str, Any] = {}
        entries: dict[str, list[Affected]] = {}
        with self._read() as conn:
            for ecosystem, names in pairs.items():
                for chunk in _chunks(sorted(set(names))):
                    query = (
                        select(*columns)
                        .join(af, af.c.advisory_id == a.c.id)
                        .where(af.c.ecosystem == ecosystem, af.c.package.in_(chunk))
                        .where(a.c.withdrawn.is_(None))
                    )
                    for row in conn.execute(query):
                        heads.setdefault(row.id, row)
                        entries.setdefault(row.id, []).append(_affected_from_row(row))
        result = []
        for advisory_id in sorted(heads):
            row = heads[advisory_id]
            result.append(
                Advisory(
                    id=row.id,
                    modified=_aware(row.modified) or now(),
                    published=_aware(row.published),
                    summary=row.summary,
                    aliases=tuple(json.loads(row.aliases)),
                    upstream=tuple(json.loads(row.upstream)),
                    severity=row.severity,
                    cvss_vector=row.cvss_vector,
                    cvss_score=None if row.cvss_score_x10 is None else row.cvss_score_x10 / 10,
                    link=row.link,
                    affected=tuple(entries[advisory_id]),
                )
            )
        return result

    def get(self, advisory_id: str) -> Advisory | None:
        """One advisory with every stored field and affected entry (withdrawn ones too;
        they have no affected entries)."""
        a, af = advisories, advisory_affected
        with self._read() as conn:
            row = conn.execute(select(a).where(a.c.id == advisory_id)).first()
            if row is None:
                return None
            entries = conn.execute(
                select(af).where(af.c.advisory_id == advisory_id).order_by(af.c.id)
            ).all()
        return Advisory(
            id=row.id,
            modified=_aware(row.modified) or now(),
            published=_aware(row.published),
            withdrawn=_aware(row.withdrawn),
            summary=row.summary,
            details=row.details,
            aliases=tuple(json.loads(row.aliases)),
            upstream=tuple(json.loads(row.upstream)),
            severity=row.severity,
            cvss_vector=row.cvss_vector,
            cvss_score=None if row.cvss_score_x10 is None else row.cvss_score_x10 / 10,
            references=tuple(Reference(r["type"], r["url"]) for r in json.loads(row.refs)),
            link=row.link,
            affected=tuple(_affected_from_row(entry) for entry in entries),
        )

    def raw(self, advisory_id: str) -> dict[str, Any] | None:
        """The record as imported."""
        with self._read() as conn:
            text = conn.execute(
                select(advisories.c.raw).where(advisories.c.id == advisory_id)
            ).scalar_one_or_none()
        return None if text is None else json.loads(text)

    def query(self, ecosystem: str, package: str) -> list[Advisory]:
        """The advisories (not withdrawn) naming `package` in `ecosystem`, or in the
        unscoped ecosystem (`Debian` for `Debian:12`), by id. Each carries only its affected
        entries for this package. `package` is normalized as the ecosystem's advisories
        spell names (PEP 503 for PyPI). Uses the (ecosystem, package) index."""
        ref = PackageRef(ecosystem, package, "")
        name = ref.match_name
        return self._select_advisories({eco: [name] for eco in ecosystems_covering(ecosystem)})

    def findings(self, packages: Iterable[InstalledPackage]) -> list[Finding]:
        """Every advisory affecting each installed package, in a few indexed queries.

        Debian and Alpine packages are matched by `source_name` when given; an advisory that
        several affected entries tie to the same package gives one finding.
        """
        refs = [PackageRef.of(package) for package in packages]
        pairs: dict[str, list[str]] = {}
        for package in refs:
            for ecosystem in ecosystems_covering(package.ecosystem):
                pairs.setdefault(ecosystem, []).append(package.match_name)
        by_name: dict[tuple[str, str], list[Advisory]] = {}
        for advisory in self._select_advisories(pairs):
            for entry in advisory.affected:
                slot = by_name.setdefault((entry.ecosystem, entry.package), [])
                if not slot or slot[-1].id != advisory.id:
                    slot.append(advisory)
        results: dict[tuple[str, str, str, str], Finding] = {}
        for package in refs:
            seen: set[str] = set()
            for ecosystem in ecosystems_covering(package.ecosystem):
                for advisory in by_name.get((ecosystem, package.match_name), []):
                    if advisory.id in seen:
                        continue
                    seen.add(advisory.id)
                    finding = match_advisory(advisory, package)
                    if finding is not None:
                        results.setdefault(finding_key(finding), finding)
        return sort_findings(results.values())

    def status(self) -> VulnDbStatus:
        a, af = advisories, advisory_affected
        with self._read() as conn:
            total = conn.execute(select(func.count()).select_from(a)).scalar_one()
            withdrawn = conn.execute(
                select(func.count()).select_from(a).where(a.c.withdrawn.is_not(None))
            ).scalar_one()
            per = conn.execute(
                select(af.c.ecosystem, func.count(func.distinct(af.c.advisory_id)))
                .group_by(af.c.ecosystem)
                .order_by(af.c.ecosystem)
            ).all()
            imports = conn.execute(select(func.count()).select_from(vulndb_imports)).scalar_one()
            last = conn.execute(
                select(vulndb_imports)
                .order_by(vulndb_imports.c.imported_at.desc(), vulndb_imports.c.id.desc())
                .limit(1)
            ).first()
        return VulnDbStatus(
            records=int(total),
            withdrawn=int(withdrawn),
            by_ecosystem={str(eco): int(n) for eco, n in per},
            imports=int(imports),
            last_import_at=_aware(last.imported_at) if last else None,
            last_import_source=last.source if last else None,
            last_import_counts=json.loads(last.counts) if last else None,
        )

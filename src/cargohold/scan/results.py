"""Stored scan reports: one row per scan of a manifest, the newest one is "the" result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select

from cargohold.scan.service import ScanReport
from cargohold.storage.meta.models import manifests, repositories, scan_results, vulndb_imports
from cargohold.storage.meta.sqlbase import SqlBase


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class StoredScan:
    id: int
    repository: str
    manifest_digest: str
    scanned_at: datetime
    vulndb_import_id: int | None
    vulndb_imported_at: datetime | None
    report: ScanReport


class ScanResultStore(SqlBase):
    """Scan reports in SQL (SQLite or PostgreSQL), on the metadata store's engine."""

    def advisory_db_version(self) -> dict[str, Any] | None:
        """The newest advisory import: {"import_id", "imported_at"}, or None."""
        with self._read() as conn:
            row = conn.execute(
                select(vulndb_imports.c.id, vulndb_imports.c.imported_at)
                .order_by(vulndb_imports.c.imported_at.desc(), vulndb_imports.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        imported_at = _aware(row.imported_at)
        return {
            "import_id": int(row.id),
            "imported_at": imported_at.isoformat() if imported_at else None,
        }

    def save(self, report: ScanReport, keep: int | None = None) -> int:
        """Store ``report``; with ``keep``, only the newest ``keep`` results of this
        manifest stay."""
        db = report.advisory_db or {}
        imported_at = db.get("imported_at")
        with self._write() as conn:
            result = conn.execute(
                insert(scan_results).values(
                    repository=report.repository,
                    manifest_digest=report.digest,
                    scanned_at=report.scanned_at,
                    vulndb_import_id=db.get("import_id"),
                    vulndb_imported_at=datetime.fromisoformat(imported_at) if imported_at else None,
                    report=json.dumps(report.to_dict(), separators=(",", ":")),
                    status=report.status,
                    severity_counts=json.dumps(report.severity_counts),
                )
            )
            if keep is not None:
                s = scan_results
                older = (
                    select(s.c.id)
                    .where(
                        s.c.repository == report.repository,
                        s.c.manifest_digest == report.digest,
                    )
                    .order_by(s.c.scanned_at.desc(), s.c.id.desc())
                    .offset(keep)
                )
                ids = conn.execute(older).scalars().all()
                if ids:
                    conn.execute(delete(s).where(s.c.id.in_(ids)))
            return int(result.inserted_primary_key[0])

    def latest(self, repository: str, manifest_digest: str) -> StoredScan | None:
        """The newest stored scan of this manifest in this repository."""
        s = scan_results
        with self._read() as conn:
            row = conn.execute(
                select(s)
                .where(s.c.repository == repository, s.c.manifest_digest == manifest_digest)
                .order_by(s.c.scanned_at.desc(), s.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return StoredScan(
            id=int(row.id),
            repository=row.repository,
            manifest_digest=row.manifest_digest,
            scanned_at=_aware(row.scanned_at) or datetime.now(UTC),
            vulndb_import_id=row.vulndb_import_id,
            vulndb_imported_at=_aware(row.vulndb_imported_at),
            report=ScanReport.from_dict(json.loads(row.report)),
        )

    def summaries(self, repository: str, digests: list[str]) -> dict[str, dict[str, Any]]:
        """The newest scan of each of ``digests`` in ``repository``, in brief: status,
        scanned_at, severity_counts and the advisory import matched against."""
        if not digests:
            return {}
        s = scan_results
        out: dict[str, dict[str, Any]] = {}
        with self._read() as conn:
            rows = conn.execute(
                select(
                    s.c.manifest_digest,
                    s.c.scanned_at,
                    s.c.status,
                    s.c.severity_counts,
                    s.c.vulndb_import_id,
                    s.c.report,
                )
                .where(s.c.repository == repository, s.c.manifest_digest.in_(set(digests)))
                .order_by(s.c.scanned_at.desc(), s.c.id.desc())
            ).all()
        for row in rows:
            if row.manifest_digest in out:
                continue
            if row.status is None:  # stored before migration 0009: read the report
                report = ScanReport.from_dict(json.loads(row.report))
                status, counts = report.status, report.severity_counts
            else:
                status, counts = row.status, json.loads(row.severity_counts or "{}")
            scanned_at = _aware(row.scanned_at)
            out[row.manifest_digest] = {
                "status": status,
                "scanned_at": scanned_at.isoformat() if scanned_at else None,
                "severity_counts": counts,
                "vulndb_import_id": row.vulndb_import_id,
            }
        return out

    def purge(self, keep: int) -> int:
        """Delete all but the newest ``keep`` results of each manifest, and every result of
        a manifest no longer stored in its repository; returns how many went."""
        s = scan_results
        stored = (
            select(repositories.c.name, manifests.c.digest)
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(repositories.c.name == s.c.repository, manifests.c.digest == s.c.manifest_digest)
            .exists()
        )
        with self._read() as conn:
            rows = conn.execute(
                select(
                    s.c.id, s.c.repository, s.c.manifest_digest, stored.label("stored")
                ).order_by(
                    s.c.repository, s.c.manifest_digest, s.c.scanned_at.desc(), s.c.id.desc()
                )
            ).all()
        seen: dict[tuple[str, str], int] = {}
        doomed = []
        for row in rows:
            key = (row.repository, row.manifest_digest)
            seen[key] = seen.get(key, 0) + 1
            if not row.stored or seen[key] > keep:
                doomed.append(row.id)
        for start in range(0, len(doomed), 500):
            with self._write() as conn:
                conn.execute(delete(s).where(s.c.id.in_(doomed[start : start + 500])))
        return len(doomed)

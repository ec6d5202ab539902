"""Stored scan reports: one row per scan of a manifest, the newest one is "the" result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from cargohold.scan.service import ScanReport
from cargohold.storage.meta.models import scan_results, vulndb_imports
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

    def save(self, report: ScanReport) -> int:
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
                )
            )
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

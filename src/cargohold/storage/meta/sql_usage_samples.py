"""Storage usage over time: one sample per repository per day (table usage_samples).

The serving process samples every repository's usage once a day (gc_schedule.py); the
latest reading of a day wins, so replicas sampling at once keep the newest numbers
whichever of them writes last. Samples of deleted repositories stay: the chart shows
when their storage went away.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select

from cargohold.storage.meta import models as m
from cargohold.storage.meta.base import UsageRecord
from cargohold.storage.meta.sqlbase import SqlBase, now

t = m.usage_samples
KEPT_DAYS = 400  # a year and a bit: this month against the same month last year


@dataclass(frozen=True, slots=True)
class UsageSample:
    repository: str
    day: date
    stored_bytes: int
    logical_bytes: int
    blobs: int
    manifests: int


def today() -> date:
    return now().date()  # UTC


class UsageSampleStore(SqlBase):
    def record(
        self, records: Iterable[UsageRecord], day: date, read_at: datetime | None = None
    ) -> int:
        """Store the day's sample of each repository, read at `read_at` (now, if not
        given), replacing one read earlier that day; samples older than KEPT_DAYS go.
        How many were offered."""
        at = read_at or now()
        rows = [
            {
                "repository": record.name,
                "day": day,
                "stored_bytes": record.stored_bytes,
                "logical_bytes": record.logical_bytes,
                "blobs": record.blobs,
                "manifests": record.manifests,
                "sampled_at": at,
            }
            for record in records
        ]
        with self._write() as conn:
            conn.execute(delete(t).where(t.c.day < day - timedelta(days=KEPT_DAYS)))
            for row in rows:
                insert = self._insert(t).values(**row)
                changed = {k: v for k, v in row.items() if k not in ("repository", "day")}
                # A replica that read earlier but writes later must not put older
                # numbers over newer ones.
                newer = t.c.sampled_at <= insert.excluded.sampled_at
                conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["repository", "day"], set_=changed, where=newer
                    )
                )
        return len(rows)

    def sampled_on(self, day: date) -> bool:
        """Whether any repository has a sample of `day`."""
        with self._read() as conn:
            found = conn.execute(select(func.count()).select_from(t).where(t.c.day == day))
            return bool(found.scalar_one())

    def last_sampled_at(self) -> datetime | None:
        with self._read() as conn:
            return conn.execute(select(func.max(t.c.sampled_at))).scalar_one()  # type: ignore[no-any-return]

    def series(
        self, since: date, namespace: str | None = None, repository: str | None = None
    ) -> list[UsageSample]:
        """Samples from `since` on, by repository then day; only one namespace's (its
        repositories are NAMESPACE/...) or one repository's when given."""
        query = select(t).where(t.c.day >= since)
        if repository is not None:
            query = query.where(t.c.repository == repository)
        elif namespace is not None:
            query = query.where(t.c.repository.startswith(f"{namespace}/", autoescape=True))
        with self._read() as conn:
            rows = conn.execute(query.order_by(t.c.repository, t.c.day)).all()
        return [
            UsageSample(
                repository=row.repository,
                day=row.day,
                stored_bytes=int(row.stored_bytes),
                logical_bytes=int(row.logical_bytes),
                blobs=int(row.blobs),
                manifests=int(row.manifests),
            )
            for row in rows
        ]

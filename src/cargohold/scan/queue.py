"""The scan queue, persisted in the metadata store's database.

Jobs are rows of ``scan_jobs``. A pushed image is queued in the same transaction that
stores its manifest (see the metadata store's ``scan_on_push``), so an acknowledged push
always has its job. A worker claims a job with a lease; a worker that dies mid-scan (or
a server killed with SIGKILL) leaves a ``running`` row whose lease runs out, and the next
claim takes it again. Claiming is one conditional UPDATE, so any number of workers on any
number of replicas can share the queue without locks beyond the row's own.

    queue = ScanQueue(engine)
    queue.enqueue("team/app", "sha256:...", "manual")
    job = queue.claim("host:pid", lease_seconds=300)
    ...
    queue.finish(job)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update

from cargohold import mediatypes as mt
from cargohold.storage.meta import models as m
from cargohold.storage.meta.scan_jobs import (
    ADVISORIES,
    DONE,
    FAILED,
    MANUAL,
    PUSH,
    QUEUED,
    RESCAN_ALL,
    RUNNING,
    STATES,
    job_values,
)
from cargohold.storage.meta.sqlbase import SqlBase, now

__all__ = [
    "ADVISORIES",
    "MANUAL",
    "PUSH",
    "RESCAN_ALL",
    "STATES",
    "Job",
    "QueueStats",
    "ScanQueue",
]


def scannable_manifests() -> Any:
    """A condition on ``manifests``: container images and indexes of them, not referrers
    (the same test as ``mediatypes.is_scannable``, in SQL)."""
    c = m.manifests.c
    return and_(
        c.subject_digest.is_(None),
        or_(
            and_(c.media_type.in_(sorted(mt.INDEXES)), c.artifact_type.is_(None)),
            and_(
                c.media_type.in_(sorted(mt.IMAGE_MANIFESTS)),
                c.artifact_type.in_(sorted(mt.IMAGE_CONFIGS)),
            ),
        ),
    )


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    repository: str | None
    manifest_digest: str | None
    kind: str
    attempts: int  # including this one
    enqueued_at: datetime
    worker: str


@dataclass(frozen=True, slots=True)
class QueueStats:
    counts: dict[str, int]  # per state
    oldest_queued_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "oldest_queued_seconds": self.oldest_queued_seconds}


class ScanQueue(SqlBase):
    def enqueue(self, repository: str, digest: str, kind: str = MANUAL) -> int:
        """Queue a scan of one manifest; returns the job's id."""
        with self._write() as conn:
            result = conn.execute(
                insert(m.scan_jobs).values(**job_values(repository, digest, kind))
            )
            return int(result.inserted_primary_key[0])

    def enqueue_rescan_all(self) -> int:
        """Queue a rescan of every stored image (after the advisories changed)."""
        with self._write() as conn:
            result = conn.execute(insert(m.scan_jobs).values(**job_values(None, None, RESCAN_ALL)))
            return int(result.inserted_primary_key[0])

    def expand_rescan_all(self, job: Job) -> int:
        """Replace a rescan-all job by one job per stored image; returns how many."""
        j = m.scan_jobs
        with self._write() as conn:
            rows = conn.execute(
                select(m.repositories.c.name, m.manifests.c.digest)
                .join(m.repositories, m.repositories.c.id == m.manifests.c.repository_id)
                .where(scannable_manifests())
                .order_by(m.manifests.c.id)  # children before the indexes naming them
            ).all()
            if rows:
                conn.execute(
                    insert(m.scan_jobs),
                    [job_values(row.name, row.digest, ADVISORIES) for row in rows],
                )
            conn.execute(
                update(j)
                .where(j.c.id == job.id)
                .values(state=DONE, finished_at=now(), error=None, lease_until=None)
            )
        return len(rows)

    def pushes_settling(self, quiet_seconds: float, max_delay_seconds: float) -> bool:
        """Whether images are being pushed right now: a push queued a scan in the last
        `quiet_seconds`, and no queued push scan has waited `max_delay_seconds` yet."""
        j = m.scan_jobs
        with self._read() as conn:
            newest, oldest = conn.execute(
                select(func.max(j.c.enqueued_at), func.min(j.c.enqueued_at)).where(
                    j.c.state == QUEUED, j.c.kind == PUSH
                )
            ).one()
        if newest is None:
            return False
        at = now()
        return _aware(newest) > at - timedelta(seconds=quiet_seconds) and _aware(
            oldest
        ) > at - timedelta(seconds=max_delay_seconds)

    def claim(self, worker: str, lease_seconds: float) -> Job | None:
        """The oldest job that is due, now leased to ``worker``; None when there is none.

        A ``running`` job whose lease ran out counts as due: its worker is gone."""
        j = m.scan_jobs
        claimed = self._claim_due(
            j,
            lambda at: or_(
                and_(j.c.state == QUEUED, j.c.not_before <= at),
                and_(j.c.state == RUNNING, j.c.lease_until < at),
            ),
            [j.c.id],
            lambda at: {
                "state": RUNNING,
                "worker": worker[:100],
                "attempts": j.c.attempts + 1,
                "started_at": at,
                "lease_until": at + timedelta(seconds=lease_seconds),
            },
        )
        if claimed is None:
            return None
        with self._read() as conn:
            row = conn.execute(select(j).where(j.c.id == claimed)).one()
        return Job(
            id=int(row.id),
            repository=row.repository,
            manifest_digest=row.manifest_digest,
            kind=row.kind,
            attempts=int(row.attempts),
            enqueued_at=_aware(row.enqueued_at),
            worker=worker,
        )

    def finish(self, job: Job, error: str | None = None) -> bool:
        """Mark a claimed job done (or failed with ``error``); False when the lease was lost
        to another worker meanwhile (that worker's outcome stands)."""
        j = m.scan_jobs
        with self._write() as conn:
            return bool(
                conn.execute(
                    update(j)
                    .where(j.c.id == job.id, j.c.state == RUNNING, j.c.worker == job.worker[:100])
                    .values(
                        state=FAILED if error else DONE,
                        finished_at=now(),
                        lease_until=None,
                        error=error,
                    )
                ).rowcount
            )

    def retry_later(self, job: Job, error: str, delay_seconds: float) -> bool:
        """Give a claimed job back to the queue, due again after ``delay_seconds``."""
        j = m.scan_jobs
        with self._write() as conn:
            return bool(
                conn.execute(
                    update(j)
                    .where(j.c.id == job.id, j.c.state == RUNNING, j.c.worker == job.worker[:100])
                    .values(
                        state=QUEUED,
                        lease_until=None,
                        not_before=now() + timedelta(seconds=delay_seconds),
                        error=error,
                    )
                ).rowcount
            )

    def pending(self, repository: str, digest: str) -> bool:
        """Whether a scan of this manifest is queued or running."""
        j = m.scan_jobs
        with self._read() as conn:
            return (
                conn.execute(
                    select(j.c.id)
                    .where(
                        j.c.repository == repository,
                        j.c.manifest_digest == digest,
                        j.c.state.in_((QUEUED, RUNNING)),
                    )
                    .limit(1)
                ).first()
                is not None
            )

    def stats(self) -> QueueStats:
        j = m.scan_jobs
        with self._read() as conn:
            counts = dict(conn.execute(select(j.c.state, func.count()).group_by(j.c.state)).all())
            oldest = conn.execute(select(func.min(j.c.enqueued_at)).where(j.c.state == QUEUED))
            first = oldest.scalar()
        age = None if first is None else (now() - _aware(first)).total_seconds()
        return QueueStats({state: int(counts.get(state, 0)) for state in STATES}, age)

    def jobs(self, limit: int = 50, state: str | None = None) -> list[dict[str, Any]]:
        """The newest jobs, for the API and CLI."""
        j = m.scan_jobs
        query = select(j).order_by(j.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(j.c.state == state)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_job_dict(row) for row in rows]

    def purge_finished(self, older_than: timedelta) -> int:
        """Delete done and failed jobs finished before ``older_than`` ago."""
        j = m.scan_jobs
        with self._write() as conn:
            return int(
                conn.execute(
                    delete(j).where(
                        j.c.state.in_((DONE, FAILED)), j.c.finished_at < now() - older_than
                    )
                ).rowcount
            )


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _job_dict(row: Any) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return None if value is None else _aware(value).isoformat()

    return {
        "id": int(row.id),
        "repository": row.repository,
        "digest": row.manifest_digest,
        "kind": row.kind,
        "state": row.state,
        "attempts": int(row.attempts),
        "enqueued_at": iso(row.enqueued_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "worker": row.worker,
        "error": row.error,
    }

"""Replication endpoints, rules, executions and their per-image log, in the metadata
database. Endpoint secrets are sealed with cargohold.secretbox and never returned."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update

from cargohold.errors import NameInvalid
from cargohold.reference import validate_name
from cargohold.secretbox import SecretBox
from cargohold.storage.meta import models as m
from cargohold.storage.meta.sqlbase import SqlBase, now

DIRECTIONS = ("push", "pull")
TRIGGERS = ("event", "schedule", "manual")
QUEUED, RUNNING, RETRYING = "queued", "running", "retrying"
SUCCEEDED, PARTIAL, FAILED = "succeeded", "partial", "failed"
FINAL_STATES = (SUCCEEDED, PARTIAL, FAILED)
STATES = (QUEUED, RUNNING, RETRYING, *FINAL_STATES)
COUNTS = ("images", "manifests", "blobs_copied", "blobs_skipped", "blobs_mounted", "bytes")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ReplicationInvalid(ValueError):
    """A rule or endpoint that cannot be stored as given."""


class ReplicationConflict(ValueError):
    """The name is taken, or the endpoint is still used by rules."""


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    url: str
    username: str | None
    has_secret: bool
    insecure: bool
    created_at: datetime
    created_by: str | None
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    name: str
    direction: str
    endpoint: str
    source: str
    tags: str
    dest_prefix: str | None
    trigger: str
    interval_minutes: int | None
    replicate_deletes: bool
    enabled: bool
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def matches_repository(self, repository: str) -> bool:
        return fnmatch.fnmatchcase(repository, self.source)

    def matches_tag(self, tag: str) -> bool:
        return fnmatch.fnmatchcase(tag, self.tags)

    def destination(self, repository: str) -> str:
        """Where ``repository`` goes: under the rule's prefix, if it has one."""
        return f"{self.dest_prefix}/{repository}" if self.dest_prefix else repository

    @property
    def fixed_repository(self) -> str | None:
        """The one repository the source names, when it is no glob."""
        return None if any(c in self.source for c in "*?[") else self.source


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    attempt: int
    action: str
    source: str
    destination: str
    digest: str | None
    state: str
    manifests: int
    blobs_copied: int
    blobs_skipped: int
    bytes: int
    error: str | None
    finished_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Execution:
    id: int
    rule_id: int
    trigger: str
    scope: dict[str, Any] | None
    state: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    images: int
    manifests: int
    blobs_copied: int
    blobs_skipped: int
    blobs_mounted: int
    bytes: int
    deleted: int
    error: str | None
    worker: str | None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        name=row.name,
        url=row.url,
        username=row.username,
        has_secret=row.secret_encrypted is not None,
        insecure=bool(row.insecure),
        created_at=_aware(row.created_at),  # type: ignore[arg-type]
        created_by=row.created_by,
        updated_at=_aware(row.updated_at),  # type: ignore[arg-type]
    )


def _rule(row: Any) -> Rule:
    values = {name: getattr(row, name) for name in Rule.__dataclass_fields__}
    for name in ("created_at", "updated_at", "next_run_at", "last_run_at"):
        values[name] = _aware(values[name])
    values["replicate_deletes"] = bool(values["replicate_deletes"])
    values["enabled"] = bool(values["enabled"])
    return Rule(**values)


def _execution(row: Any) -> Execution:
    values = {name: getattr(row, name) for name in Execution.__dataclass_fields__}
    for name in ("next_attempt_at", "created_at", "started_at", "finished_at"):
        values[name] = _aware(values[name])
    values["scope"] = json.loads(row.scope) if row.scope else None
    return Execution(**values)


def _task(row: Any) -> Task:
    values = {name: getattr(row, name) for name in Task.__dataclass_fields__}
    values["finished_at"] = _aware(values["finished_at"])
    return Task(**values)


def check_endpoint_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ReplicationInvalid(f"endpoint url {url!r} must be an http:// or https:// URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ReplicationInvalid("endpoint url must carry no credentials, query or fragment")
    return url.rstrip("/")


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ReplicationInvalid(
            f"{what} name {name!r} must be 1-64 of a-z 0-9 . _ - starting with a letter or digit"
        )
    return name


def check_rule(
    direction: str,
    source: str,
    tags: str,
    dest_prefix: str | None,
    trigger: str,
    interval_minutes: int | None,
) -> None:
    if direction not in DIRECTIONS:
        raise ReplicationInvalid(f"direction must be one of {', '.join(DIRECTIONS)}")
    if trigger not in TRIGGERS:
        raise ReplicationInvalid(f"trigger must be one of {', '.join(TRIGGERS)}")
    if trigger == "event" and direction == "pull":
        raise ReplicationInvalid(
            "a pull rule cannot run on events (the remote's pushes are not seen here); "
            "use --trigger schedule"
        )
    if trigger == "schedule" and not interval_minutes:
        raise ReplicationInvalid("a scheduled rule needs an interval in minutes (--every)")
    if interval_minutes is not None and not 1 <= interval_minutes <= 525600:
        raise ReplicationInvalid("the interval must be 1 to 525600 minutes")
    if not source or not tags:
        raise ReplicationInvalid("source and tag patterns must not be empty")
    if not re.fullmatch(r"[a-z0-9._/*?\[\]-]+", source):
        raise ReplicationInvalid(
            f"source {source!r} must be a repository name or a glob like team/* or team/app*"
        )
    if dest_prefix:
        try:
            validate_name(f"{dest_prefix}/x")
        except NameInvalid:
            raise ReplicationInvalid(f"destination prefix {dest_prefix!r} is invalid") from None


class ReplicationStore(SqlBase):
    def __init__(self, engine: Engine, box: SecretBox | None = None) -> None:
        super().__init__(engine)
        self._box = box

    # -- endpoints
    def add_endpoint(
        self,
        name: str,
        url: str,
        *,
        username: str | None = None,
        secret: str | None = None,
        insecure: bool = False,
        created_by: str | None = None,
    ) -> Endpoint:
        check_name(name, "endpoint")
        values = {
            "name": name,
            "url": check_endpoint_url(url),
            "username": username or None,
            "secret_encrypted": self._seal(secret),
            "insecure": insecure,
            "created_at": now(),
            "created_by": created_by,
            "updated_at": now(),
        }
        with self._write() as conn:
            taken = conn.execute(
                select(m.replication_endpoints.c.name).where(m.replication_endpoints.c.name == name)
            ).first()
            if taken:
                raise ReplicationConflict(f"endpoint {name} exists")
            conn.execute(m.replication_endpoints.insert().values(**values))
        return self.endpoint(name)  # type: ignore[return-value]

    def _seal(self, secret: str | None) -> str | None:
        if not secret:
            return None
        if self._box is None:
            raise RuntimeError("storing a secret needs the secret box")
        return self._box.seal(secret)

    def update_endpoint(self, name: str, **changes: Any) -> Endpoint | None:
        """Change url, username, secret (None clears it) or insecure; absent keys stay."""
        values: dict[str, Any] = {"updated_at": now()}
        if "url" in changes and changes["url"] is not None:
            values["url"] = check_endpoint_url(changes["url"])
        if "username" in changes:
            values["username"] = changes["username"] or None
        if "secret" in changes:
            values["secret_encrypted"] = self._seal(changes["secret"])
        if changes.get("insecure") is not None:
            values["insecure"] = bool(changes["insecure"])
        e = m.replication_endpoints
        with self._write() as conn:
            if not conn.execute(update(e).where(e.c.name == name).values(**values)).rowcount:
                return None
        return self.endpoint(name)

    def endpoint(self, name: str) -> Endpoint | None:
        e = m.replication_endpoints
        with self._read() as conn:
            row = conn.execute(select(e).where(e.c.name == name)).first()
        return None if row is None else _endpoint(row)

    def endpoints(self) -> list[Endpoint]:
        e = m.replication_endpoints
        with self._read() as conn:
            return [_endpoint(r) for r in conn.execute(select(e).order_by(e.c.name))]

    def credentials(self, name: str) -> tuple[str | None, str | None]:
        """The endpoint's username and decrypted secret."""
        e = m.replication_endpoints
        with self._read() as conn:
            row = conn.execute(select(e).where(e.c.name == name)).first()
        if row is None or row.secret_encrypted is None:
            return (None if row is None else row.username), None
        assert self._box is not None, "reading a secret needs the secret box"
        return row.username, self._box.open(row.secret_encrypted)

    def remove_endpoint(self, name: str) -> bool:
        e, r = m.replication_endpoints, m.replication_rules
        with self._write() as conn:
            users = conn.execute(select(r.c.name).where(r.c.endpoint == name)).scalars().all()
            if users:
                raise ReplicationConflict(
                    f"endpoint {name} is used by rule(s) {', '.join(users)}; remove them first"
                )
            return bool(conn.execute(delete(e).where(e.c.name == name)).rowcount)

    # -- rules
    def add_rule(
        self,
        name: str,
        *,
        endpoint: str,
        direction: str,
        source: str,
        tags: str = "*",
        dest_prefix: str | None = None,
        trigger: str = "manual",
        interval_minutes: int | None = None,
        replicate_deletes: bool = False,
        enabled: bool = True,
        created_by: str | None = None,
    ) -> Rule:
        check_name(name, "rule")
        dest_prefix = (dest_prefix or "").strip("/") or None
        check_rule(direction, source, tags, dest_prefix, trigger, interval_minutes)
        if self.endpoint(endpoint) is None:
            raise ReplicationInvalid(f"no endpoint {endpoint}: add it first")
        at = now()
        values = {
            "name": name,
            "direction": direction,
            "endpoint": endpoint,
            "source": source,
            "tags": tags,
            "dest_prefix": dest_prefix,
            "trigger": trigger,
            "interval_minutes": interval_minutes,
            "replicate_deletes": replicate_deletes,
            "enabled": enabled,
            "created_at": at,
            "created_by": created_by,
            "updated_at": at,
            "next_run_at": at if trigger == "schedule" else None,
        }
        r = m.replication_rules
        with self._write() as conn:
            if conn.execute(select(r.c.id).where(r.c.name == name)).first():
                raise ReplicationConflict(f"replication rule {name} exists")
            rule_id = conn.execute(r.insert().values(**values)).inserted_primary_key[0]
        return self.rule(int(rule_id))  # type: ignore[return-value]

    def update_rule(self, rule_id: int, **changes: Any) -> Rule | None:
        current = self.rule(rule_id)
        if current is None:
            return None
        fields = ("endpoint", "source", "tags", "dest_prefix", "trigger", "interval_minutes")
        merged = {k: changes[k] if k in changes else getattr(current, k) for k in fields}
        merged["dest_prefix"] = (merged["dest_prefix"] or "").strip("/") or None
        check_rule(
            current.direction,
            merged["source"],
            merged["tags"],
            merged["dest_prefix"],
            merged["trigger"],
            merged["interval_minutes"],
        )
        if self.endpoint(merged["endpoint"]) is None:
            raise ReplicationInvalid(f"no endpoint {merged['endpoint']}")
        values: dict[str, Any] = {**merged, "updated_at": now()}
        for flag in ("replicate_deletes", "enabled"):
            if changes.get(flag) is not None:
                values[flag] = bool(changes[flag])
        if merged["trigger"] == "schedule" and current.trigger != "schedule":
            values["next_run_at"] = now()
        r = m.replication_rules
        with self._write() as conn:
            conn.execute(update(r).where(r.c.id == rule_id).values(**values))
        return self.rule(rule_id)

    def rule(self, rule_id: int) -> Rule | None:
        r = m.replication_rules
        with self._read() as conn:
            row = conn.execute(select(r).where(r.c.id == rule_id)).first()
        return None if row is None else _rule(row)

    def rule_named(self, name: str) -> Rule | None:
        r = m.replication_rules
        with self._read() as conn:
            row = conn.execute(select(r).where(r.c.name == name)).first()
        return None if row is None else _rule(row)

    def rules(self) -> list[Rule]:
        r = m.replication_rules
        with self._read() as conn:
            return [_rule(row) for row in conn.execute(select(r).order_by(r.c.name))]

    def remove_rule(self, rule_id: int) -> bool:
        r = m.replication_rules
        with self._write() as conn:
            return bool(conn.execute(delete(r).where(r.c.id == rule_id)).rowcount)

    # -- executions
    def enqueue(self, rule_id: int, trigger: str, scope: dict[str, Any] | None = None) -> Execution:
        with self._write() as conn:
            execution_id = self.enqueue_in(conn, rule_id, trigger, scope)
        return self.execution(execution_id)  # type: ignore[return-value]

    def enqueue_in(
        self, conn: Any, rule_id: int, trigger: str, scope: dict[str, Any] | None = None
    ) -> int:
        at = now()
        values: dict[str, Any] = {
            "rule_id": rule_id,
            "trigger": trigger,
            "scope": json.dumps(scope, sort_keys=True) if scope else None,
            "state": QUEUED,
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            "deleted": 0,
            **{name: 0 for name in COUNTS},
        }
        result = conn.execute(m.replication_executions.insert().values(**values))
        return int(result.inserted_primary_key[0])

    def execution(self, execution_id: int) -> Execution | None:
        x = m.replication_executions
        with self._read() as conn:
            row = conn.execute(select(x).where(x.c.id == execution_id)).first()
        return None if row is None else _execution(row)

    def executions(self, rule_id: int, limit: int = 50) -> list[Execution]:
        x = m.replication_executions
        query = select(x).where(x.c.rule_id == rule_id).order_by(x.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [_execution(row) for row in conn.execute(query)]

    def tasks(self, execution_id: int, limit: int = 1000) -> list[Task]:
        t = m.replication_tasks
        query = select(t).where(t.c.execution_id == execution_id).order_by(t.c.id).limit(limit)
        with self._read() as conn:
            return [_task(row) for row in conn.execute(query)]

    def claim(
        self, worker: str, lease_seconds: float, execution_id: int | None = None
    ) -> Execution | None:
        """The oldest due execution (queued, retrying, or running with a lapsed lease),
        or the one named if it is due, now leased to ``worker`` with its attempt counted."""
        x = m.replication_executions

        def due(at: datetime) -> Any:
            condition = or_(
                and_(x.c.state.in_((QUEUED, RETRYING)), x.c.next_attempt_at <= at),
                and_(x.c.state == RUNNING, x.c.lease_until < at),
            )
            return condition if execution_id is None else and_(x.c.id == execution_id, condition)

        claimed = self._claim_due(
            x,
            due,
            [x.c.next_attempt_at, x.c.id],
            lambda at: {
                "state": RUNNING,
                "worker": worker[:100],
                "attempts": x.c.attempts + 1,
                "lease_until": at + timedelta(seconds=lease_seconds),
                "started_at": func.coalesce(x.c.started_at, at),
            },
        )
        return None if claimed is None else self.execution(claimed)

    def extend_lease(self, execution_id: int, worker: str, lease_seconds: float) -> bool:
        x = m.replication_executions
        with self._write() as conn:
            return bool(
                conn.execute(
                    update(x)
                    .where(x.c.id == execution_id, x.c.state == RUNNING, x.c.worker == worker[:100])
                    .values(lease_until=now() + timedelta(seconds=lease_seconds))
                ).rowcount
            )

    def record_task(self, execution_id: int, attempt: int, **values: Any) -> None:
        """One line of the execution log; its counts are added to the execution's."""
        row = {
            "execution_id": execution_id,
            "attempt": attempt,
            "manifests": 0,
            "blobs_copied": 0,
            "blobs_skipped": 0,
            "bytes": 0,
            "digest": None,
            "error": None,
            "finished_at": now(),
            **values,
        }
        x = m.replication_executions
        added = {
            "images": x.c.images
            + (1 if row["state"] == SUCCEEDED and row["action"] == "copy" else 0),
            "deleted": x.c.deleted
            + (1 if row["state"] == SUCCEEDED and row["action"] == "delete" else 0),
            "manifests": x.c.manifests + row["manifests"],
            "blobs_copied": x.c.blobs_copied + row["blobs_copied"],
            "blobs_skipped": x.c.blobs_skipped + row["blobs_skipped"],
            "blobs_mounted": x.c.blobs_mounted + row.pop("blobs_mounted", 0),
            "bytes": x.c.bytes + row["bytes"],
        }
        with self._write() as conn:
            conn.execute(m.replication_tasks.insert().values(**row))
            conn.execute(update(x).where(x.c.id == execution_id).values(**added))

    def finish(
        self,
        execution: Execution,
        state: str,
        error: str | None,
        retry_in: float | None,
        on_final: Callable[[Connection, Execution], None] | None = None,
    ) -> Execution | None:
        """End an attempt: ``state`` (final), or retrying after ``retry_in`` seconds.

        ``on_final`` runs inside the same transaction when the execution ends for good,
        so what it writes (the finished event) commits with the final state or not at all.
        """
        x, r = m.replication_executions, m.replication_rules
        at = now()
        values: dict[str, Any] = {"error": error, "lease_until": None}
        if retry_in is not None:
            values.update(state=RETRYING, next_attempt_at=at + timedelta(seconds=retry_in))
        else:
            values.update(state=state, finished_at=at)
        with self._write() as conn:
            changed = conn.execute(
                update(x)
                .where(x.c.id == execution.id, x.c.state == RUNNING, x.c.worker == execution.worker)
                .values(**values)
            ).rowcount
            if changed:
                conn.execute(
                    update(r)
                    .where(r.c.id == execution.rule_id)
                    .values(last_run_at=at, last_status=values["state"])
                )
                if on_final is not None and retry_in is None:
                    row = conn.execute(select(x).where(x.c.id == execution.id)).one()
                    on_final(conn, _execution(row))
        return self.execution(execution.id) if changed else None

    def due_schedules(self) -> list[Rule]:
        r = m.replication_rules
        query = select(r).where(
            r.c.enabled.is_(True), r.c.trigger == "schedule", r.c.next_run_at <= now()
        )
        with self._read() as conn:
            return [_rule(row) for row in conn.execute(query)]

    def start_scheduled(self, rule: Rule) -> int | None:
        """Queue a scheduled run and move the rule's next run on, unless another replica
        did first; the execution id."""
        r = m.replication_rules
        assert rule.interval_minutes and rule.next_run_at
        following = max(rule.next_run_at, now() - timedelta(minutes=rule.interval_minutes))
        following += timedelta(minutes=rule.interval_minutes)
        with self._write() as conn:
            moved = conn.execute(
                update(r)
                .where(r.c.id == rule.id, r.c.next_run_at == rule.next_run_at)
                .values(next_run_at=following)
            ).rowcount
            if not moved:
                return None
            return self.enqueue_in(conn, rule.id, "schedule")

    def repositories_with_blob(self, digest: str, limit: int = 20) -> list[str]:
        """Local repositories that link ``digest`` (mount candidates)."""
        query = (
            select(m.repositories.c.name)
            .join(m.repository_blobs, m.repository_blobs.c.repository_id == m.repositories.c.id)
            .where(m.repository_blobs.c.digest == digest)
            .order_by(m.repositories.c.name)
            .limit(limit)
        )
        with self._read() as conn:
            return list(conn.execute(query).scalars())

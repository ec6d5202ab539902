"""OSV records (https://ossf.github.io/osv-schema/) read leniently into dataclasses.

`parse_record` raises `RecordError` (with a short, countable reason) only when a record
cannot be used at all: not JSON, not an object, no usable `id` or `modified`. Smaller faults
drop only the part they are in and are tallied in `Notes.ignored`: an affected entry without
a package, a `GIT` range (commit ranges say nothing about package versions), a range whose
events are malformed or whose versions the ecosystem's order rejects, a range of an ecosystem
whose order this package does not know.

The ranges kept have their events checked against the ecosystem's order and sorted by it
(records in the wild list them out of order, e.g. PYSEC-2023-100).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cargohold.vulndb import severity as severity_mod
from cargohold.vulndb.versions import (
    Ordering,
    VersionError,
    normalize_package,
    ordering_for,
    supported,
)

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
DETAILS_MAX = 4000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,254}$")


class RecordError(ValueError):
    """The record cannot be imported; `reason` is short and the same for the same fault."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # introduced | fixed | last_affected | limit
    version: str


@dataclass(frozen=True, slots=True)
class Range:
    type: str  # ECOSYSTEM | SEMVER
    events: tuple[Event, ...]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "events": [{e.kind: e.version} for e in self.events]}


@dataclass(frozen=True, slots=True)
class Affected:
    ecosystem: str  # as in the record, e.g. "Debian:11", "PyPI", "Alpine:v3.11"
    package: str  # normalized, see versions.normalize_package
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()

    @property
    def matchable(self) -> bool:
        """Has a range or a version list to match against (else it is not stored)."""
        return bool(self.ranges or self.versions)


@dataclass(frozen=True, slots=True)
class Reference:
    type: str
    url: str


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    modified: datetime
    published: datetime | None = None
    withdrawn: datetime | None = None
    summary: str | None = None
    details: str | None = None  # trimmed to DETAILS_MAX characters
    aliases: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    severity: str = "unknown"  # critical | high | medium | low | unknown
    cvss_vector: str | None = None
    cvss_score: float | None = None
    references: tuple[Reference, ...] = ()
    link: str | None = None  # the advisory's own page
    affected: tuple[Affected, ...] = ()

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn is not None


@dataclass(slots=True)
class Notes:
    """What parsing left out of records it kept, by reason."""

    ignored: Counter[str] = field(default_factory=Counter)


def parse_json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError("invalid JSON") from exc


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp; None when absent or unreadable. Naive times are taken as UTC;
    fractions beyond microseconds are cut."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. year 1 with a positive offset
        return parsed.replace(tzinfo=UTC)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    seen: dict[str, None] = {}
    for item in value:
        if isinstance(item, str) and item.strip():
            seen.setdefault(item.strip(), None)
    return tuple(seen)


def _text(value: Any, limit: int | None = None) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def sort_events(events: list[Event] | tuple[Event, ...], ordering: Ordering) -> tuple[Event, ...]:
    """Events by version (`introduced: 0` first); at one version, introduced before fixed and
    last_affected, so `introduced X, fixed X` affects nothing. Limits go last, in order.
    Raises VersionError when a version is not one of the ordering's."""
    kind_rank = {"introduced": 0, "last_affected": 1, "fixed": 2}
    zeros: list[Event] = []
    keyed: list[tuple[Any, int, Event]] = []
    limits: list[Event] = []
    for event in events:
        if event.kind == "limit":
            if "*" not in event.version:
                ordering.key(event.version)
            limits.append(event)
        elif event.kind == "introduced" and event.version == "0":
            zeros.append(event)
        else:
            keyed.append((ordering.key(event.version), kind_rank[event.kind], event))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return (*zeros[:1], *(item[2] for item in keyed), *limits)


def _parse_range(raw: Any, ecosystem: str, ordering_known: bool, notes: Notes) -> Range | None:
    if not isinstance(raw, dict):
        notes.ignored["malformed range"] += 1
        return None
    kind = raw.get("type")
    if kind == "GIT":
        notes.ignored["GIT range"] += 1
        return None
    if kind not in ("ECOSYSTEM", "SEMVER"):
        notes.ignored["unknown range type"] += 1
        return None
    raw_events = raw.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        notes.ignored["malformed range"] += 1
        return None
    events: list[Event] = []
    for raw_event in raw_events:
        if not isinstance(raw_event, dict) or len(raw_event) != 1:
            notes.ignored["malformed range"] += 1
            return None
        ((event_kind, version),) = raw_event.items()
        if event_kind not in EVENT_KINDS or not isinstance(version, str) or not version.strip():
            notes.ignored["malformed range"] += 1
            return None
        events.append(Event(event_kind, version.strip()))
    if not any(e.kind == "introduced" for e in events):
        notes.ignored["range without introduced"] += 1
        return None
    ordering = ordering_for(ecosystem, kind)
    if ordering is None:
        if not ordering_known:
            notes.ignored["range of an unsupported ecosystem"] += 1
        return None
    try:
        return Range(kind, sort_events(events, ordering))
    except VersionError:
        notes.ignored["range with a malformed version"] += 1
        return None


def _parse_affected(raw: Any, notes: Notes) -> Affected | None:
    if not isinstance(raw, dict):
        notes.ignored["malformed affected entry"] += 1
        return None
    package = raw.get("package")
    if not isinstance(package, dict):
        # Allowed by the schema for GIT-only entries; nothing to match a package against.
        for item in raw.get("ranges") or []:
            if isinstance(item, dict) and item.get("type") == "GIT":
                notes.ignored["GIT range"] += 1
        notes.ignored["affected entry without a package"] += 1
        return None
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem, str) or not ecosystem.strip():
        notes.ignored["affected entry without an ecosystem"] += 1
        return None
    if not isinstance(name, str) or not name.strip():
        notes.ignored["affected entry without a package name"] += 1
        return None
    ecosystem, name = ecosystem.strip(), name.strip()
    if len(ecosystem) > 100 or len(name) > 512:
        notes.ignored["affected entry with an overlong name"] += 1
        return None
    known = supported(ecosystem)
    if not known:
        notes.ignored["affected entry of an unsupported ecosystem"] += 1
    ranges_raw = raw.get("ranges")
    ranges = []
    if isinstance(ranges_raw, list):
        for item in ranges_raw:
            parsed = _parse_range(item, ecosystem, known, notes)
            if parsed is not None:
                ranges.append(parsed)
    elif ranges_raw is not None:
        notes.ignored["malformed range"] += 1
    return Affected(
        ecosystem=ecosystem,
        package=normalize_package(ecosystem, name),
        ranges=tuple(ranges),
        versions=_strings(raw.get("versions")),
    )


def _link(record: dict[str, Any], references: tuple[Reference, ...]) -> str | None:
    by_type: dict[str, str] = {}
    for ref in references:
        by_type.setdefault(ref.type, ref.url)
    database = record.get("database_specific")
    own = database.get("url") if isinstance(database, dict) else None
    if isinstance(own, str) and own.startswith(("https://", "http://")):
        return own  # e.g. Go's pkg.go.dev/vuln/GO-...
    return by_type.get("ADVISORY") or by_type.get("WEB") or next(iter(by_type.values()), None)


def _severity_labels(record: dict[str, Any]) -> list[Any]:
    labels: list[Any] = []
    database = record.get("database_specific")
    if isinstance(database, dict):
        labels.append(database.get("severity"))
    for item in record.get("affected") or []:
        if not isinstance(item, dict):
            continue
        for key in ("database_specific", "ecosystem_specific"):
            specific = item.get(key)
            if isinstance(specific, dict):
                labels.append(specific.get("severity"))
                labels.append(specific.get("urgency"))  # Debian
    return labels


def _severity_entries(record: dict[str, Any]) -> list[Any]:
    entries = list(record.get("severity") or []) if isinstance(record.get("severity"), list) else []
    for item in record.get("affected") or []:
        if isinstance(item, dict) and isinstance(item.get("severity"), list):
            entries.extend(item["severity"])
    return entries


def parse_record(data: Any, notes: Notes | None = None) -> Advisory:
    """One OSV record (parsed JSON, or the bytes of a file) as an Advisory.

    Raises RecordError when it cannot be used at all; `notes` collects what was left out.
    """
    notes = notes if notes is not None else Notes()
    record = parse_json(data) if isinstance(data, (bytes, bytearray)) else data
    if not isinstance(record, dict):
        raise RecordError("not a JSON object")
    advisory_id = record.get("id")
    if not isinstance(advisory_id, str) or not _ID.match(advisory_id.strip()):
        raise RecordError("missing or invalid id")
    modified = parse_timestamp(record.get("modified"))
    if modified is None:
        raise RecordError("missing or invalid modified")
    affected_raw = record.get("affected", [])
    if not isinstance(affected_raw, list):
        raise RecordError("affected is not a list")
    affected = []
    for item in affected_raw:
        parsed = _parse_affected(item, notes)
        if parsed is not None:
            affected.append(parsed)
    references = []
    for ref in record.get("references") or [] if isinstance(record.get("references"), list) else []:
        if isinstance(ref, dict) and isinstance(ref.get("url"), str):
            references.append(Reference(str(ref.get("type") or "WEB"), ref["url"].strip()))
    refs = tuple(references)
    withdrawn_raw = record.get("withdrawn")
    withdrawn = parse_timestamp(withdrawn_raw)
    if withdrawn is None and withdrawn_raw not in (None, ""):
        withdrawn = modified  # present but unreadable: still withdrawn
    assessed = severity_mod.assess(_severity_entries(record), _severity_labels(record))
    return Advisory(
        id=advisory_id.strip(),
        modified=modified,
        published=parse_timestamp(record.get("published")),
        withdrawn=withdrawn,
        summary=_text(record.get("summary"), 1000),
        details=_text(record.get("details"), DETAILS_MAX),
        aliases=_strings(record.get("aliases")),
        upstream=_strings(record.get("upstream")),
        severity=assessed.level,
        cvss_vector=assessed.vector,
        cvss_score=assessed.score,
        references=refs,
        link=_link(record, refs),
        affected=tuple(affected),
    )

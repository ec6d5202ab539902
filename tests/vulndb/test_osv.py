"""Reading OSV records: what is kept, what is left out, and what makes a record unusable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.vulndb.conftest import MALFORMED, OSV

from cargohold.vulndb.osv import Event, Notes, RecordError, parse_record


def read(path: str, notes: Notes | None = None):  # type: ignore[no-untyped-def]
    return parse_record((OSV / path).read_bytes(), notes)


def test_unsorted_events_are_sorted_by_version() -> None:
    advisory = read("PyPI/PYSEC-2023-100.json")
    [entry] = advisory.affected
    [rng] = entry.ranges
    assert rng.type == "ECOSYSTEM"
    assert rng.events == (
        Event("introduced", "3.2"),
        Event("fixed", "3.2.20"),
        Event("introduced", "4.0"),
        Event("fixed", "4.1.10"),
        Event("introduced", "4.2"),
        Event("fixed", "4.2.3"),
    )
    assert entry.package == "django" and len(entry.versions) == 47
    assert advisory.aliases == ("CVE-2023-36053",)
    assert advisory.modified == datetime(2023, 7, 11, 16, 37, 11, 407533, tzinfo=UTC)
    assert advisory.link == "https://www.djangoproject.com/weblog/2023/jul/03/security-releases/"


def test_git_ranges_are_left_out_and_counted() -> None:
    notes = Notes()
    advisory = read("PyPI/PYSEC-2023-192.json", notes)
    [entry] = advisory.affected
    assert [r.type for r in entry.ranges] == ["ECOSYSTEM"]
    assert entry.ranges[0].events == (
        Event("introduced", "0"),
        Event("fixed", "1.26.17"),
        Event("introduced", "2.0.0"),
        Event("fixed", "2.0.6"),
    )
    assert notes.ignored == {"GIT range": 1}
    assert (advisory.severity, advisory.cvss_score) == ("high", 8.1)
    assert advisory.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N"


def test_go_record() -> None:
    advisory = read("Go/GO-2026-6218.json")
    assert advisory.modified == datetime(1, 1, 1, tzinfo=UTC)  # as golang/vulndb stores it
    assert advisory.link == "https://pkg.go.dev/vuln/GO-2026-6218"
    assert advisory.severity == "unknown" and advisory.cvss_vector is None
    [entry] = advisory.affected
    assert (entry.ecosystem, entry.package) == ("Go", "stdlib")
    assert [e.version for e in entry.ranges[0].events] == [
        "0",
        "1.25.13",
        "1.26.0-0",
        "1.26.6",
        "1.27.0-0",
        "1.27.0-rc.3",
    ]


def test_withdrawn() -> None:
    assert read("PyPI/PYSEC-2019-144.json").withdrawn == datetime(2022, 9, 9, 5, 28, tzinfo=UTC)
    assert read("Go/GO-2024-2730.json").is_withdrawn
    assert not read("Go/GO-2023-2402.json").is_withdrawn


def test_malformed_versions_drop_only_their_range() -> None:
    notes = Notes()
    advisory = read("Alpine/ALPINE-CVE-2018-10981.json", notes)
    v310, v311 = advisory.affected
    assert (v310.ecosystem, len(v310.ranges)) == ("Alpine:v3.10", 1)
    assert (v311.ecosystem, v311.ranges, v311.matchable) == ("Alpine:v3.11", (), False)
    assert notes.ignored == {"range with a malformed version": 1}
    assert advisory.upstream == ("CVE-2018-10981",) and advisory.aliases == ()


def test_partly_broken_record_keeps_what_it_can() -> None:
    notes = Notes()
    advisory = parse_record((MALFORMED / "TEST-PARTLY-BROKEN.json").read_bytes(), notes)
    assert advisory.modified == datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    [entry] = advisory.affected
    assert entry.package == "broken-events"
    assert [r.events for r in entry.ranges] == [(Event("introduced", "0"), Event("fixed", "2.0"))]
    assert notes.ignored == {
        "malformed affected entry": 1,
        "GIT range": 1,
        "affected entry without a package": 1,
        "affected entry without a package name": 1,
        "malformed range": 2,
        "range without introduced": 1,
        "unknown range type": 1,
    }
    assert advisory.references == () and advisory.link is None
    assert advisory.severity == "unknown"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("not-json.json", "invalid JSON"),
        ("empty.json", "invalid JSON"),
        ("not-utf8.json", "invalid JSON"),
        ("a-string.json", "not a JSON object"),
        ("no-id.json", "missing or invalid id"),
        ("bad-id.json", "missing or invalid id"),
        ("bad-modified.json", "missing or invalid modified"),
        ("affected-not-a-list.json", "affected is not a list"),
    ],
)
def test_unusable_records(name: str, reason: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse_record((MALFORMED / name).read_bytes())
    assert caught.value.reason == reason


def test_details_are_trimmed_and_labels_read() -> None:
    record = {
        "id": "TEST-LONG",
        "modified": "2025-01-01T00:00:00+02:00",
        "details": "  " + "x" * 5000 + "  ",
        "withdrawn": "not a date",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "OpenSSL"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                "ecosystem_specific": {"urgency": "medium"},
            },
            {
                "package": {"ecosystem": "Hackage", "name": "aeson"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                "versions": ["2.0.0.0"],
            },
        ],
    }
    notes = Notes()
    advisory = parse_record(record, notes)
    assert advisory.details is not None and len(advisory.details) == 4000
    assert advisory.details.endswith("…")
    assert advisory.modified == datetime(2024, 12, 31, 22, 0, tzinfo=UTC)
    assert advisory.withdrawn == advisory.modified  # present though unreadable: withdrawn
    assert advisory.severity == "medium"
    debian, hackage = advisory.affected
    assert debian.package == "openssl"
    assert (hackage.ranges, hackage.versions) == ((), ("2.0.0.0",))
    assert notes.ignored == {
        "affected entry of an unsupported ecosystem": 1,
        "range of an unsupported ecosystem": 1,
    }

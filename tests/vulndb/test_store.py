"""The SQL store on SQLite and PostgreSQL: imports, replacement by id, queries, findings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.conftest import scratch_postgres_database
from tests.vulndb.conftest import MALFORMED, OSV

from cargohold.storage.meta import schema
from cargohold.storage.meta.sqlbase import create_sql_engine
from cargohold.vulndb.importer import SourceError, import_path
from cargohold.vulndb.matching import AdvisoryIndex, PackageRef
from cargohold.vulndb.osv import Advisory, parse_record
from cargohold.vulndb.store import AdvisoryStore

FIXTURE_COUNTS = {
    "files": 144,
    "records": 145,  # bundle-of-two.json holds two
    "withdrawn": 3,  # PYSEC-2019-144, GO-2024-2730, TEST-DEB12-0005
    "by_ecosystem": {
        "Alpine:v3.10": 2,
        "Alpine:v3.11": 2,  # ALPINE-CVE-2020-7247 has only a malformed fix: nothing to match
        "Alpine:v3.19": 1,
        "Debian": 1,
        "Debian:10": 1,
        "Debian:11": 1,
        "Debian:12": 3,
        "Go": 2,
        "PyPI": 126,
        "crates.io": 1,
        "npm": 1,
    },
    "skipped": {},
    "ignored": {
        "GIT range": 14,
        "affected entry of an unsupported ecosystem": 1,
        "range of an unsupported ecosystem": 1,
        "range with a malformed version": 4,
    },
}

PACKAGES = [
    PackageRef("PyPI", "Django", "3.2.1"),
    PackageRef("PyPI", "jinja2", "2.10"),
    PackageRef("PyPI", "py", "1.11.0"),
    PackageRef("PyPI", "urllib3", "1.26.16"),
    PackageRef("PyPI", "arrayfire", "3.5.0"),
    PackageRef("Go", "stdlib", "go1.25.5"),
    PackageRef("Go", "golang.org/x/crypto", "v0.16.0"),
    PackageRef("Debian:11", "libssl1.1", "1.1.1n-0+deb11u3", source_name="openssl"),
    PackageRef("Debian:10", "libc6", "2.28-10+deb10u1", source_name="glibc"),
    PackageRef("Debian:12", "libssl3", "3.0.14-1~deb12u2", source_name="openssl"),
    PackageRef("Debian:12", "zlib1g", "1:1.2.13.dfsg-1", source_name="zlib"),
    PackageRef("Debian:12", "curl", "7.74.0-1.3+deb11u7"),
    PackageRef("Alpine:v3.11", "libcrypto1.1", "1.1.1d-r2", source_name="openssl"),
    PackageRef("Alpine:v3.11", "busybox", "1.29.3-r9"),
    PackageRef("Alpine:v3.10", "xen", "4.10.0-r0"),
    PackageRef("Alpine:v3.11", "xen", "4.10.0-r0"),
    PackageRef("npm", "left-pad", "1.2.0"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AdvisoryStore]:
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'meta.db'}"
            if request.param == "sqlite"
            else stack.enter_context(scratch_postgres_database())
        )
        engine = create_sql_engine(url)
        schema.upgrade(engine)
        store = AdvisoryStore(engine)
        try:
            yield store
        finally:
            engine.dispose()


def counts(report: dict[str, object]) -> dict[str, object]:
    return {key: report[key] for key in FIXTURE_COUNTS}


def test_import_status_and_findings(store: AdvisoryStore, advisories: list[Advisory]) -> None:
    report = import_path(store, OSV).to_dict()
    assert counts(report) == FIXTURE_COUNTS
    assert (report["added"], report["updated"], report["kept_newer"]) == (145, 0, 0)

    status = store.status()
    assert (status.records, status.withdrawn, status.imports) == (145, 3, 1)
    assert status.by_ecosystem == FIXTURE_COUNTS["by_ecosystem"]
    assert status.last_import_source == "osv"
    assert status.last_import_counts is not None
    assert status.last_import_counts["records"] == 145

    # The database gives exactly what matching the records in memory gives.
    found = store.findings(PACKAGES)
    assert found == AdvisoryIndex(advisories).findings(PACKAGES)
    by_package: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for finding in found:
        by_package.setdefault(finding.package, []).append(
            (finding.advisory_id, finding.fixed_versions)
        )
    assert len(by_package.pop("Django")) == 24
    assert by_package == {
        "jinja2": [("PYSEC-2019-217", ("2.10.1",)), ("PYSEC-2021-66", ("2.11.3",))],
        "py": [("PYSEC-2022-42969", ())],
        "urllib3": [("PYSEC-2023-192", ("1.26.17",))],
        "stdlib": [("GO-2026-6218", ("1.25.13",))],
        "golang.org/x/crypto": [("GO-2023-2402", ("0.17.0",))],
        "libssl1.1": [("DSA-5343-1", ("1.1.1n-0+deb11u4",))],
        "libc6": [("DLA-3152-1", ("2.28-10+deb10u2",))],
        "libssl3": [("TEST-DEB12-0001", ("3.0.15-1~deb12u1",))],
        "zlib1g": [("TEST-DEB-0002", ("1:1.2.13.dfsg-2",))],
        "curl": [("TEST-DEB12-0003", ())],
        "libcrypto1.1": [("ALPINE-CVE-2019-1551", ("1.1.1d-r3",))],
        "busybox": [("ALPINE-CVE-2018-20679", ("1.29.3-r10",))],
        "xen": [("ALPINE-CVE-2018-10981", ("4.10.1-r1",))],  # v3.10 only: v3.11's is malformed
        "left-pad": [("TEST-NPM-0001", ("1.3.0-rc.1",))],
    }
    urllib3 = next(f for f in found if f.package == "urllib3")
    assert (urllib3.severity, urllib3.cvss_score) == ("high", 8.1)
    assert urllib3.aliases == ("CVE-2023-43804", "GHSA-v845-jxx5-vc9f")
    xen = next(f for f in found if f.package == "xen")
    assert xen.ecosystem == "Alpine:v3.10" and xen.upstream == ("CVE-2018-10981",)


@dataclass(frozen=True)
class InventoryPackage:
    """The shape of an image inventory's package: more fields than matching needs."""

    name: str
    version: str
    ecosystem: str
    purl: str
    source_name: str | None = None
    source_version: str | None = None


def test_findings_take_inventory_packages(store: AdvisoryStore) -> None:
    import_path(store, OSV)
    packages = [
        InventoryPackage("stdlib", "1.26.1", "Go", "pkg:golang/stdlib@1.26.1"),
        InventoryPackage(
            "libssl1.1",
            "1.1.1n-0+deb11u3",
            "Debian:11",
            "pkg:deb/debian/libssl1.1@1.1.1n-0+deb11u3",
            source_name="openssl",
        ),
    ]
    found = {(f.package, f.advisory_id): f.fixed_versions for f in store.findings(packages)}
    assert found[("stdlib", "GO-2026-6218")] == ("1.26.6",)
    assert found[("libssl1.1", "DSA-5343-1")] == ("1.1.1n-0+deb11u4",)
    assert len(found) == 2


def test_query(store: AdvisoryStore) -> None:
    import_path(store, OSV)
    assert [a.id for a in store.query("pypi", "Jinja2")] == [
        "PYSEC-2014-8",
        "PYSEC-2014-82",
        "PYSEC-2019-217",
        "PYSEC-2019-220",
        "PYSEC-2021-66",
    ]
    # Release-scoped and unscoped Debian advisories; the withdrawn TEST-DEB12-0005 is left out.
    assert [a.id for a in store.query("Debian:12", "openssl")] == ["TEST-DEB12-0001"]
    assert [a.id for a in store.query("debian:11", "zlib")] == ["TEST-DEB-0002"]
    [go] = store.query("Go", "stdlib")
    [entry] = go.affected
    assert (entry.ecosystem, entry.package) == ("Go", "stdlib")
    assert [e.version for e in entry.ranges[0].events][:2] == ["0", "1.25.13"]
    assert go.link == "https://pkg.go.dev/vuln/GO-2026-6218"
    assert store.query("Go", "github.com/gorilla/sessions") == []  # withdrawn
    assert store.query("PyPI", "no-such-package") == []


def test_get_and_raw(store: AdvisoryStore) -> None:
    import_path(store, OSV)
    advisory = store.get("PYSEC-2023-100")
    assert advisory is not None
    assert advisory == parse_record((OSV / "PyPI/PYSEC-2023-100.json").read_bytes())
    assert store.raw("PYSEC-2023-100") == json.loads((OSV / "PyPI/PYSEC-2023-100.json").read_text())
    withdrawn = store.get("GO-2024-2730")
    assert withdrawn is not None and withdrawn.is_withdrawn and withdrawn.affected == ()
    assert store.get("NOPE-1") is None and store.raw("NOPE-1") is None


def _record(modified: str, fixed: str, **extra: object) -> dict[str, object]:
    return {
        "id": "TEST-REPLACE-1",
        "modified": modified,
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "thing"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
        **extra,
    }


def _save(store: AdvisoryStore, *records: dict[str, object]):  # type: ignore[no-untyped-def]
    return store.save([(parse_record(r), json.dumps(r)) for r in records])


def test_newer_modified_wins(store: AdvisoryStore) -> None:
    thing = PackageRef("PyPI", "thing", "1.5")

    def fixed() -> list[tuple[str, ...]]:
        return [f.fixed_versions for f in store.findings([thing])]

    assert _save(store, _record("2025-01-02T00:00:00Z", "2.0")).added == 1
    assert fixed() == [("2.0",)]
    older = _save(store, _record("2025-01-01T00:00:00Z", "3.0"))
    assert (older.added, older.updated, older.kept_newer) == (0, 0, 1)
    assert fixed() == [("2.0",)]
    newer = _save(store, _record("2025-01-03T00:00:00Z", "1.8"))
    assert (newer.added, newer.updated, newer.kept_newer) == (0, 1, 0)
    assert fixed() == [("1.8",)]
    # Within one batch the newest copy is saved, whatever the order.
    both = _save(
        store, _record("2025-01-05T00:00:00Z", "1.6"), _record("2025-01-04T00:00:00Z", "9.0")
    )
    assert (both.added, both.updated) == (0, 1)
    assert fixed() == [("1.6",)]
    # A newer copy that withdraws the advisory removes the finding.
    _save(store, _record("2025-01-06T00:00:00Z", "1.6", withdrawn="2025-01-06T00:00:00Z"))
    assert fixed() == []
    assert (store.status().records, store.status().withdrawn) == (1, 1)
    assert store.status().by_ecosystem == {}


def test_reimport_replaces_and_malformed_are_counted(store: AdvisoryStore) -> None:
    import_path(store, OSV, batch_size=7)
    again = import_path(store, OSV, batch_size=50).to_dict()
    assert (again["added"], again["updated"], again["kept_newer"]) == (0, 145, 0)
    assert store.status().records == 145

    report = import_path(store, MALFORMED).to_dict()
    assert report["files"] == 9 and report["records"] == 1
    assert report["skipped"] == {
        "affected is not a list": 1,
        "invalid JSON": 3,
        "missing or invalid id": 2,
        "missing or invalid modified": 1,
        "not a JSON object": 1,
    }
    assert report["skipped_examples"]["invalid JSON"] == [
        "empty.json",
        "not-json.json",
        "not-utf8.json",
    ]
    assert report["ignored"] == {
        "GIT range": 1,
        "affected entry without a package": 1,
        "affected entry without a package name": 1,
        "malformed affected entry": 1,
        "malformed range": 2,
        "range without introduced": 1,
        "unknown range type": 1,
    }
    assert [
        f.fixed_versions for f in store.findings([PackageRef("PyPI", "broken-events", "1")])
    ] == [("2.0",)]
    status = store.status()
    assert (status.records, status.imports, status.last_import_source) == (146, 3, "malformed")


def test_sources_that_cannot_be_read(store: AdvisoryStore, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        import_path(store, tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SourceError, match="neither a folder"):
        import_path(store, tmp_path / "notes.txt")
    assert store.status().imports == 0


def test_lookups_use_the_index(tmp_path: Path) -> None:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    schema.upgrade(engine)
    with engine.connect() as conn:
        plan = conn.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT advisory_id FROM advisory_affected "
                "WHERE ecosystem = 'PyPI' AND package IN ('django', 'jinja2')"
            )
        ).all()
    engine.dispose()
    assert "ix_advisory_affected_ecosystem_package" in " ".join(str(row) for row in plan)

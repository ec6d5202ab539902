"""Matching installed packages against the fixture advisories, with exact findings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cargohold.vulndb.matching import AdvisoryIndex, PackageRef, range_match
from cargohold.vulndb.osv import Advisory, Event, Range

# The 24 advisories pip-audit reported for django 3.2.1 against the PyPI folder (SOURCE.md);
# the same 24 whose `versions` lists name 3.2.1.
DJANGO_3_2_1 = [
    "PYSEC-2021-8",
    "PYSEC-2021-98",
    "PYSEC-2021-99",
    "PYSEC-2021-109",
    "PYSEC-2021-439",
    "PYSEC-2022-1",
    "PYSEC-2022-2",
    "PYSEC-2022-3",
    "PYSEC-2022-19",
    "PYSEC-2022-20",
    "PYSEC-2022-190",
    "PYSEC-2022-191",
    "PYSEC-2022-213",
    "PYSEC-2022-245",
    "PYSEC-2022-304",
    "PYSEC-2023-12",
    "PYSEC-2023-13",
    "PYSEC-2023-61",
    "PYSEC-2023-100",
    "PYSEC-2023-222",
    "PYSEC-2023-225",
    "PYSEC-2023-226",
    "PYSEC-2024-28",
    "PYSEC-2024-47",
]


def ids(index: AdvisoryIndex, *package: PackageRef) -> list[str]:
    return sorted(f.advisory_id for f in index.findings(list(package)))


def fixes(index: AdvisoryIndex, package: PackageRef) -> dict[str, tuple[str, ...]]:
    return {f.advisory_id: f.fixed_versions for f in index.findings([package])}


def test_django_3_2_1_has_the_24_advisories_pip_audit_reports(index: AdvisoryIndex) -> None:
    found = ids(index, PackageRef("PyPI", "Django", "3.2.1"))
    assert len(found) == 24
    assert found == sorted(DJANGO_3_2_1)


def test_ranges_alone_find_the_same_24(advisories: list[Advisory]) -> None:
    """Without the `versions` lists, the sorted ranges must give the same answer."""
    ranges_only = [
        replace(a, affected=tuple(replace(e, versions=()) for e in a.affected)) for a in advisories
    ]
    found = ids(AdvisoryIndex(ranges_only), PackageRef("PyPI", "django", "3.2.1"))
    assert found == sorted(DJANGO_3_2_1)
    assert ids(AdvisoryIndex(ranges_only), PackageRef("PyPI", "jinja2", "2.10")) == [
        "PYSEC-2019-217",
        "PYSEC-2021-66",
    ]


def test_jinja2(index: AdvisoryIndex) -> None:
    assert fixes(index, PackageRef("PyPI", "jinja2", "2.10")) == {
        "PYSEC-2019-217": ("2.10.1",),
        "PYSEC-2021-66": ("2.11.3",),
    }
    assert ids(index, PackageRef("pypi", "Jinja2", "2.11.2")) == ["PYSEC-2021-66"]
    assert ids(index, PackageRef("PyPI", "jinja2", "2.11.3")) == []


def test_unsorted_events_pysec_2023_100(index: AdvisoryIndex) -> None:
    def hit(version: str) -> tuple[str, ...] | None:
        return fixes(index, PackageRef("PyPI", "django", version)).get("PYSEC-2023-100")

    assert hit("3.1.14") is None
    assert hit("3.2") == ("3.2.20",)
    assert hit("3.2.19") == ("3.2.20",)
    assert hit("3.2.20") is None
    assert hit("4.0.3") == ("4.1.10",)
    assert hit("4.1.9") == ("4.1.10",)
    assert hit("4.1.10") is None
    assert hit("4.2.2") == ("4.2.3",)
    assert hit("4.2.3") is None


def test_last_affected_is_inclusive(index: AdvisoryIndex) -> None:
    # PYSEC-2022-42969: py, introduced 0, last_affected 1.11.0.
    assert fixes(index, PackageRef("PyPI", "py", "1.11.0")) == {"PYSEC-2022-42969": ()}
    assert ids(index, PackageRef("PyPI", "py", "1.4.7.dev3")) == ["PYSEC-2022-42969"]
    assert ids(index, PackageRef("PyPI", "py", "1.11.1")) == []
    # Hand-written Debian:12 curl: introduced 7.88.1-10, last_affected 7.88.1-10+deb12u5.
    curl = "TEST-DEB12-0003"
    assert ids(index, PackageRef("Debian:12", "curl", "7.88.1-10")) == [curl]
    assert ids(index, PackageRef("Debian:12", "curl", "7.88.1-10+deb12u5")) == [curl]
    assert ids(index, PackageRef("Debian:12", "curl", "7.88.1-10+deb12u6")) == []
    assert ids(index, PackageRef("Debian:12", "curl", "7.88.1-9")) == []


def test_versions_lists(index: AdvisoryIndex) -> None:
    # Listed below the range: affected through `versions` alone.
    assert ids(index, PackageRef("Debian:12", "curl", "7.74.0-1.3+deb11u7")) == ["TEST-DEB12-0003"]
    # Only a list: exact, or equal in PEP 440 (5.0 is 5.0.0); the name is PEP 503-normalized.
    only_list = "TEST-PYPI-0001"
    assert ids(index, PackageRef("PyPI", "zope.interface", "4.1")) == [only_list]
    assert ids(index, PackageRef("PyPI", "Zope_Interface", "5.0")) == [only_list]
    assert ids(index, PackageRef("PyPI", "zope-interface", "4.1.1")) == []
    [finding] = index.findings([PackageRef("PyPI", "zope.interface", "4.1")])
    assert (finding.fixed_versions, finding.severity) == ((), "unknown")
    assert finding.matched_name == "zope-interface" and finding.package == "zope.interface"


def test_withdrawn_advisories_are_ignored(index: AdvisoryIndex) -> None:
    assert ids(index, PackageRef("PyPI", "arrayfire", "3.5.0")) == []  # PYSEC-2019-144
    assert ids(index, PackageRef("Go", "github.com/gorilla/sessions", "v1.2.1")) == []
    # TEST-DEB12-0005 (withdrawn) would also name openssl 3.0.15-1~deb12u1.
    assert ids(index, PackageRef("Debian:12", "openssl", "3.0.15-1~deb12u1")) == []


def test_go_stdlib(index: AdvisoryIndex) -> None:
    def fix(version: str) -> tuple[str, ...] | None:
        return fixes(index, PackageRef("Go", "stdlib", version)).get("GO-2026-6218")

    assert fix("go1.25.5") == ("1.25.13",)
    assert fix("1.25.12") == ("1.25.13",)
    assert fix("1.25.13") is None
    assert fix("go1.26") == ("1.26.6",)
    assert fix("go1.26rc1") == ("1.26.6",)  # 1.26.0-rc.1 is above introduced 1.26.0-0
    assert fix("1.26.5") == ("1.26.6",)
    assert fix("1.26.6") is None
    assert fix("go1.27rc2") == ("1.27.0-rc.3",)
    assert fix("1.27.0") is None


def test_go_modules(index: AdvisoryIndex) -> None:
    crypto = "golang.org/x/crypto"
    assert fixes(index, PackageRef("Go", crypto, "v0.16.0")) == {"GO-2023-2402": ("0.17.0",)}
    assert ids(index, PackageRef("Go", crypto, "v0.17.0")) == []
    assert ids(index, PackageRef("golang", crypto, "v0.0.0-20231218163308-9d2ee975ef9f")) == [
        "GO-2023-2402"
    ]
    assert ids(index, PackageRef("Go", "golang.org/x/Crypto", "v0.16.0")) == []  # case counts


def test_debian_matches_source_packages_per_release(index: AdvisoryIndex) -> None:
    [finding] = index.findings(
        [PackageRef("Debian:11", "libssl1.1", "1.1.1n-0+deb11u3", source_name="openssl")]
    )
    assert finding.advisory_id == "DSA-5343-1"
    assert finding.fixed_versions == ("1.1.1n-0+deb11u4",)
    assert (finding.package, finding.matched_name) == ("libssl1.1", "openssl")
    assert finding.aliases == ("CVE-2022-4304", "CVE-2023-0286")
    assert finding.link == "https://www.debian.org/security/2023/dsa-5343"
    assert ids(index, PackageRef("Debian:11", "openssl", "1.1.1n-0+deb11u4")) == []
    # The binary name alone does not match a source package's advisory...
    assert ids(index, PackageRef("Debian:11", "libssl1.1", "1.1.1n-0+deb11u3")) == []
    # ...nor does another release's advisory.
    assert ids(index, PackageRef("Debian:10", "openssl", "1.1.1n-0+deb11u3")) == []
    assert ids(index, PackageRef("Debian:12", "openssl", "1.1.1n-0+deb11u3")) == ["TEST-DEB12-0001"]
    # DLA-3152-1: Debian:10 glibc; binNMU binary versions compare at the source version.
    glibc = PackageRef(
        "debian:10.13", "libc6", "2.28-10+deb10u1+b1", "glibc", source_version="2.28-10+deb10u1"
    )
    assert fixes(index, glibc) == {"DLA-3152-1": ("2.28-10+deb10u2",)}
    assert ids(index, PackageRef("Debian:10", "libc6", "2.28-10+deb10u2", "glibc")) == []


def test_debian_12_and_unscoped_debian(index: AdvisoryIndex) -> None:
    [finding] = index.findings([PackageRef("Debian:12", "libssl3", "3.0.14-1~deb12u2", "openssl")])
    assert (finding.advisory_id, finding.fixed_versions) == (
        "TEST-DEB12-0001",
        ("3.0.15-1~deb12u1",),
    )
    assert finding.severity == "high"  # Debian urgency
    assert ids(index, PackageRef("Debian:12", "libssl3", "3.0.15-1~deb12u1", "openssl")) == []
    # "Debian" without a release applies to every release; epochs count.
    for release in ("Debian:10", "Debian:11", "Debian:12"):
        assert ids(index, PackageRef(release, "zlib1g", "1:1.2.13.dfsg-1", "zlib")) == [
            "TEST-DEB-0002"
        ]
        assert ids(index, PackageRef(release, "zlib1g", "1:1.2.13.dfsg-2", "zlib")) == []
    assert ids(index, PackageRef("Debian:12", "zlib1g", "1.2.99-1", "zlib")) == ["TEST-DEB-0002"]


def test_limit_events_and_several_ranges(index: AdvisoryIndex) -> None:
    def fix(version: str) -> tuple[str, ...] | None:
        return fixes(index, PackageRef("Debian:12", "bash", version)).get("TEST-DEB12-0004")

    assert fix("4.4-5") == ()  # below the limit 5.0, no fix named
    assert fix("5.0") is None
    assert fix("5.1-2") is None
    assert fix("5.2.15-2") == ("5.2.15-2+deb12u1",)
    assert fix("5.2.15-2+deb12u1") is None


def test_alpine(index: AdvisoryIndex) -> None:
    [finding] = index.findings(
        [PackageRef("Alpine:v3.11", "libcrypto1.1", "1.1.1d-r2", source_name="openssl")]
    )
    assert (finding.advisory_id, finding.fixed_versions) == ("ALPINE-CVE-2019-1551", ("1.1.1d-r3",))
    assert finding.upstream == ("CVE-2019-1551",)
    assert ids(index, PackageRef("Alpine:v3.11", "openssl", "1.1.1d-r3")) == []
    assert ids(index, PackageRef("Alpine:v3.10", "openssl", "1.1.1d-r2")) == []
    for release in ("alpine:3.10.9", "Alpine:v3.11"):
        assert fixes(index, PackageRef(release, "busybox", "1.29.3-r9")) == {
            "ALPINE-CVE-2018-20679": ("1.29.3-r10",)
        }
        assert ids(index, PackageRef(release, "busybox", "1.29.3-r10")) == []
    # _git versions, which univers rejects alone.
    assert ids(index, PackageRef("Alpine:v3.19", "libxml2", "2.9.10_git20191212-r0")) == [
        "TEST-ALPINE-0001"
    ]
    assert ids(index, PackageRef("Alpine:v3.19", "libxml2", "2.9.10-r0")) == ["TEST-ALPINE-0001"]
    assert ids(index, PackageRef("Alpine:v3.19", "libxml2", "2.9.10_git20191212-r1")) == []


def test_alpine_malformed_fix_versions_drop_the_range(index: AdvisoryIndex) -> None:
    # ALPINE-CVE-2018-10981: v3.10 fixed in 4.10.1-r1; v3.11's "4.10-1-r1" is malformed.
    assert fixes(index, PackageRef("Alpine:v3.10", "xen", "4.10.0-r0")) == {
        "ALPINE-CVE-2018-10981": ("4.10.1-r1",)
    }
    assert ids(index, PackageRef("Alpine:v3.11", "xen", "4.10.0-r0")) == []
    # ALPINE-CVE-2020-7247: only a malformed fix (6.6.2p1-r0): nothing to match.
    assert ids(index, PackageRef("Alpine:v3.11", "opensmtpd", "6.6.1-r0")) == []


def test_npm_and_crates_semver(index: AdvisoryIndex) -> None:
    def npm(version: str) -> list[str]:
        return ids(index, PackageRef("npm", "left-pad", version))

    assert npm("1.0.0-beta.1") == []
    assert npm("1.0.0-beta.2") == ["TEST-NPM-0001"]
    assert npm("v1.3.0-beta.9") == ["TEST-NPM-0001"]
    assert npm("1.3.0-rc.1") == []
    assert npm("1.3.0") == []
    [finding] = index.findings([PackageRef("crates.io", "smallvec", "0.6.13")])
    assert (finding.severity, finding.cvss_score) == ("critical", 9.8)
    assert finding.fixed_versions == ("0.6.14",)
    [finding] = index.findings([PackageRef("npm", "left-pad", "1.2.0")])
    assert finding.severity == "medium"  # database_specific MODERATE


def test_malformed_installed_versions_and_unknown_ecosystems(index: AdvisoryIndex) -> None:
    assert ids(index, PackageRef("PyPI", "django", "not a version")) == []
    assert ids(index, PackageRef("Go", "stdlib", "devel")) == []
    # TEST-BUNDLE-0002: the PyPI range with "x.y" is dropped, the other range kept;
    # the Maven entry has no order here.
    assert ids(index, PackageRef("PyPI", "example-lib", "0.5")) == ["TEST-BUNDLE-0002"]
    assert ids(index, PackageRef("PyPI", "example-lib", "1.2")) == []
    assert ids(index, PackageRef("Maven", "org.example:lib", "1.0")) == []


def test_one_finding_per_advisory_and_package(index: AdvisoryIndex) -> None:
    packages = [
        PackageRef("Alpine:v3.11", "busybox", "1.29.3-r9"),
        PackageRef("Alpine:v3.11", "busybox-extras", "1.29.3-r9", source_name="busybox"),
        PackageRef("Alpine:v3.11", "busybox", "1.29.3-r9"),
    ]
    found = [(f.package, f.advisory_id) for f in index.findings(packages)]
    assert found == [
        ("busybox", "ALPINE-CVE-2018-20679"),
        ("busybox-extras", "ALPINE-CVE-2018-20679"),
    ]
    assert index.is_affected("PyPI", "jinja2", "2.10") == ["PYSEC-2019-217", "PYSEC-2021-66"]


@pytest.mark.parametrize(
    ("events", "version", "expected"),
    [
        ([("introduced", "0"), ("fixed", "1.0")], "0.5", (True, "1.0")),
        ([("fixed", "1.0"), ("introduced", "0")], "0.5", (True, "1.0")),  # unsorted
        ([("introduced", "1.0"), ("fixed", "1.0")], "1.0", (False, None)),
        ([("introduced", "1.0"), ("last_affected", "1.0")], "1.0", (True, None)),
        # A last_affected closing the interval first: no fix is claimed for it.
        (
            [
                ("introduced", "0"),
                ("last_affected", "1.0"),
                ("introduced", "2.0"),
                ("fixed", "2.5"),
            ],
            "0.5",
            (True, None),
        ),
        (
            [
                ("introduced", "0"),
                ("last_affected", "1.0"),
                ("introduced", "2.0"),
                ("fixed", "2.5"),
            ],
            "2.1",
            (True, "2.5"),
        ),
        ([("introduced", "0"), ("limit", "2.0"), ("limit", "*")], "3.0", (True, None)),
        ([("introduced", "0"), ("limit", "2.0"), ("limit", "3.0")], "2.5", (True, None)),
        ([("introduced", "0"), ("limit", "2.0"), ("limit", "3.0")], "3.0", (False, None)),
        ([("introduced", "0"), ("fixed", "bogus")], "0.5", (False, None)),
    ],
)
def test_range_rules(
    events: list[tuple[str, str]], version: str, expected: tuple[bool, str | None]
) -> None:
    rng = Range("ECOSYSTEM", tuple(Event(kind, v) for kind, v in events))
    assert range_match(rng, "PyPI", version) == expected

"""Each ecosystem's version order, its rejects, and the names of ecosystems and packages."""

from __future__ import annotations

import itertools

import pytest

from cargohold.vulndb.versions import (
    APK,
    DPKG,
    GO,
    NPM,
    PEP440,
    SEMVER,
    Ordering,
    VersionError,
    canonical_ecosystem,
    normalize_package,
    ordering_for,
)

# Each list is strictly ascending in its ecosystem's order.
ASCENDING = {
    "dpkg": (
        DPKG,
        [
            "0.9",
            "1.0~rc1",
            "1.0",
            "1.0-1",
            "1.0-1+b1",
            "1.0-2",
            "1.0a-1",
            "1.1.1n-0+deb11u3",
            "1.1.1n-0+deb11u4",
            "1.1.1n-0+deb11u10",
            "2.28-10+deb10u1",
            "2.28-10+deb10u2",
            "9.9",
            "1:0.1",
            "1:1.2.13.dfsg-1",
            "1:1.2.13.dfsg-2",
            "2:0.1",
        ],
    ),
    "apk": (
        APK,
        [
            "1.0_alpha1-r0",
            "1.0_beta2-r0",
            "1.0_pre1-r0",
            "1.0_rc1-r0",
            "1.0-r0",
            "1.0-r1",
            "1.0-r10",
            "1.0_p1-r0",
            "1.0a-r0",
            "1.1.1d-r2",
            "1.1.1d-r3",
            "1.9-r0",
            "1.10-r0",
            "1.29.3-r9",
            "1.29.3-r10",
            "2.9.10-r0",
            "2.9.10_git20191212-r0",
            "2.9.10_git20191212-r1",
            "2.9.11-r0",
        ],
    ),
    "pep440": (
        PEP440,
        [
            "1.0.dev1",
            "1.0a1",
            "1.0b2",
            "1.0rc1",
            "1.0",
            "1.0.post1",
            "1.1",
            "2.10",
            "2.10.1",
            "2.11.3",
            "4.1rc1",
            "4.1",
            "4.1.10",
            "1!0.1",
        ],
    ),
    # The SemVer 2.0 spec's own precedence example, then more.
    "semver": (
        SEMVER,
        [
            "0.0.0-20210101000000-abcdef123456",
            "0.0.1",
            "1.0.0-0",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.2.10",
            "1.10.0",
            "2.0.0",
        ],
    ),
    "go": (
        GO,
        [
            "v0.0.0-20231218163308-9d2ee975ef9f",
            "v0.16.0",
            "v0.17.0",
            "go1.20",
            "1.21.0-0",
            "go1.21rc2",
            "1.21.0",
            "go1.22.3",
            "1.25.5",
            "1.25.13",
            "1.26.0-0",
            "1.26.1",
            "1.26.6",
            "1.27.0-rc.3",
            "v2.0.0+incompatible",
            "v11.5.2+incompatible",
        ],
    ),
    "npm": (NPM, ["=1.0.0-beta.2", "1.2.0", "v1.3.0-rc.1", "1.3.0"]),
}


@pytest.mark.parametrize("scheme", sorted(ASCENDING))
def test_every_operator_agrees_with_the_order(scheme: str) -> None:
    """Keys must be consistent under <, <=, ==, >=, > (univers' own classes are not)."""
    ordering, versions = ASCENDING[scheme]
    keys = [ordering.key(v) for v in versions]
    for (i, a), (j, b) in itertools.product(enumerate(keys), repeat=2):
        pair = (versions[i], versions[j])
        assert (a < b) is (i < j), pair
        assert (a <= b) is (i <= j), pair
        assert (a == b) is (i == j), pair
        assert (a >= b) is (i >= j), pair
        assert (a > b) is (i > j), pair
    shuffled = list(reversed(versions))
    assert sorted(shuffled, key=ordering.key) == versions


@pytest.mark.parametrize(
    ("ordering", "a", "b"),
    [
        (SEMVER, "1.0.0+build.1", "1.0.0"),  # build metadata does not count
        (SEMVER, "v1.2.3", "1.2.3"),
        (GO, "go1.22", "1.22.0"),
        (GO, "go1.21rc2", "1.21.0-rc.2"),
        (GO, "v2.0.0+incompatible", "2.0.0"),
        (PEP440, "2.10", "2.10.0"),
        (DPKG, "1.0", "0:1.0"),
        (APK, "1.0_git5-r0", "1.0_p5-r0"),  # the documented approximation
    ],
)
def test_equal_versions(ordering: Ordering, a: str, b: str) -> None:
    assert ordering.compare(a, b) == 0


@pytest.mark.parametrize(
    ("ordering", "version"),
    [
        (DPKG, "abc"),
        (DPKG, "1:"),
        (DPKG, ""),
        # Alpine fix versions malformed upstream (SOURCE.md).
        (APK, "4.10-1-r1"),
        (APK, "2.7.16-33"),
        (APK, "4.8.0.-r1"),
        (APK, "6.6.2p1-r0"),
        (PEP440, "2019-09-12"),
        (PEP440, "0.2.0-n653"),
        (SEMVER, "1.2"),
        (SEMVER, "01.2.3"),
        (SEMVER, "1.2.3-01"),
        (SEMVER, "go1.2.3"),
        (GO, "gox"),
        (NPM, "latest"),
    ],
)
def test_rejects(ordering: Ordering, version: str) -> None:
    with pytest.raises(VersionError):
        ordering.key(version)
    assert not ordering.valid(version)


def test_orderings_per_range_type() -> None:
    assert ordering_for("Debian:11", "ECOSYSTEM") is DPKG
    assert ordering_for("Ubuntu:22.04:LTS", "ECOSYSTEM") is DPKG
    assert ordering_for("Alpine:v3.11", "ECOSYSTEM") is APK
    assert ordering_for("PyPI", "ECOSYSTEM") is PEP440
    assert ordering_for("Go", "SEMVER") is GO
    assert ordering_for("Go", "ECOSYSTEM") is GO
    assert ordering_for("npm", "SEMVER") is NPM
    assert ordering_for("crates.io", "SEMVER") is SEMVER
    assert ordering_for("Maven", "SEMVER") is SEMVER
    assert ordering_for("Maven", "ECOSYSTEM") is None
    assert ordering_for("PyPI", "GIT") is None


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("pypi", "PyPI"),
        ("PyPI", "PyPI"),
        ("golang", "Go"),
        ("NPM", "npm"),
        ("debian:12.5", "Debian:12"),
        ("Debian:11", "Debian:11"),
        ("Debian:sid", "Debian:sid"),
        ("alpine:3.11.6", "Alpine:v3.11"),
        ("Alpine:v3.11", "Alpine:v3.11"),
        ("Ubuntu:22.04:LTS", "Ubuntu:22.04:LTS"),
        ("SomethingNew", "SomethingNew"),
    ],
)
def test_canonical_ecosystem(given: str, canonical: str) -> None:
    assert canonical_ecosystem(given) == canonical


def test_package_names() -> None:
    assert normalize_package("PyPI", "Zope.Interface") == "zope-interface"
    assert normalize_package("PyPI", "jinja2") == "jinja2"
    assert normalize_package("PyPI", "Foo__Bar-.baz") == "foo-bar-baz"
    assert normalize_package("Debian:12", "OpenSSL") == "openssl"
    assert normalize_package("Go", "github.com/BurntSushi/toml") == "github.com/BurntSushi/toml"

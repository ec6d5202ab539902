"""Each ecosystem's own version order, as sort keys.

An `Ordering` turns a version string into a key that compares the way the ecosystem's
package manager compares versions, or raises `VersionError` when the string is not a
version of that ecosystem:

- dpkg (Debian, Ubuntu): univers' DebianVersion.
- apk (Alpine, Wolfi, Chainguard): univers' AlpineLinuxVersion, after mapping the post-release
  suffixes univers does not know (`_cvs`, `_svn`, `_git`, `_hg`) onto `_p` (see `_apk_key`).
- PEP 440 (PyPI): packaging.version.
- SemVer 2.0 (Go, npm, crates.io, and every `SEMVER` range): `semver_key` below. univers'
  SemverVersion treats build metadata as significant (`1.0.0+b1 != 1.0.0`) and its
  GolangVersion rejects Go toolchain versions (`go1.22.3`, `1.21rc2`), so this module has its
  own comparator, ~40 lines checked against the SemVer 2.0 precedence rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cmp_to_key, lru_cache
from typing import Any

from packaging.version import InvalidVersion
from packaging.version import Version as Pep440Version
from univers import debian as univers_debian
from univers import gentoo as univers_gentoo
from univers.versions import AlpineLinuxVersion, DebianVersion
from univers.versions import InvalidVersion as UniversInvalidVersion


class VersionError(ValueError):
    """The string is not a version in this ecosystem's scheme."""


@dataclass(frozen=True, slots=True)
class Ordering:
    """A version scheme: `key(v)` sorts versions the way the ecosystem does."""

    name: str
    _key: Callable[[str], Any]

    def key(self, version: str) -> Any:
        if not isinstance(version, str) or not version.strip():
            raise VersionError(f"not a {self.name} version: {version!r}")
        return self._key(version.strip())

    def valid(self, version: str) -> bool:
        try:
            self.key(version)
        except VersionError:
            return False
        return True

    def compare(self, a: str, b: str) -> int:
        ka, kb = self.key(a), self.key(b)
        return (ka > kb) - (ka < kb)


# -- SemVer 2.0


_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


def semver_key(version: str) -> tuple[int, int, int, tuple[Any, ...]]:
    """SemVer 2.0 precedence; a leading `v` (Go modules, npm) is allowed, build metadata ignored.

    A release sorts after its pre-releases; pre-release identifiers compare numerically when
    both are numbers, numbers sort before words, and a longer list of equal leading
    identifiers sorts later.
    """
    text = version[1:] if version[:1] in ("v", "V") else version
    match = _SEMVER.match(text)
    if match is None:
        raise VersionError(f"not a semantic version: {version!r}")
    major, minor, patch, pre = match.group(1, 2, 3, 4)
    if pre is None:
        pre_key: tuple[Any, ...] = (1,)
    else:
        identifiers = pre.split(".")
        pre_key = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in identifiers))
    return int(major), int(minor), int(patch), pre_key


_GO_TOOLCHAIN = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:(rc|beta|alpha)(\d+))?$")


def go_key(version: str) -> tuple[int, int, int, tuple[Any, ...]]:
    """Go: module versions (`v1.2.3`, pseudo-versions, `+incompatible`) and toolchain versions.

    The toolchain (the `stdlib` and `toolchain` packages) is versioned `go1.22.3`, `go1.22`
    (= 1.22.0) and `go1.21rc2` (= 1.21.0-rc.2), the mapping the Go vulnerability database uses.
    """
    text = version[2:] if version.startswith("go") else version
    try:
        return semver_key(text)
    except VersionError:
        match = _GO_TOOLCHAIN.match(text[1:] if text[:1] == "v" else text)
        if match is None:
            raise
    major, minor, patch, pre, num = match.groups()
    canonical = f"{major}.{minor or 0}.{patch or 0}" + (f"-{pre}.{num}" if pre else "")
    return semver_key(canonical)


def npm_key(version: str) -> tuple[int, int, int, tuple[Any, ...]]:
    """npm: SemVer 2.0; node-semver also accepts a leading `=` or `v`."""
    return semver_key(version.lstrip("="))


# -- PEP 440


def pep440_key(version: str) -> Pep440Version:
    try:
        return Pep440Version(version)
    except InvalidVersion as exc:
        raise VersionError(f"not a PEP 440 version: {version!r}") from exc


# -- dpkg and apk (univers)
#
# univers parses and validates; the keys compare through univers' compare functions alone.
# Its version classes are unsafe to compare directly: AlpineLinuxVersion defines < and > by
# vercmp but takes <= and >= from attrs, which compares the strings (`1.29.3-r9 >= 1.29.3-r10`
# is True there).

_DPKG_ORDER = cmp_to_key(univers_debian.compare_version_objects)
_APK_ORDER = cmp_to_key(univers_gentoo.vercmp)


def dpkg_key(version: str) -> Any:
    try:
        return _DPKG_ORDER(DebianVersion(version).value)
    except (UniversInvalidVersion, ValueError) as exc:
        raise VersionError(f"not a Debian version: {version!r}") from exc


# apk-tools orders suffixes alpha < beta < pre < rc < (none) < cvs < svn < git < hg < p.
# univers (Gentoo rules) knows only alpha, beta, pre, rc and p and rejects the others, which
# real Alpine packages use (e.g. `2.9.10_git20191212-r0`). They are post-release suffixes like
# `_p`, so they are compared as `_p`: right against releases, pre-releases and other base
# versions; only `_git1` against `_p1` of the same base version would compare equal.
_APK_POST_RELEASE = re.compile(r"_(?:cvs|svn|git|hg)(?=\d*(?:_|-r\d|$))")


def apk_key(version: str) -> Any:
    try:
        return _APK_ORDER(AlpineLinuxVersion(_APK_POST_RELEASE.sub("_p", version)).value)
    except (UniversInvalidVersion, ValueError) as exc:
        raise VersionError(f"not an Alpine version: {version!r}") from exc


def _cached(function: Callable[[str], Any]) -> Callable[[str], Any]:
    """Parse each distinct version once: advisories repeat the same fixed versions."""
    cached = lru_cache(maxsize=65536)(function)

    def key(version: str) -> Any:
        return cached(version)

    return key


DPKG = Ordering("dpkg", _cached(dpkg_key))
APK = Ordering("apk", _cached(apk_key))
PEP440 = Ordering("PEP 440", _cached(pep440_key))
SEMVER = Ordering("SemVer", _cached(semver_key))
GO = Ordering("Go", _cached(go_key))
NPM = Ordering("npm", _cached(npm_key))

# The ecosystem's name before any `:release` suffix.
_ECOSYSTEM_ORDERINGS: dict[str, Ordering] = {
    "Debian": DPKG,
    "Ubuntu": DPKG,
    "Alpine": APK,
    "Wolfi": APK,
    "Chainguard": APK,
    "PyPI": PEP440,
    "Go": GO,
    "npm": NPM,
    "crates.io": SEMVER,
}


def base_ecosystem(ecosystem: str) -> str:
    """`Debian:11` -> `Debian`; `Ubuntu:22.04:LTS` -> `Ubuntu`; `PyPI` -> `PyPI`."""
    return ecosystem.split(":", 1)[0]


def supported(ecosystem: str) -> bool:
    return base_ecosystem(ecosystem) in _ECOSYSTEM_ORDERINGS


def ordering_for(ecosystem: str, range_type: str) -> Ordering | None:
    """The order of an OSV range: `SEMVER` ranges are SemVer (Go's variant for Go, which
    accepts the `v` and `go` prefixes), `ECOSYSTEM` ranges the ecosystem's own order;
    None for `GIT` ranges, unknown range types and ecosystems this module does not order.
    """
    base = base_ecosystem(ecosystem)
    if range_type == "SEMVER":
        return GO if base == "Go" else NPM if base == "npm" else SEMVER
    if range_type == "ECOSYSTEM":
        return _ECOSYSTEM_ORDERINGS.get(base)
    return None


def ecosystem_ordering(ecosystem: str) -> Ordering | None:
    return _ECOSYSTEM_ORDERINGS.get(base_ecosystem(ecosystem))


# -- names of ecosystems and packages

_CANONICAL = {
    name.lower(): name
    for name in (*_ECOSYSTEM_ORDERINGS, "Maven", "NuGet", "RubyGems", "Packagist", "Hex", "Pub")
}
_CANONICAL["golang"] = "Go"
_CANONICAL["pypi"] = "PyPI"
_CANONICAL["pip"] = "PyPI"


def canonical_ecosystem(ecosystem: str) -> str:
    """The OSV spelling of an ecosystem a caller names loosely.

    `pypi` -> `PyPI`, `golang` -> `Go`, `debian:12.5` -> `Debian:12` (Debian releases are
    named by major version), `alpine:3.18.4` or `Alpine:3.18` -> `Alpine:v3.18`. Unknown
    names are returned unchanged.
    """
    text = ecosystem.strip()
    base, _, release = text.partition(":")
    canonical = _CANONICAL.get(base.lower(), base)
    if not release:
        return canonical
    if canonical == "Debian" and re.fullmatch(r"\d+(?:\.\d+)*", release):
        release = release.split(".", 1)[0]
    elif canonical == "Alpine":
        match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)*", release)
        if match:
            release = f"v{match.group(1)}.{match.group(2)}"
    return f"{canonical}:{release}"


_PEP503 = re.compile(r"[-_.]+")


def normalize_package(ecosystem: str, name: str) -> str:
    """A package name as advisories spell it: PEP 503 for PyPI, lower case for the Linux
    distributions (their policies allow no capitals), unchanged elsewhere (Go module paths and
    npm names are case-sensitive).
    """
    name = name.strip()
    base = base_ecosystem(ecosystem)
    if base == "PyPI":
        return _PEP503.sub("-", name).lower()
    if base in ("Debian", "Ubuntu", "Alpine", "Wolfi", "Chainguard"):
        return name.lower()
    return name

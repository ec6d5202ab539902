"""Data types shared by the layer reader, the detectors and the inventory."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class OSInfo:
    """What the image's os-release says about its distribution."""

    id: str
    version_id: str | None
    pretty_name: str | None
    version_codename: str | None = None
    id_like: tuple[str, ...] = ()


@dataclass(frozen=True)
class Package:
    """One installed package, as found in the image's final filesystem.

    ``ecosystem`` uses OSV's names ("Debian:12", "Alpine:v3.19", "PyPI", "npm", "Go").
    ``layer_digest``/``layer_index`` name the layer that last wrote ``path``, the file
    the package was read from (for dpkg and apk, the shared database file).
    ``source_name``/``source_version`` are the distribution's source package (dpkg
    ``Source:``, apk origin), which distribution advisories are keyed by.
    """

    name: str
    version: str
    ecosystem: str
    purl: str
    kind: str
    layer_digest: str
    layer_index: int
    path: str
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None


class Warnings(Counter[str]):
    """Counts of things skipped or not understood, by kind ("dpkg-malformed", ...)."""

    def add(self, kind: str, n: int = 1) -> None:
        self[kind] += n

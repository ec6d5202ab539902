"""What a detector is, and helpers shared by the detectors."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Protocol

from packageurl import PackageURL

from cargohold.scan.layers import Analyzer, FileEntry, ImageFilesystem
from cargohold.scan.model import OSInfo, Package, Warnings


class Detector(Protocol):
    """Finds packages of one kind in an image's final filesystem.

    ``keep(path)`` tells the layer reader which files' content the detector will
    read (and how many bytes at most); ``analyzers`` see executables' bytes while
    the layers stream by. ``detect`` then runs on the finished filesystem; it may
    count problems in ``warnings`` but must not raise for the image's content.
    """

    name: str
    analyzers: tuple[Analyzer, ...]

    def keep(self, path: str) -> int | None: ...

    def detect(
        self, fs: ImageFilesystem, os_info: OSInfo | None, warnings: Warnings
    ) -> list[Package]: ...


def split_paragraphs(text: str) -> Iterable[list[str]]:
    """Blank-line separated paragraphs of lines (dpkg status, apk installed)."""
    para: list[str] = []
    for line in text.splitlines():
        if line.strip():
            para.append(line)
        elif para:
            yield para
            para = []
    if para:
        yield para


def attribute_layers(
    fs: ImageFilesystem,
    entry: FileEntry,
    keys: Iterable[Hashable],
    parse: Callable[[bytes], set[Hashable]],
) -> dict[Hashable, FileEntry]:
    """For a package database file (dpkg status, apk installed) that later layers
    rewrite: the file version each package first appeared in, counting back from the
    final one while the package stays in every version. The layer of that version is
    the layer the package came from (a package from the base image keeps the base
    layer even though a later layer's install rewrote the database)."""
    final = entry.data_entry
    attributed: dict[Hashable, FileEntry] = {k: final for k in keys}
    versions = fs.history(final.path)
    if not versions or versions[-1] is not final:
        return attributed
    current = set(attributed)
    for version in reversed(versions[:-1]):
        if version is None or version.content is None or version.content_truncated:
            break
        try:
            present = parse(version.content)
        except Exception:
            break
        current &= present
        if not current:
            break
        for k in current:
            attributed[k] = version
    return attributed


def os_package(
    kind: str,
    name: str,
    version: str,
    arch: str | None,
    layer: FileEntry,
    path: str,
    distro_fields: tuple[str, str, str | None],
    source_name: str | None,
    source_version: str | None,
) -> Package:
    """A package of the OS's package manager (deb, apk), with its purl: the distro's
    namespace, and arch and distro qualifiers when known."""
    ecosystem, namespace, distro = distro_fields
    qualifiers = {"arch": arch} if arch else {}
    if distro:
        qualifiers["distro"] = distro
    purl = PackageURL(
        type=kind, namespace=namespace, name=name, version=version, qualifiers=qualifiers
    ).to_string()
    return Package(
        name=name,
        version=version,
        ecosystem=ecosystem,
        purl=purl,
        kind=kind,
        layer_digest=layer.layer_digest,
        layer_index=layer.layer_index,
        path=path,
        source_name=source_name,
        source_version=source_version,
        arch=arch,
    )

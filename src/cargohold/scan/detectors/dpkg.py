"""Debian/Ubuntu packages from the dpkg database.

``/var/lib/dpkg/status`` (one paragraph per package) and, in distroless images,
``/var/lib/dpkg/status.d/<name>`` (one file per package, ``*.md5sums`` beside them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cargohold.scan.detectors.base import attribute_layers, os_package, split_paragraphs
from cargohold.scan.layers import ImageFilesystem
from cargohold.scan.model import OSInfo, Package, Warnings
from cargohold.scan.osrelease import distro_ecosystem

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d"
MAX_STATUS = 64 << 20
MAX_STATUS_D_FILE = 4 << 20

# dpkg states in which the package's files are on disk.
_PRESENT_STATES = {
    "installed",
    "half-installed",
    "unpacked",
    "half-configured",
    "triggers-awaited",
    "triggers-pending",
}
_FIELD = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):[ \t]*(.*)$")
_SOURCE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9+._~-]*)(?:\s+\(([^()\s]+)\))?\s*$")


@dataclass(frozen=True)
class DpkgRecord:
    name: str
    version: str
    arch: str | None
    source_name: str
    source_version: str


def parse_status(text: str, warnings: Warnings | None = None) -> list[DpkgRecord]:
    """The packages of a dpkg status file whose files are on disk. Paragraphs
    without Package or Version, or with a malformed Source, are counted as
    ``dpkg-malformed`` and skipped."""
    records: list[DpkgRecord] = []
    for para in split_paragraphs(text):
        fields: dict[str, str] = {}
        key: str | None = None
        for line in para:
            if line[0] in " \t":
                continue  # continuation of a multi-line field we don't read
            m = _FIELD.match(line)
            if m is None:
                key = None
                continue
            key = m.group(1).lower()
            fields.setdefault(key, m.group(2).strip())
        name, version = fields.get("package", ""), fields.get("version", "")
        if not name or not version or any(c.isspace() for c in name + version):
            if warnings is not None:
                warnings.add("dpkg-malformed")
            continue
        status = fields.get("status")
        if status is not None:
            words = status.split()
            if not words or words[-1] not in _PRESENT_STATES:
                continue
        source_name, source_version = name, version
        if "source" in fields:
            m = _SOURCE.match(fields["source"])
            if m is None:
                if warnings is not None:
                    warnings.add("dpkg-malformed")
                continue
            source_name = m.group(1)
            source_version = m.group(2) or version
        records.append(
            DpkgRecord(
                name, version, fields.get("architecture") or None, source_name, source_version
            )
        )
    return records


def _keys(content: bytes) -> set:
    return {(r.name, r.version, r.arch) for r in parse_status(content.decode("utf-8", "replace"))}


class DpkgDetector:
    name = "dpkg"
    analyzers = ()

    def keep(self, path: str) -> int | None:
        if path == STATUS:
            return MAX_STATUS
        if (
            path.startswith(STATUS_D + "/")
            and path.count("/") == 4
            and not path.endswith(".md5sums")
        ):
            return MAX_STATUS_D_FILE
        return None

    def detect(
        self, fs: ImageFilesystem, os_info: OSInfo | None, warnings: Warnings
    ) -> list[Package]:
        files = [STATUS]
        files += [f"{STATUS_D}/{n}" for n in fs.listdir(STATUS_D) if not n.endswith(".md5sums")]
        fields = distro_ecosystem(os_info, "debian")
        packages: list[Package] = []
        for path in files:
            entry = fs.stat(path)
            if entry is None or entry.kind not in ("file", "hardlink"):
                continue
            content = entry.data_entry.content
            if content is None:
                warnings.add("dpkg-unread")
                continue
            if entry.data_entry.content_truncated:
                warnings.add("dpkg-truncated")
            records = parse_status(content.decode("utf-8", "replace"), warnings)
            origin = attribute_layers(
                fs, entry, [(r.name, r.version, r.arch) for r in records], _keys
            )
            for r in records:
                packages.append(
                    os_package(
                        "deb",
                        r.name,
                        r.version,
                        r.arch,
                        origin[(r.name, r.version, r.arch)],
                        "/" + path,
                        fields,
                        source_name=r.source_name,
                        source_version=r.source_version,
                    )
                )
        return packages

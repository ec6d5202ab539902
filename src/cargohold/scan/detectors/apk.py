"""Alpine packages from apk's database, ``/lib/apk/db/installed``.

One blank-line separated paragraph per package, ``X:value`` lines: P name, V version,
A architecture, o origin (the aports source package that advisories name), ...
"""

from __future__ import annotations

from dataclasses import dataclass

from cargohold.scan.detectors.base import attribute_layers, os_package, split_paragraphs
from cargohold.scan.layers import ImageFilesystem
from cargohold.scan.model import OSInfo, Package, Warnings
from cargohold.scan.osrelease import distro_ecosystem

INSTALLED = "lib/apk/db/installed"
MAX_INSTALLED = 64 << 20


@dataclass(frozen=True)
class ApkRecord:
    name: str
    version: str
    arch: str | None
    origin: str | None


def parse_installed(text: str, warnings: Warnings | None = None) -> list[ApkRecord]:
    records: list[ApkRecord] = []
    for para in split_paragraphs(text):
        fields: dict[str, str] = {}
        for line in para:
            if len(line) < 2 or line[1] != ":":
                if warnings is not None:
                    warnings.add("apk-malformed-line")
                continue
            fields.setdefault(line[0], line[2:].strip())
        name, version = fields.get("P", ""), fields.get("V", "")
        if not name or not version or any(c.isspace() for c in name + version):
            if warnings is not None:
                warnings.add("apk-malformed")
            continue
        records.append(ApkRecord(name, version, fields.get("A") or None, fields.get("o") or None))
    return records


def _keys(content: bytes) -> set:
    return {
        (r.name, r.version, r.arch) for r in parse_installed(content.decode("utf-8", "replace"))
    }


class ApkDetector:
    name = "apk"
    analyzers = ()

    def keep(self, path: str) -> int | None:
        return MAX_INSTALLED if path == INSTALLED else None

    def detect(
        self, fs: ImageFilesystem, os_info: OSInfo | None, warnings: Warnings
    ) -> list[Package]:
        entry = fs.stat(INSTALLED)
        if entry is None or entry.kind not in ("file", "hardlink"):
            return []
        content = entry.data_entry.content
        if content is None:
            warnings.add("apk-unread")
            return []
        if entry.data_entry.content_truncated:
            warnings.add("apk-truncated")
        records = parse_installed(content.decode("utf-8", "replace"), warnings)
        origin = attribute_layers(fs, entry, [(r.name, r.version, r.arch) for r in records], _keys)
        fields = distro_ecosystem(os_info, "alpine")
        packages: list[Package] = []
        for r in records:
            packages.append(
                os_package(
                    "apk",
                    r.name,
                    r.version,
                    r.arch,
                    origin[(r.name, r.version, r.arch)],
                    "/" + INSTALLED,
                    fields,
                    source_name=r.origin,
                    source_version=r.version if r.origin else None,
                )
            )
        return packages

"""Installed Python distributions: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO``
and ``*.egg-info`` files (which are themselves the PKG-INFO)."""

from __future__ import annotations

import re

from packageurl import PackageURL

from cargohold.scan.layers import DIR, FILE, HARDLINK, ImageFilesystem
from cargohold.scan.model import OSInfo, Package, Warnings

# Only the header block is read; a METADATA longer than this (its description can be
# anything) is read up to here, and if its headers don't end by then it is skipped.
MAX_METADATA = 256 << 10

_NORMALIZE = re.compile(r"[-_.]+")
_VALID_NAME = re.compile(r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$")


def normalize_name(name: str) -> str:
    """PEP 503 normalized project name (what PyPI and purl use)."""
    return _NORMALIZE.sub("-", name).lower()


def parse_metadata_headers(content: bytes) -> tuple[dict[str, str], bool]:
    """The first Name/Version/... headers of core metadata, and whether the header
    block ended inside ``content``."""
    headers: dict[str, str] = {}
    text = content.decode("utf-8", "replace")
    ended = False
    for line in text.splitlines():
        if not line.strip():
            ended = True
            break
        if line[0] in " \t":
            continue
        key, sep, value = line.partition(":")
        if sep:
            headers.setdefault(key.strip().lower(), value.strip())
    return headers, ended


def _metadata_path(path: str) -> bool:
    return (
        path.endswith(".dist-info/METADATA")
        or path.endswith(".egg-info/PKG-INFO")
        or path.endswith(".egg-info")
    )


class PythonDetector:
    name = "python"
    analyzers = ()

    def keep(self, path: str) -> int | None:
        return MAX_METADATA if _metadata_path(path) else None

    def detect(
        self, fs: ImageFilesystem, os_info: OSInfo | None, warnings: Warnings
    ) -> list[Package]:
        packages: list[Package] = []
        for entry in fs.iter_entries():
            if entry.kind == DIR or not _metadata_path(entry.path):
                continue
            if entry.kind not in (FILE, HARDLINK):
                data_entry = fs.stat(entry.path)  # a symlinked METADATA
                if data_entry is None or data_entry.kind not in (FILE, HARDLINK):
                    continue
                data = data_entry.data_entry
            else:
                data = entry.data_entry
            if data.content is None:
                warnings.add("python-metadata-unread")
                continue
            headers, ended = parse_metadata_headers(data.content)
            name, version = headers.get("name", ""), headers.get("version", "")
            if not name or not version:
                warnings.add(
                    "python-metadata-too-large"
                    if data.content_truncated and not ended
                    else "python-metadata-malformed"
                )
                continue
            if not _VALID_NAME.match(name) or any(c.isspace() for c in version):
                warnings.add("python-metadata-malformed")
                continue
            purl = PackageURL(type="pypi", name=normalize_name(name), version=version).to_string()
            packages.append(
                Package(
                    name=name,
                    version=version,
                    ecosystem="PyPI",
                    purl=purl,
                    kind="python",
                    layer_digest=data.layer_digest,
                    layer_index=data.layer_index,
                    path="/" + entry.path,
                )
            )
        return packages

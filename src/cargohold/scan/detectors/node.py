"""npm packages: ``package.json`` of each package directory under a ``node_modules``
(``node_modules/NAME/`` or ``node_modules/@SCOPE/NAME/``, nested ones included)."""

from __future__ import annotations

import json
import re

from packageurl import PackageURL

from cargohold.scan.layers import FILE, HARDLINK, ImageFilesystem
from cargohold.scan.model import OSInfo, Package, Warnings

MAX_PACKAGE_JSON = 1 << 20
_PACKAGE_JSON = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/@][^/]*/package\.json$")


def npm_purl(name: str, version: str) -> str:
    namespace, _, base = name.rpartition("/")
    return PackageURL(
        type="npm", namespace=namespace or None, name=base, version=version
    ).to_string()


class NodeDetector:
    name = "node"
    analyzers = ()

    def keep(self, path: str) -> int | None:
        return MAX_PACKAGE_JSON if _PACKAGE_JSON.search(path) else None

    def detect(
        self, fs: ImageFilesystem, os_info: OSInfo | None, warnings: Warnings
    ) -> list[Package]:
        packages: list[Package] = []
        for entry in fs.iter_entries():
            if entry.kind not in (FILE, HARDLINK) or not _PACKAGE_JSON.search(entry.path):
                continue
            data = entry.data_entry
            if data.content is None:
                warnings.add("npm-package-json-unread")
                continue
            if data.content_truncated:
                warnings.add("npm-package-json-too-large")
                continue
            try:
                doc = json.loads(data.content)
            except (ValueError, RecursionError):
                warnings.add("npm-package-json-malformed")
                continue
            if not isinstance(doc, dict):
                warnings.add("npm-package-json-malformed")
                continue
            name, version = doc.get("name"), doc.get("version")
            if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
                continue  # a package.json without name/version (a sub-folder marker)
            if name.count("/") > 1 or (name.count("/") == 1 and not name.startswith("@")):
                warnings.add("npm-package-json-malformed")
                continue
            packages.append(
                Package(
                    name=name,
                    version=version,
                    ecosystem="npm",
                    purl=npm_purl(name, version),
                    kind="npm",
                    layer_digest=data.layer_digest,
                    layer_index=data.layer_index,
                    path="/" + entry.path,
                )
            )
        return packages

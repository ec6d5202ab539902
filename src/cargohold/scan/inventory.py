"""The inventory of an image: its distribution and the packages installed in it."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cargohold.scan.detectors import Detector, default_detectors
from cargohold.scan.layers import ImageFilesystem, LayerSource, ScanLimits
from cargohold.scan.model import OSInfo, Package, Warnings
from cargohold.scan.osrelease import detect_os, keep_os_release

log = logging.getLogger(__name__)


@dataclass
class Inventory:
    os: OSInfo | None
    packages: list[Package]
    layers: list[str]
    """Layer digests, lowest first; ``Package.layer_index`` indexes this list."""
    warnings: dict[str, int] = field(default_factory=dict)
    files: int = 0
    """Entries in the final filesystem."""

    @property
    def counts(self) -> dict[str, int]:
        """Packages per ecosystem."""
        return dict(Counter(p.ecosystem for p in self.packages))

    @property
    def counts_by_kind(self) -> dict[str, int]:
        """Packages per kind (deb, apk, python, npm, go-module, go-stdlib)."""
        return dict(Counter(p.kind for p in self.packages))

    def by_kind(self, kind: str) -> list[Package]:
        return [p for p in self.packages if p.kind == kind]


def build_inventory(
    layers: Iterable[LayerSource],
    *,
    detectors: Sequence[Detector] | None = None,
    limits: ScanLimits | None = None,
) -> Inventory:
    """Apply ``layers`` (lowest first) and list the packages of the final filesystem.

    Never raises for the content of the layers: what could not be read is counted
    in ``Inventory.warnings``.
    """
    dets = list(detectors) if detectors is not None else default_detectors()
    fs = ImageFilesystem.from_layers(
        layers,
        keep=_combined_keep(dets),
        analyzers=[a for d in dets for a in d.analyzers],
        limits=limits,
    )
    return inventory_from_filesystem(fs, dets)


def inventory_from_filesystem(fs: ImageFilesystem, detectors: Sequence[Detector]) -> Inventory:
    warnings = Warnings(fs.warnings)
    try:
        os_info = detect_os(fs)
    except Exception:
        log.exception("os-release detection failed")
        warnings.add("os-release-error")
        os_info = None
    packages: list[Package] = []
    for detector in detectors:
        try:
            packages.extend(detector.detect(fs, os_info, warnings))
        except Exception:
            log.exception("detector %s failed", detector.name)
            warnings.add(f"detector-error:{detector.name}")
    packages.sort(key=lambda p: (p.kind, p.name, p.version, p.path))
    return Inventory(
        os=os_info,
        packages=packages,
        layers=[layer.digest for layer in fs.layers],
        warnings=dict(warnings),
        files=len(fs),
    )


def _combined_keep(detectors: Sequence[Detector]):
    keeps = [keep_os_release, *(d.keep for d in detectors)]

    def keep(path: str) -> int | None:
        best = 0
        for k in keeps:
            n = k(path)
            if n and n > best:
                best = n
        return best or None

    return keep

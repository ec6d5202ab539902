"""Scan a stored image for known vulnerabilities: inventory its layers, match the packages
against the advisory database, and report the findings.

    report = ScanService(registry, AdvisoryStore(engine)).scan("team/app", "1.0")

Layers are streamed from the blob store (never written to disk). An index is scanned
platform by platform (one entry of ``ScanReport.images`` each); a manifest that is not a
container image (a signature, an SBOM, any other artifact) gives ``status ==
"not-an-image"`` and no findings, not an error.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, BinaryIO

from cargohold import mediatypes as mt
from cargohold.core.registry import Registry
from cargohold.scan.inventory import Inventory, build_inventory
from cargohold.scan.layers import LayerSource, ScanLimits
from cargohold.storage.meta import ManifestRecord
from cargohold.storage.meta.sqlbase import now
from cargohold.vulndb.matching import Finding
from cargohold.vulndb.store import AdvisoryStore

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

IMAGE_CONFIGS = mt.IMAGE_CONFIGS
# Filesystem layers: OCI (plain, gzip, zstd, and the deprecated non-distributable ones)
# and Docker's.
_LAYER_PREFIXES = (
    "application/vnd.oci.image.layer.",
    "application/vnd.docker.image.rootfs.",
)
_CONFIG_MAX = 4 << 20


def is_layer_type(media_type: str) -> bool:
    return media_type.startswith(_LAYER_PREFIXES)


class _ChunkReader(io.RawIOBase):
    """A readable binary file over an iterator of byte chunks (a blob store's stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        super().close()


def chunk_stream(chunks: Iterable[bytes], buffer_size: int = 1 << 20) -> BinaryIO:
    """A buffered binary file reading ``chunks`` in order; closing it closes the iterator."""
    return io.BufferedReader(_ChunkReader(iter(chunks)), buffer_size=buffer_size)  # type: ignore[return-value]


@dataclass
class ImageResult:
    """The scan of one image manifest (one platform of an index)."""

    digest: str
    platform: str | None
    status: str = "scanned"  # scanned | not-an-image | skipped
    message: str | None = None
    os: dict[str, Any] | None = None
    packages: dict[str, int] = field(default_factory=dict)  # per ecosystem
    package_total: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    severity_counts: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    layers: int = 0


@dataclass
class ScanReport:
    repository: str
    reference: str
    digest: str
    media_type: str
    scanned_at: datetime
    status: str = "scanned"  # scanned | not-an-image
    message: str | None = None
    duration_seconds: float = 0.0
    advisory_db: dict[str, Any] | None = None  # {"import_id", "imported_at"} or None
    images: list[ImageResult] = field(default_factory=list)

    @property
    def severity_counts(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for image in self.images:
            total.update(image.severity_counts)
        return {s: total.get(s, 0) for s in SEVERITIES}

    @property
    def findings(self) -> list[dict[str, Any]]:
        return [f for image in self.images for f in image.findings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "reference": self.reference,
            "digest": self.digest,
            "media_type": self.media_type,
            "scanned_at": self.scanned_at.isoformat(),
            "status": self.status,
            "message": self.message,
            "duration_seconds": self.duration_seconds,
            "advisory_db": self.advisory_db,
            "severity_counts": self.severity_counts,
            "images": [asdict(image) for image in self.images],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanReport:
        return cls(
            repository=data["repository"],
            reference=data["reference"],
            digest=data["digest"],
            media_type=data["media_type"],
            scanned_at=datetime.fromisoformat(data["scanned_at"]),
            status=data["status"],
            message=data.get("message"),
            duration_seconds=data.get("duration_seconds", 0.0),
            advisory_db=data.get("advisory_db"),
            images=[ImageResult(**image) for image in data.get("images", [])],
        )


def finding_dict(finding: Finding) -> dict[str, Any]:
    return finding.to_dict()


def sort_by_severity(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (
            _SEVERITY_RANK.get(f.severity, len(SEVERITIES)),
            f.package,
            f.ecosystem,
            f.installed_version,
            f.advisory_id,
        ),
    )


@dataclass
class ImageAnalysis:
    """One image manifest's scan result with the inventory and findings it was made of."""

    result: ImageResult
    inventory: Inventory | None = None
    findings: list[Finding] = field(default_factory=list)


# known(digest): a current result of that platform image to reuse, or None to scan it
KnownResult = Callable[[str], "ImageResult | None"]
# analyzed(analysis, descriptor): an image was scanned afresh (descriptor: its subject)
AnalysisHook = Callable[["ImageAnalysis", dict[str, Any]], None]


class ScanService:
    """Scans manifests of ``registry`` against the advisories of ``advisories``."""

    def __init__(
        self,
        registry: Registry,
        advisories: AdvisoryStore,
        limits: ScanLimits | None = None,
    ) -> None:
        self._registry = registry
        self._advisories = advisories
        self._limits = limits

    def scan(
        self,
        repository: str,
        reference: str,
        known: KnownResult | None = None,
        analyzed: AnalysisHook | None = None,
    ) -> ScanReport:
        """Scan the manifest ``reference`` (tag or digest) of ``repository`` now.

        ``known(digest)`` may give a platform image's current result to reuse instead of
        scanning it again (the background scanner scans an index's images when they are
        pushed, before the index); ``analyzed`` is told of each image scanned afresh, with
        its inventory and descriptor (to store its own result, attach its SBOM).
        Raises the registry's errors for an unknown repository or manifest."""
        started = time.perf_counter()
        record = self._registry.manifests.get(repository, reference)
        report = ScanReport(
            repository=repository,
            reference=reference,
            digest=record.digest,
            media_type=record.media_type,
            scanned_at=now(),
        )
        doc = _json(record.content)
        if record.media_type in mt.INDEXES:
            for child in doc.get("manifests") or []:
                if isinstance(child, dict):
                    report.images.append(self._scan_child(repository, child, known, analyzed))
            if not any(image.status == "scanned" for image in report.images):
                report.status = "not-an-image"
                report.message = "the index names no container image"
        else:
            analysis = self.analyze_image(repository, record.digest, doc, None)
            if analyzed is not None and analysis.inventory is not None:
                analyzed(analysis, _descriptor(record))
            image = analysis.result
            report.images.append(image)
            if image.status != "scanned":
                report.status = image.status
                report.message = image.message
        report.duration_seconds = round(time.perf_counter() - started, 3)
        return report

    def _scan_child(
        self,
        repository: str,
        child: dict[str, Any],
        known: KnownResult | None,
        analyzed: AnalysisHook | None,
    ) -> ImageResult:
        digest = str(child.get("digest"))
        platform = _platform(child.get("platform"))
        annotations = child.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest" or (
            platform is not None and platform.startswith("unknown/")
        ):
            return ImageResult(digest, platform, "skipped", "attestation, not a platform image")
        if child.get("mediaType") not in mt.IMAGE_MANIFESTS:
            return ImageResult(
                digest, platform, "skipped", f"{child.get('mediaType')} is not an image manifest"
            )
        reused = known(digest) if known is not None else None
        if reused is not None:
            return replace(reused, platform=platform or reused.platform)
        record = self._registry.manifests.get(repository, digest)
        analysis = self.analyze_image(repository, record.digest, _json(record.content), platform)
        if analyzed is not None and analysis.inventory is not None:
            analyzed(analysis, _descriptor(record))
        return analysis.result

    def analyze_image(
        self, repository: str, digest: str, doc: dict[str, Any], platform: str | None
    ) -> ImageAnalysis:
        """Inventory and match one image manifest (``doc``, stored as ``digest``), storing
        nothing: the result as a scan reports it, with the inventory and findings behind it
        (both empty for an artifact that is not an image)."""
        config = doc.get("config") or {}
        config_type = config.get("mediaType") if isinstance(config, dict) else None
        layers = [d for d in doc.get("layers") or [] if isinstance(d, dict)]
        artifact_type = doc.get("artifactType")
        fs_layers = [d for d in layers if is_layer_type(str(d.get("mediaType", "")))]
        if config_type not in IMAGE_CONFIGS or (layers and not fs_layers):
            kind = artifact_type or config_type or "unknown"
            return ImageAnalysis(
                ImageResult(
                    digest,
                    platform,
                    "not-an-image",
                    f"not a container image (artifact type {kind}): nothing to scan",
                )
            )
        warnings: Counter[str] = Counter()
        if len(fs_layers) != len(layers):
            warnings["non-layer-blob"] += len(layers) - len(fs_layers)
        if platform is None:
            platform = self._config_platform(repository, config)
        sources = []
        for descriptor in fs_layers:
            if descriptor.get("urls"):
                warnings["foreign-layer"] += 1
                continue
            sources.append(self._layer_source(repository, descriptor))
        inventory = build_inventory(sources, limits=self._limits)
        warnings.update(inventory.warnings)
        findings = sort_by_severity(self._advisories.findings(inventory.packages))
        severity = Counter(f.severity for f in findings)
        os_info = inventory.os
        result = ImageResult(
            digest=digest,
            platform=platform,
            os=None
            if os_info is None
            else {
                "id": os_info.id,
                "version_id": os_info.version_id,
                "pretty_name": os_info.pretty_name,
            },
            packages=dict(sorted(inventory.counts.items())),
            package_total=len(inventory.packages),
            findings=[finding_dict(f) for f in findings],
            severity_counts={s: severity.get(s, 0) for s in SEVERITIES},
            warnings=dict(sorted(warnings.items())),
            layers=len(sources),
        )
        return ImageAnalysis(result, inventory, findings)

    def _layer_source(self, repository: str, descriptor: dict[str, Any]) -> LayerSource:
        digest = str(descriptor["digest"])
        blob = self._registry.blobs.get(repository, digest)
        return LayerSource(
            digest, str(descriptor["mediaType"]), lambda: chunk_stream(blob.stream())
        )

    def _config_platform(self, repository: str, config: dict[str, Any]) -> str | None:
        """os/architecture[/variant] from the image config; None when it cannot be read."""
        try:
            if int(config.get("size", 0)) > _CONFIG_MAX:
                return None
            blob = self._registry.blobs.get(repository, str(config["digest"]))
            doc = _json(b"".join(blob.stream()))
        except Exception:  # the platform is a nicety; the scan goes on without it
            return None
        return _platform(doc)


def _descriptor(record: ManifestRecord) -> dict[str, Any]:
    return {"mediaType": record.media_type, "digest": record.digest, "size": len(record.content)}


def _platform(raw: Any) -> str | None:
    if not isinstance(raw, dict) or not raw.get("os") or not raw.get("architecture"):
        return None
    parts = [str(raw["os"]), str(raw["architecture"])]
    if raw.get("variant"):
        parts.append(str(raw["variant"]))
    return "/".join(parts)


def _json(content: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(content)
    except (ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}

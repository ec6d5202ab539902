"""What changes between two images: layers, packages and known vulnerabilities.

    diff = diff_images(registry, AdvisoryStore(engine), ("team/app", "1.0"), ("team/app", "1.1"))

Both images are inventoried and matched against the advisory database as `ScanService`
does (nothing is stored). The diff reads from the *left* image (``from``, the one running)
to the *right* one (``to``, the release or rollback target):

- layers, by digest: added (only on the right), removed (only on the left), and how many
  both share;
- packages, keyed by (ecosystem, name): added, removed, upgraded, downgraded (in the
  ecosystem's own version order: dpkg, apk, PEP 440, SemVer...) and ``changed`` when the
  versions differ but cannot be ordered. A key may have several versions in one image (a
  Python package installed in two site-packages): its versions are compared as sets, and
  the change is an upgrade when the highest version rose, a downgrade when it fell, else
  ``changed``; such entries carry a ``note``. An image moving to another distribution
  release (Debian:12 to Debian:13) shows its distribution packages as removed and added,
  since advisories are per release too;
- vulnerabilities, keyed by (advisory, ecosystem, package): fixed (on the left only) and
  introduced (on the right only).

An index is diffed on one platform both sides have: the one asked for, else linux/amd64
when both have it, else the first platform they share; ``ImageDiff.platform`` and
``notes`` say which.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cargohold import mediatypes as mt
from cargohold.core.registry import Registry
from cargohold.scan.service import (
    ImageAnalysis,
    ScanService,
    _json,
    _platform,
    is_layer_type,
    sort_by_severity,
)
from cargohold.vulndb.matching import Finding
from cargohold.vulndb.store import AdvisoryStore
from cargohold.vulndb.versions import VersionError, ecosystem_ordering

DEFAULT_PLATFORM = "linux/amd64"


class DiffError(ValueError):
    """The two images cannot be compared (no common platform, not container images)."""


@dataclass
class Side:
    """One of the two images compared: what was asked, and the image manifest used."""

    repository: str
    reference: str
    digest: str  # the manifest the reference names (an index, for a multi-platform image)
    image_digest: str  # the image manifest compared
    platform: str | None
    os: dict[str, Any] | None
    package_total: int
    vulnerability_total: int


@dataclass
class PackageChange:
    ecosystem: str
    name: str
    change: str  # added | removed | upgraded | downgraded | changed
    from_versions: list[str]
    to_versions: list[str]
    note: str | None = None


@dataclass
class ImageDiff:
    left: Side
    right: Side
    platform: str | None
    notes: list[str] = field(default_factory=list)
    layers_added: list[str] = field(default_factory=list)
    layers_removed: list[str] = field(default_factory=list)
    layers_common: int = 0
    packages: list[PackageChange] = field(default_factory=list)
    packages_unchanged: int = 0
    vulnerabilities_fixed: list[dict[str, Any]] = field(default_factory=list)
    vulnerabilities_introduced: list[dict[str, Any]] = field(default_factory=list)
    vulnerabilities_unchanged: int = 0

    def packages_by_change(self, change: str) -> list[PackageChange]:
        return [p for p in self.packages if p.change == change]

    def to_dict(self) -> dict[str, Any]:
        def package(p: PackageChange) -> dict[str, Any]:
            data = asdict(p)
            data.pop("change")
            data["from"] = data.pop("from_versions")
            data["to"] = data.pop("to_versions")
            return data

        return {
            "from": asdict(self.left),
            "to": asdict(self.right),
            "platform": self.platform,
            "notes": list(self.notes),
            "layers": {
                "added": list(self.layers_added),
                "removed": list(self.layers_removed),
                "common": self.layers_common,
            },
            "packages": {
                **{
                    change: [package(p) for p in self.packages_by_change(change)]
                    for change in ("upgraded", "downgraded", "changed", "added", "removed")
                },
                "unchanged": self.packages_unchanged,
            },
            "vulnerabilities": {
                "fixed": list(self.vulnerabilities_fixed),
                "introduced": list(self.vulnerabilities_introduced),
                "unchanged": self.vulnerabilities_unchanged,
            },
        }


@dataclass
class _Resolved:
    repository: str
    reference: str
    digest: str
    image_digest: str
    doc: dict[str, Any]
    platform: str | None


def _children(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(platform, digest) of the platform images of an index, attestations left out."""
    out = []
    for child in doc.get("manifests") or []:
        if not isinstance(child, dict) or child.get("mediaType") not in mt.IMAGE_MANIFESTS:
            continue
        annotations = child.get("annotations") or {}
        platform = _platform(child.get("platform"))
        if platform is None or platform.startswith("unknown/"):
            continue
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        out.append((platform, str(child.get("digest"))))
    return out


def _matches(wanted: str, platform: str | None) -> bool:
    """linux/arm64 matches linux/arm64/v8; linux/arm/v7 matches only itself."""
    if platform is None:
        return False
    return platform == wanted or (wanted.count("/") == 1 and platform.startswith(wanted + "/"))


def _pick(children: list[tuple[str, str]], wanted: str) -> tuple[str, str] | None:
    return next((c for c in children if _matches(wanted, c[0])), None)


def _config_platform(registry: Registry, repository: str, doc: dict[str, Any]) -> str | None:
    config = doc.get("config") or {}
    try:
        blob = registry.blobs.get(repository, str(config["digest"]))
        return _platform(_json(b"".join(blob.stream())))
    except Exception:  # an unreadable config: the platform is unknown
        return None


def _resolve(
    registry: Registry,
    left: tuple[str, str],
    right: tuple[str, str],
    platform: str | None,
) -> tuple[_Resolved, _Resolved, str | None, list[str]]:
    notes: list[str] = []
    records = [registry.manifests.get(repo, ref) for repo, ref in (left, right)]
    docs = [_json(r.content) for r in records]
    is_index = [r.media_type in mt.INDEXES for r in records]
    children = [_children(d) if i else [] for d, i in zip(docs, is_index, strict=True)]
    own = [
        None if i else _config_platform(registry, repo, d)
        for (repo, _), d, i in zip((left, right), docs, is_index, strict=True)
    ]
    chosen = platform
    if chosen is None and any(is_index):
        # The platforms each side offers: an index's children, a manifest's own.
        offered = [
            [p for p, _ in c] if i else ([o] if o else [])
            for c, i, o in zip(children, is_index, own, strict=True)
        ]
        common = [
            p for p in offered[0] if any(_matches(p, q) or _matches(q, p) for q in offered[1])
        ]
        if not common:
            on_left, on_right = (", ".join(o) or "unknown" for o in offered)
            raise DiffError(
                f"the two images have no platform in common (left: {on_left}; right: {on_right})"
            )
        chosen = (
            DEFAULT_PLATFORM if any(_matches(DEFAULT_PLATFORM, p) for p in common) else common[0]
        )
        notes.append(
            f"multi-platform image: comparing the {chosen} images (choose with --platform)"
        )
    resolved = []
    for (repo, ref), record, doc, index, kids, mine in zip(
        (left, right), records, docs, is_index, children, own, strict=True
    ):
        if index:
            assert chosen is not None
            pick = _pick(kids, chosen)
            if pick is None:
                raise DiffError(
                    f"{repo}:{ref} has no {chosen} image (it has "
                    f"{', '.join(p for p, _ in kids) or 'none'})"
                )
            child = registry.manifests.get(repo, pick[1])
            resolved.append(
                _Resolved(repo, ref, record.digest, child.digest, _json(child.content), pick[0])
            )
        else:
            if chosen is not None and mine is not None and not _matches(chosen, mine):
                notes.append(f"{repo}:{ref} is a single {mine} image, not {chosen}: compared as is")
            resolved.append(_Resolved(repo, ref, record.digest, record.digest, doc, mine))
    return resolved[0], resolved[1], chosen, notes


def _layers(doc: dict[str, Any]) -> list[str]:
    return [
        str(d.get("digest"))
        for d in doc.get("layers") or []
        if isinstance(d, dict) and is_layer_type(str(d.get("mediaType", "")))
    ]


def _versions(analysis: ImageAnalysis) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    if analysis.inventory is not None:
        for p in analysis.inventory.packages:
            out.setdefault((p.ecosystem, p.name), set()).add(p.version)
    return out


def _sorted(ecosystem: str, versions: set[str]) -> list[str]:
    ordering = ecosystem_ordering(ecosystem)
    if ordering is not None:
        try:
            return sorted(versions, key=ordering.key)
        except (VersionError, TypeError):
            pass
    return sorted(versions)


def _compare(ecosystem: str, old: set[str], new: set[str]) -> tuple[str, str | None]:
    """upgraded / downgraded / changed, with a note for several versions of one package."""
    note = None
    if len(old) > 1 or len(new) > 1:
        note = (
            f"several versions installed ({len(old)} before, {len(new)} after): "
            "compared by the highest"
        )
    ordering = ecosystem_ordering(ecosystem)
    if ordering is None:
        return "changed", note or f"{ecosystem} versions are not ordered by cargohold"
    try:
        high_old = max(ordering.key(v) for v in old)
        high_new = max(ordering.key(v) for v in new)
    except (VersionError, TypeError):
        return "changed", note or "a version could not be read in the ecosystem's scheme"
    if high_new > high_old:
        return "upgraded", note
    if high_new < high_old:
        return "downgraded", note
    return "changed", note or "the versions differ in spelling only"


def _vulnerabilities(findings: list[Finding]) -> dict[tuple[str, str, str], Finding]:
    out: dict[tuple[str, str, str], Finding] = {}
    for f in sort_by_severity(findings):
        out.setdefault((f.advisory_id, f.ecosystem, f.package), f)
    return out


def _side(resolved: _Resolved, analysis: ImageAnalysis) -> Side:
    result = analysis.result
    return Side(
        repository=resolved.repository,
        reference=resolved.reference,
        digest=resolved.digest,
        image_digest=resolved.image_digest,
        platform=resolved.platform or result.platform,
        os=result.os,
        package_total=result.package_total,
        vulnerability_total=len(_vulnerabilities(analysis.findings)),
    )


def diff_images(
    registry: Registry,
    advisories: AdvisoryStore,
    left: tuple[str, str],
    right: tuple[str, str],
    platform: str | None = None,
) -> ImageDiff:
    """The changes from ``left`` to ``right``, each (repository, tag or digest).

    Raises the registry's errors for an unknown repository or manifest, `DiffError` when
    the images cannot be compared."""
    a, b, chosen, notes = _resolve(registry, left, right, platform)
    service = ScanService(registry, advisories)
    analyses = []
    for side in (a, b):
        analysis = service.analyze_image(
            side.repository, side.image_digest, side.doc, side.platform
        )
        if analysis.result.status != "scanned":
            raise DiffError(
                f"{side.repository}:{side.reference}: {analysis.result.message or 'not an image'}"
            )
        analyses.append(analysis)
    before, after = analyses
    diff = ImageDiff(_side(a, before), _side(b, after), chosen, notes)

    old_layers, new_layers = _layers(a.doc), _layers(b.doc)
    diff.layers_added = [d for d in new_layers if d not in set(old_layers)]
    diff.layers_removed = [d for d in old_layers if d not in set(new_layers)]
    diff.layers_common = len(set(old_layers) & set(new_layers))

    old_pkgs, new_pkgs = _versions(before), _versions(after)
    for key in sorted(old_pkgs.keys() | new_pkgs.keys(), key=lambda k: (k[0], k[1].lower(), k[1])):
        ecosystem, name = key
        old, new = old_pkgs.get(key, set()), new_pkgs.get(key, set())
        if old == new:
            diff.packages_unchanged += 1
            continue
        if not old:
            change, note = "added", None
        elif not new:
            change, note = "removed", None
        else:
            change, note = _compare(ecosystem, old, new)
        diff.packages.append(
            PackageChange(
                ecosystem, name, change, _sorted(ecosystem, old), _sorted(ecosystem, new), note
            )
        )

    old_vulns, new_vulns = _vulnerabilities(before.findings), _vulnerabilities(after.findings)
    diff.vulnerabilities_fixed = [f.to_dict() for k, f in old_vulns.items() if k not in new_vulns]
    diff.vulnerabilities_introduced = [
        f.to_dict() for k, f in new_vulns.items() if k not in old_vulns
    ]
    diff.vulnerabilities_unchanged = len(old_vulns.keys() & new_vulns.keys())
    return diff

"""Promotion between environments: make an image of one repository appear in another
(e.g. `team/app:1.4` → `prod/app:1.4`) without copying a byte, only if the target
namespace's gates pass.

    result = PromotionService(registry, engine).promote("team/app", "1.4", "prod/app", None, actor)

The image's manifest, every platform of an index, their referrers (signatures, SBOMs,
attestations) and cosign's ``.sig`` tags are linked into the target repository; the blobs
are shared, not copied. The tag's move is recorded in the tag history with ``via:
promote`` (the caller writes the audit log entry).

Gates (``SignatureStore.set_gates`` on the target namespace):
- ``max_severity``: the image was scanned and has no finding at or above it;
- ``require_signature``: a cosign signature by one of the target namespace's trusted keys;
- ``require_immutable``: an immutable-tag rule protects the target tag, so what was
  promoted stays.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine

from cargohold.core.registry import Registry
from cargohold.core.versioning import TagChange, namespace_of
from cargohold.digest import is_digest_like
from cargohold.errors import Denied, TagInvalid
from cargohold.reference import validate_name, validate_tag
from cargohold.scan.results import ScanResultStore
from cargohold.signatures.cosign import CosignVerifier, signature_tag
from cargohold.signatures.store import SEVERITIES, Gates, SignatureStore
from cargohold.storage.meta import ChangeOrigin

MAX_REFERRER_DEPTH = 3  # a signature of an SBOM of an image, and no deeper


class PromotionRefused(Denied):
    """A gate of the target namespace refused the image."""


@dataclass
class GateResult:
    gate: str
    passed: bool
    message: str


@dataclass
class Promotion:
    source: str
    target: str
    tag: str
    digest: str
    manifests_linked: int
    changed: bool
    gates: list[GateResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PromotionService:
    def __init__(self, registry: Registry, engine: Engine) -> None:
        self._registry = registry
        self._store = SignatureStore(engine)
        self._results = ScanResultStore(engine)

    def promote(
        self,
        source: str,
        reference: str,
        target: str,
        tag: str | None,
        actor: str | None,
    ) -> Promotion:
        """Promote ``source@reference`` (a tag or digest) to ``target:tag`` (by default the
        source's tag). Raises PromotionRefused naming every failed gate."""
        validate_name(source)
        validate_name(target)
        if tag is None:
            if is_digest_like(reference):
                raise TagInvalid("promoting by digest needs a target tag (TARGET:TAG)")
            tag = reference
        validate_tag(tag)
        record = self._registry.manifests.get(source, reference)
        gates = self._store.gates(namespace_of(target))
        results = self.evaluate(gates, source, record.digest, target, tag)
        failed = [r for r in results if not r.passed]
        if failed:
            raise PromotionRefused(
                f"promotion of {source}@{record.digest} to {target}:{tag} refused by the gates "
                f"of namespace {namespace_of(target)}: "
                + "; ".join(f"{r.gate}: {r.message}" for r in failed),
                detail={"gates": [asdict(r) for r in results]},
            )
        linked = self._link(source, target, record.digest)
        change: TagChange = self._registry.tags.tag(
            target, tag, record.digest, ChangeOrigin(actor, "promote")
        )
        return Promotion(
            source=f"{source}:{reference}" if not is_digest_like(reference) else source,
            target=target,
            tag=tag,
            digest=record.digest,
            manifests_linked=linked,
            changed=change.event is not None,
            gates=results,
        )

    def evaluate(
        self, gates: Gates | None, source: str, digest: str, target: str, tag: str
    ) -> list[GateResult]:
        """Every gate of the target namespace, passed or not, with why."""
        if gates is None:
            return []
        results = []
        if gates.max_severity is not None:
            results.append(self._severity_gate(gates.max_severity, source, digest))
        if gates.require_signature:
            keys = [k.trusted() for k in self._store.keys(gates.namespace)]
            verdict = CosignVerifier(self._registry).verify(source, digest, keys)
            results.append(
                GateResult(
                    "signature",
                    verdict.verified,
                    verdict.explain()
                    if verdict.verified or keys
                    else f"namespace {gates.namespace} trusts no keys yet: cargohold keys add",
                )
            )
        if gates.require_immutable:
            rules = self._registry.tags.rules(gates.namespace)
            protecting = [r for r in rules if r.applies_to(target, tag)]
            results.append(
                GateResult(
                    "immutable",
                    bool(protecting),
                    f"protected by {protecting[0].describe()}"
                    if protecting
                    else f"no immutable-tag rule protects {target}:{tag}: add one, e.g. "
                    f"cargohold tag immutable add {gates.namespace} '{tag}'",
                )
            )
        return results

    def _severity_gate(self, max_severity: str, source: str, digest: str) -> GateResult:
        stored = self._results.latest(source, digest)
        if stored is None:
            return GateResult(
                "vulnerabilities",
                False,
                f"{source}@{digest} has not been scanned: wait for the scanner or run "
                f"cargohold scan run {source}@{digest}",
            )
        blocking = SEVERITIES[: SEVERITIES.index(max_severity) + 1]
        findings = [f for f in stored.report.findings if f.get("severity") in blocking]
        if not findings:
            return GateResult("vulnerabilities", True, f"no finding at or above {max_severity}")
        worst = sorted(findings, key=lambda f: SEVERITIES.index(f["severity"]))[:3]
        named = ", ".join(
            f"{(f.get('aliases') or [f['advisory']])[0]} ({f['severity']}, {f['package']} "
            f"{f['installed_version']})"
            for f in worst
        )
        return GateResult(
            "vulnerabilities",
            False,
            f"{len(findings)} finding(s) at or above {max_severity}, e.g. {named}",
        )

    def _link(self, source: str, target: str, digest: str) -> int:
        """Link the image and everything that goes with it into ``target``; how many
        manifests the target did not have."""
        meta = self._registry.meta
        closure = self._closure(source, digest, 0)
        missing = {d for d, _ in closure if meta.get_manifest(target, d) is None}
        for member, sig_tag in closure:
            self._registry.tags.link_manifest(source, target, member)
            # The target's own signature manifest, if it has one, is left as it is.
            if sig_tag is not None and meta.tag_record(target, sig_tag) is None:
                self._registry.tags.tag(target, sig_tag, member, ChangeOrigin(None, "promote"))
        return len(missing)

    def _closure(self, source: str, digest: str, depth: int) -> list[tuple[str, str | None]]:
        """The manifest, its platforms, and (to MAX_REFERRER_DEPTH) the referrers and
        cosign signature manifests of each, as (digest, signature tag to set or None)."""
        meta = self._registry.meta
        record = meta.get_manifest(source, digest)
        children = [] if record is None else _children(record.content)
        members: list[tuple[str, str | None]] = [(digest, None)]
        members += [(child, None) for child in children]
        if depth >= MAX_REFERRER_DEPTH:
            return members
        for subject in [digest, *children]:
            for referrer in meta.list_referrers(source, subject, None):
                members += self._closure(source, referrer.digest, depth + 1)
            sig = meta.tag_record(source, signature_tag(subject))
            if sig is not None:
                signature = self._closure(source, sig.digest, depth + 1)
                members += [(sig.digest, sig.name), *signature[1:]]
        return members


def _children(content: bytes) -> list[str]:
    try:
        doc = json.loads(content)
    except (ValueError, RecursionError):
        return []
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    return [str(m["digest"]) for m in manifests or [] if isinstance(m, dict) and "digest" in m]

"""The scan pull policy: evaluation (pure), the policy store, and the gate on real stores
with images pushed and scanned in process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from cargohold.core.registry import Registry
from cargohold.errors import Denied, NameInvalid, ScanPolicyViolation
from cargohold.scan.policy import (
    POLICY_CACHE_SECONDS,
    AllowEntry,
    PullPolicyGate,
    ScanPolicy,
    ScanPolicyInvalid,
    ScanPolicyStore,
    evaluate,
    parse_expiry,
)
from cargohold.scan.results import ScanResultStore, StoredScan
from cargohold.scan.service import ImageResult, ScanReport, ScanService
from cargohold.stores import Stores
from cargohold.vulndb.osv import parse_record
from cargohold.vulndb.store import AdvisoryStore

from .layerkit import OCI_LAYER_GZIP, Layer
from .test_service import (
    ADVISORIES,
    DEBIAN_OS_RELEASE,
    OCI_INDEX,
    OCI_MANIFEST,
    app_layers,
    debian_layer,
    push_blob,
    push_image,
    push_manifest,
)

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def finding(advisory: str, severity: str, package: str = "pkg", **extra: Any) -> dict[str, Any]:
    return {
        "advisory": advisory,
        "aliases": extra.pop("aliases", []),
        "severity": severity,
        "package": package,
        "installed_version": extra.pop("installed_version", "1.0"),
        "fixed_versions": extra.pop("fixed_versions", ["1.1"]),
        "link": None,
        "summary": "",
    }


def stored(*findings: dict[str, Any], platforms: int = 1, status: str = "scanned") -> StoredScan:
    images = [
        ImageResult(digest=f"sha256:{i:064x}", platform=f"linux/p{i}", findings=list(findings))
        for i in range(platforms)
    ]
    report = ScanReport(
        repository="team/app",
        reference="1.0",
        digest="sha256:" + "f" * 64,
        media_type=OCI_MANIFEST,
        scanned_at=NOW,
        status=status,
        images=images,
    )
    return StoredScan(1, "team/app", report.digest, NOW, None, None, report)


def policy(severity: str = "high", allow_unscanned: bool = False) -> ScanPolicy:
    return ScanPolicy("team", severity, allow_unscanned, NOW, "admin")


def allow(vulnerability: str, expires_at: datetime | None = None) -> AllowEntry:
    return AllowEntry("team", vulnerability, expires_at, None, NOW, "admin")


FINDINGS = [
    finding("GHSA-low1", "low", aliases=["CVE-2030-0004"]),
    finding("GHSA-unk1", "unknown"),
    finding("GHSA-med1", "medium", aliases=["CVE-2030-0003"]),
    finding("GHSA-hig1", "high", "openssl", aliases=["CVE-2030-0002"]),
    finding("GHSA-cri1", "critical", "zlib", aliases=["CVE-2030-0001"]),
]


# -- evaluation (pure)


def test_threshold_counts_findings_at_or_above_it_worst_first() -> None:
    scan = stored(*FINDINGS)
    verdict = evaluate(policy("high"), [], scan, NOW)
    assert not verdict.allowed and verdict.reason == "violations"
    assert [f["advisory"] for f in verdict.violations] == ["GHSA-cri1", "GHSA-hig1"]
    assert verdict.threshold == "high" and verdict.scanned_at == NOW
    assert [f["advisory"] for f in evaluate(policy("critical"), [], scan, NOW).violations] == [
        "GHSA-cri1"
    ]
    medium = evaluate(policy("medium"), [], scan, NOW)
    assert [f["advisory"] for f in medium.violations] == ["GHSA-cri1", "GHSA-hig1", "GHSA-med1"]
    # "unknown" counts at the threshold "low" only.
    low = evaluate(policy("low"), [], scan, NOW)
    assert [f["advisory"] for f in low.violations] == [
        "GHSA-cri1",
        "GHSA-hig1",
        "GHSA-med1",
        "GHSA-low1",
        "GHSA-unk1",
    ]
    clean = evaluate(policy("high"), [], stored(FINDINGS[0], FINDINGS[2]), NOW)
    assert clean.allowed and clean.reason == "clean" and clean.violations == ()


def test_platforms_repeating_a_finding_name_it_once() -> None:
    verdict = evaluate(policy("high"), [], stored(FINDINGS[4], platforms=3), NOW)
    assert [f["advisory"] for f in verdict.violations] == ["GHSA-cri1"]


def test_allowlist_matches_advisory_or_alias_in_any_case_until_it_expires() -> None:
    scan = stored(*FINDINGS)
    by_alias = evaluate(policy("high"), [allow("cve-2030-0001")], scan, NOW)
    assert [f["advisory"] for f in by_alias.violations] == ["GHSA-hig1"]
    assert [f["advisory"] for f in by_alias.excepted] == ["GHSA-cri1"]
    both = [allow("CVE-2030-0001"), allow("ghsa-HIG1", NOW + timedelta(seconds=1))]
    verdict = evaluate(policy("high"), both, scan, NOW)
    assert verdict.allowed and verdict.reason == "clean"
    assert [f["advisory"] for f in verdict.excepted] == ["GHSA-cri1", "GHSA-hig1"]
    # At its expiry an entry excepts nothing any more.
    expired = evaluate(policy("high"), both, scan, NOW + timedelta(seconds=1))
    assert [f["advisory"] for f in expired.violations] == ["GHSA-hig1"]
    assert both[1].expired(NOW + timedelta(seconds=1)) and not both[1].expired(NOW)
    assert not both[0].expired(NOW + timedelta(days=10_000))
    # A prefix or another ID is not a match.
    assert not evaluate(policy("high"), [allow("CVE-2030-000")], scan, NOW).allowed


def test_unscanned_and_not_an_image_and_no_policy() -> None:
    denied = evaluate(policy("high", allow_unscanned=False), [], None, NOW)
    assert (denied.allowed, denied.reason) == (False, "unscanned")
    allowed = evaluate(policy("high", allow_unscanned=True), [], None, NOW)
    assert (allowed.allowed, allowed.reason) == (True, "unscanned-allowed")
    artifact = evaluate(policy("low"), [], stored(status="not-an-image"), NOW)
    assert (artifact.allowed, artifact.reason) == (True, "not-an-image")
    assert evaluate(None, [], stored(*FINDINGS), NOW).allowed
    assert evaluate(None, [], None, NOW).reason == "no-policy"


def test_parse_expiry() -> None:
    assert parse_expiry("2030-01-31") == datetime(2030, 1, 31, tzinfo=UTC)
    assert parse_expiry("2030-01-31T12:30:00Z") == datetime(2030, 1, 31, 12, 30, tzinfo=UTC)
    assert parse_expiry("2030-01-31T12:30:00+02:00") == datetime(2030, 1, 31, 10, 30, tzinfo=UTC)
    with pytest.raises(ScanPolicyInvalid, match="YYYY-MM-DD"):
        parse_expiry("next tuesday")


# -- the store


def test_store_policies_and_allowlist(stores: Stores) -> None:
    store = ScanPolicyStore(stores.engine)
    assert store.get("team") is None
    made = store.set("team", "HIGH", False, "alice", now=NOW)
    assert made == ScanPolicy("team", "high", False, NOW, "alice")
    assert store.get("team") == made
    replaced = store.set("team", "critical", True, "bob")
    assert store.get("team") == replaced and replaced.allow_unscanned
    assert store.get("other") is None
    assert store.remove("team") and store.get("team") is None and not store.remove("team")

    with pytest.raises(ScanPolicyInvalid, match="critical, high, medium, low"):
        store.set("team", "unknown", False, "alice")
    with pytest.raises(NameInvalid):
        store.set("team/app", "high", False, "alice")
    with pytest.raises(ScanPolicyInvalid, match="vulnerability ID"):
        store.allow("team", "CVE 1", None, None, "alice")
    with pytest.raises(ScanPolicyInvalid, match="has passed"):
        store.allow("team", "CVE-1", datetime.now(UTC) - timedelta(days=1), None, "alice")

    later = datetime.now(UTC) + timedelta(days=30)
    first = store.allow("team", "cve-2030-0001", None, "vendor fix pending", "alice")
    store.allow("team", "GHSA-abcd-efgh-ijkl", later, None, "alice")
    assert first.expires_at is None and first.reason == "vendor fix pending"
    # The same ID in another case replaces the entry.
    store.allow("team", "CVE-2030-0001", later, "until the rebuild", "bob")
    entries = store.allowlist("team")
    assert [(e.vulnerability, e.reason, e.created_by) for e in entries] == [
        ("CVE-2030-0001", "until the rebuild", "bob"),
        ("GHSA-abcd-efgh-ijkl", None, "alice"),
    ]
    assert all(abs((e.expires_at or later) - later) < timedelta(seconds=1) for e in entries)
    assert store.allowlist("other") == []
    removed = store.disallow("team", "ghsa-ABCD-efgh-ijkl")
    assert removed is not None and removed.vulnerability == "GHSA-abcd-efgh-ijkl"
    assert store.disallow("team", "GHSA-abcd-efgh-ijkl") is None
    assert [e.vulnerability for e in store.allowlist("team")] == ["CVE-2030-0001"]


# -- the gate on real stores


def scan(registry: Registry, stores: Stores, repository: str, reference: str) -> ScanReport:
    results = ScanResultStore(stores.engine)
    report = ScanService(registry, AdvisoryStore(stores.engine)).scan(repository, reference)
    report.advisory_db = results.advisory_db_version()
    results.save(report)
    return report


def clean_layer() -> Layer:
    status = "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\n"
    return (
        Layer()
        .dir("etc")
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", status)
    )


class Clock:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def manifest_of(registry: Registry, repository: str, digest: str) -> tuple[str, str | None, Any]:
    record = registry.manifests.get(repository, digest)
    return record.media_type, record.artifact_type, record.subject


@pytest.fixture
def advisories(stores: Stores) -> None:
    AdvisoryStore(stores.engine).save([(parse_record(r), json.dumps(r)) for r in ADVISORIES])


def test_gate_refuses_vulnerable_images_and_names_the_worst_findings(
    registry: Registry, stores: Stores, advisories: None
) -> None:
    vulnerable = push_image(registry, "team/app", "1.0", app_layers())
    clean = push_image(registry, "team/app", "clean", [(clean_layer().gzip(), OCI_LAYER_GZIP)])
    unscanned = push_image(registry, "team/app", "new", [(debian_layer().gzip(), OCI_LAYER_GZIP)])
    scan(registry, stores, "team/app", "1.0")
    assert scan(registry, stores, "team/app", "clean").findings == []
    store = ScanPolicyStore(stores.engine)
    store.set("team", "high", False, "alice")
    gate = PullPolicyGate(store, ScanResultStore(stores.engine))

    with pytest.raises(ScanPolicyViolation) as refused:
        gate.check("team/app", vulnerable, *manifest_of(registry, "team/app", vulnerable))
    assert isinstance(refused.value, Denied)
    message = refused.value.message
    assert f"team/app@{vulnerable}" in message and "namespace team" in message
    assert "at or above the high severity" in message
    # The three worst, worst first: requests (critical), then libssl3 and openssl (high).
    assert "TEST-PYPI-REQ1 (CVE-2099-REQ1) in requests 2.19.0 [critical; fixed in 2.20.0]" in (
        message
    )
    assert "TEST-DEB12-SSL1 (CVE-2099-SSL1) in openssl 3.0.11-1~deb12u2 [high; fixed in " in (
        message
    )
    assert message.index("requests") < message.index("libssl3") < message.index("openssl 3")
    assert "cargohold scan allow team CVE-2099-REQ1 --expires YYYY-MM-DD" in message
    detail = refused.value.detail
    assert detail["namespace"] == "team" and detail["min_severity"] == "high"
    assert [f["package"] for f in detail["findings"]] == ["requests", "libssl3", "openssl"]

    gate.check("team/app", clean, *manifest_of(registry, "team/app", clean))

    with pytest.raises(ScanPolicyViolation) as not_scanned:
        gate.check("team/app", unscanned, *manifest_of(registry, "team/app", unscanned))
    assert "has not been scanned for vulnerabilities yet" in not_scanned.value.message
    assert f"cargohold scan run team/app@{unscanned}" in not_scanned.value.message

    # Exceptions: every finding at or above high, by advisory ID or alias.
    store.allow("team", "cve-2099-req1", None, None, "alice")
    store.allow("team", "TEST-DEB12-SSL1", None, None, "alice")
    store.set("team", "high", True, "alice")
    gate.invalidate("team")
    gate.check("team/app", vulnerable, *manifest_of(registry, "team/app", vulnerable))
    gate.check("team/app", unscanned, *manifest_of(registry, "team/app", unscanned))
    # Other namespaces have no policy.
    other = push_image(registry, "other/app", "1.0", app_layers())
    gate.check("other/app", other, *manifest_of(registry, "other/app", other))


def test_artifacts_always_pass_and_index_platforms_follow_the_index_scan(
    registry: Registry, stores: Stores, advisories: None
) -> None:
    image = push_image(registry, "team/multi", None, app_layers())
    size = len(registry.manifests.get("team/multi", image).content)
    signature = push_manifest(
        registry,
        "team/multi",
        None,
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "config": push_blob(registry, "team/multi", b"{}", "application/vnd.oci.empty.v1+json"),
            "layers": [push_blob(registry, "team/multi", b"{}", "application/octet-stream")],
            "subject": {"mediaType": OCI_MANIFEST, "digest": image, "size": size},
        },
    )
    index = push_manifest(
        registry,
        "team/multi",
        "1.0",
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": image,
                    "size": size,
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        },
    )
    store = ScanPolicyStore(stores.engine)
    store.set("team", "critical", False, "alice")
    gate = PullPolicyGate(store, ScanResultStore(stores.engine))
    # Nothing scanned: the signature passes, the index and its image do not.
    gate.check("team/multi", signature, *manifest_of(registry, "team/multi", signature))
    for digest in (index, image):
        with pytest.raises(ScanPolicyViolation, match="not been scanned"):
            gate.check("team/multi", digest, *manifest_of(registry, "team/multi", digest))
    scan(registry, stores, "team/multi", "1.0")
    for digest in (index, image):
        with pytest.raises(ScanPolicyViolation, match="TEST-PYPI-REQ1"):
            gate.check("team/multi", digest, *manifest_of(registry, "team/multi", digest))
    # HEAD-like checks of artifacts by media type alone: a referrer is never judged.
    media_type, artifact_type, _ = manifest_of(registry, "team/multi", image)
    gate.check("team/multi", image, media_type, artifact_type, subject=index)
    store.allow("team", "CVE-2099-REQ1", None, None, "alice")
    gate.invalidate()
    for digest in (index, image):
        gate.check("team/multi", digest, *manifest_of(registry, "team/multi", digest))


def test_gate_caches_rules_for_the_ttl_and_skips_scans_without_a_policy(
    registry: Registry, stores: Stores, advisories: None
) -> None:
    digest = push_image(registry, "team/app", "1.0", app_layers())
    scan(registry, stores, "team/app", "1.0")
    media = manifest_of(registry, "team/app", digest)
    store = ScanPolicyStore(stores.engine)
    clock = Clock()
    gate = PullPolicyGate(store, ScanResultStore(stores.engine), clock=clock)
    assert POLICY_CACHE_SECONDS == 5.0

    queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        queries.append(statement)

    event.listen(stores.engine, "before_cursor_execute", count)
    try:
        gate.check("team/app", digest, *media)  # no policy: loaded once
        loaded = len(queries)
        assert loaded == 1 and gate.loads == 1
        for _ in range(50):
            gate.check("team/app", digest, *media)
        assert len(queries) == loaded, queries[loaded:]  # no query per pull

        store.set("team", "high", False, "alice")
        queries.clear()
        clock.value += POLICY_CACHE_SECONDS - 0.1
        gate.check("team/app", digest, *media)  # still the cached "no policy"
        assert queries == []
        clock.value += 0.2
        with pytest.raises(ScanPolicyViolation):
            gate.check("team/app", digest, *media)
        assert gate.loads == 2
        # With a policy: the rules come from the cache, only the scan result is read.
        queries.clear()
        with pytest.raises(ScanPolicyViolation):
            gate.check("team/app", digest, *media)
        assert len(queries) == 1 and "scan_results" in queries[0]

        store.allow("team", "CVE-2099-REQ1", None, None, "alice")
        store.allow("team", "CVE-2099-SSL1", None, None, "alice")
        with pytest.raises(ScanPolicyViolation):
            gate.check("team/app", digest, *media)  # the cached allow-list is empty
        clock.value += POLICY_CACHE_SECONDS
        gate.check("team/app", digest, *media)
        store.remove("team")
        gate.invalidate("team")
        gate.check("team/app", digest, *media)
    finally:
        event.remove(stores.engine, "before_cursor_execute", count)

"""/api/v1/namespaces/{ns}/scan-policy: permissions, validation, the allow-list, the audit
log, and what /v2 answers for an image the policy refuses."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from tests.api.oci import manifest_path, push_image

from cargohold.scan.policy import ScanPolicyStore

from .conftest import Api, Auth, expect
from .test_retention_api import audit_events
from .test_tags_api import crew, message, v2


def policy_path(ns: str, suffix: str = "") -> str:
    return f"/v1/namespaces/{ns}/scan-policy{suffix}"


def put_policy(api: Api, auth: Auth, ns: str, **body: Any) -> httpx.Response:
    return api.call("PUT", policy_path(ns), auth, json=body)


def add_entry(api: Api, auth: Auth, ns: str, **body: Any) -> httpx.Response:
    return api.call("POST", policy_path(ns, "/allowlist"), auth, json=body)


def test_only_namespace_admins_change_the_policy_and_everyone_who_sees_it_reads(
    api: Api,
) -> None:
    team = crew(api)
    ns = team.org
    expect(api.call("GET", policy_path(ns), team.reader), 404, "NAME_UNKNOWN")
    made = expect(put_policy(api, team.admin, ns, min_severity="high"), 200)
    assert (made["namespace"], made["min_severity"], made["allow_unscanned"]) == (ns, "high", True)
    assert made["updated_by"] == team.admin[0] and made["updated_at"]
    for who in (team.maintainer, team.writer, team.reader, team.outsider):
        resp = put_policy(api, who, ns, min_severity="low")
        expect(resp, 403, "DENIED")
        assert ns in message(resp)
        expect(api.call("DELETE", policy_path(ns), who), 403, "DENIED")
        expect(add_entry(api, who, ns, vulnerability="CVE-2030-1"), 403, "DENIED")
        expect(api.call("DELETE", policy_path(ns, "/allowlist/CVE-2030-1"), who), 403, "DENIED")
    # Someone else's namespace: being admin of one's own is not enough.
    other = api.add_org()
    expect(put_policy(api, team.admin, other, min_severity="high"), 403, "DENIED")
    expect(put_policy(api, api.admin, "no-such-ns", min_severity="high"), 404)
    for who in (team.admin, team.reader, api.admin):
        assert expect(api.call("GET", policy_path(ns), who), 200) == made
        assert expect(api.call("GET", policy_path(ns, "/allowlist"), who), 200) == {"entries": []}
    expect(api.call("GET", policy_path(ns), team.outsider), 404, "NAME_UNKNOWN")
    expect(api.call("GET", policy_path(ns, "/allowlist"), team.outsider), 404, "NAME_UNKNOWN")
    # Replacing; a registry admin may too.
    replaced = expect(
        put_policy(api, api.admin, ns, min_severity="critical", allow_unscanned=False), 200
    )
    assert (replaced["min_severity"], replaced["allow_unscanned"]) == ("critical", False)
    assert expect(api.call("GET", policy_path(ns), team.reader), 200) == replaced
    events = audit_events(api, team.admin, ns, "scan_policy_set")
    deadline = time.monotonic() + 10
    while len(events) < 2 and time.monotonic() < deadline:  # the log is written in batches
        time.sleep(0.1)
        events = audit_events(api, team.admin, ns, "scan_policy_set")
    assert sorted(
        (e["actor"], e["detail"]["min_severity"], e["detail"]["allow_unscanned"]) for e in events
    ) == sorted([("root", "critical", False), (team.admin[0], "high", True)])
    expect(api.call("DELETE", policy_path(ns), team.admin), 204)
    expect(api.call("DELETE", policy_path(ns), team.admin), 404)
    expect(api.call("GET", policy_path(ns), team.reader), 404)
    assert audit_events(api, team.admin, ns, "scan_policy_remove")[0]["actor"] == team.admin[0]


def test_validation(api: Api) -> None:
    team = crew(api)
    for body in (
        {"min_severity": "unknown"},
        {"min_severity": "HIGH!"},
        {},
        {"min_severity": "high", "allow_unscanned": "perhaps"},
        {"min_severity": "high", "extra": 1},
    ):
        expect(put_policy(api, team.admin, team.org, **body), 400)
    expect(put_policy(api, team.admin, "Bad_NS", min_severity="high"), 400)
    for body in (
        {"vulnerability": "CVE 2030 1"},
        {"vulnerability": ""},
        {"vulnerability": "CVE-2030-1", "expires_at": "not a time"},
        {"vulnerability": "CVE-2030-1", "expires_at": "2001-01-01T00:00:00Z"},
        {"vulnerability": "CVE-2030-1", "reason": "x" * 1001},
    ):
        resp = add_entry(api, team.admin, team.org, **body)
        expect(resp, 400)
    past = add_entry(api, team.admin, team.org, vulnerability="CVE-1", expires_at="2001-01-01")
    assert "has passed" in message(past)
    expect(api.call("DELETE", policy_path(team.org, "/allowlist/CVE-9"), team.admin), 404)


def test_allowlist_entries_with_expiry_replacement_and_removal(api: Api) -> None:
    team = crew(api)
    ns = team.org
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    first = expect(
        add_entry(
            api,
            team.admin,
            ns,
            vulnerability="cve-2030-0001",
            expires_at=later.isoformat(),
            reason="vendor fix pending",
        ),
        201,
    )
    assert first["vulnerability"] == "cve-2030-0001" and first["expired"] is False
    assert datetime.fromisoformat(first["expires_at"]) == later
    assert (first["reason"], first["created_by"]) == ("vendor fix pending", team.admin[0])
    # The same ID in another case replaces it; a naive time is UTC.
    second = expect(
        add_entry(api, team.admin, ns, vulnerability="CVE-2030-0001", expires_at=None), 201
    )
    assert second["expires_at"] is None
    expect(add_entry(api, team.admin, ns, vulnerability="GHSA-abcd-efgh-ijkl"), 201)
    listed = expect(api.call("GET", policy_path(ns, "/allowlist"), team.reader), 200)["entries"]
    assert [(e["vulnerability"], e["expires_at"], e["expired"]) for e in listed] == [
        ("CVE-2030-0001", None, False),
        ("GHSA-abcd-efgh-ijkl", None, False),
    ]
    # An entry that has expired is listed as such (made expired in the database).
    ScanPolicyStore(api.store.engine).allow(
        ns,
        "CVE-2030-0009",
        datetime.now(UTC) - timedelta(days=1),
        "old",
        "root",
        now=datetime.now(UTC) - timedelta(days=2),
    )
    listed = expect(api.call("GET", policy_path(ns, "/allowlist"), team.reader), 200)["entries"]
    assert {e["vulnerability"]: e["expired"] for e in listed} == {
        "CVE-2030-0001": False,
        "CVE-2030-0009": True,
        "GHSA-abcd-efgh-ijkl": False,
    }
    expect(api.call("DELETE", policy_path(ns, "/allowlist/ghsa-ABCD-efgh-ijkl"), team.admin), 204)
    expect(api.call("DELETE", policy_path(ns, "/allowlist/GHSA-abcd-efgh-ijkl"), team.admin), 404)
    listed = expect(api.call("GET", policy_path(ns, "/allowlist"), team.reader), 200)["entries"]
    assert [e["vulnerability"] for e in listed] == ["CVE-2030-0001", "CVE-2030-0009"]
    added = audit_events(api, team.admin, ns, "scan_allow_add")
    assert {e["detail"]["vulnerability"] for e in added} >= {"cve-2030-0001", "CVE-2030-0001"}
    removed = audit_events(api, team.admin, ns, "scan_allow_remove")
    assert removed[0]["detail"] == {"vulnerability": "GHSA-abcd-efgh-ijkl"}


def test_v2_refuses_a_get_the_policy_denies_but_not_head(api: Api) -> None:
    team = crew(api)
    repo = f"{team.org}/app"
    with v2(api, team.writer) as http:
        image = push_image(http, repo, "1.0")
        signature = push_image(
            http,
            repo,
            artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json",
            subject=image.descriptor(),
        )
    # Set before the first pull: the server has nothing cached for the namespace yet.
    expect(put_policy(api, team.admin, team.org, min_severity="high", allow_unscanned=False), 200)
    with v2(api, team.reader) as http:
        refused = http.get(manifest_path(repo, "1.0"), headers={"Accept": "*/*"})
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/json")
        [error] = refused.json()["errors"]
        assert error["code"] == "DENIED"
        assert (
            f"{repo}@{image.digest} has not been scanned for vulnerabilities yet"
            in (error["message"])
        )
        assert f"cargohold scan run {repo}@{image.digest}" in error["message"]
        assert error["detail"]["reason"] == "unscanned"
        head = http.head(manifest_path(repo, "1.0"), headers={"Accept": "*/*"})
        assert head.status_code == 200 and head.headers["docker-content-digest"] == image.digest
        # Referrers always pass.
        sig = http.get(manifest_path(repo, signature.digest), headers={"Accept": "*/*"})
        assert sig.status_code == 200 and sig.content == signature.body
    # Another namespace without a policy: pulls as before.
    mine = api.add_user("solo")
    with v2(api, mine) as http:
        own = push_image(http, f"{mine[0]}/app", "1.0")
        got = http.get(manifest_path(f"{mine[0]}/app", "1.0"), headers={"Accept": "*/*"})
        assert got.status_code == 200 and got.content == own.body

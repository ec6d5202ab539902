"""The scan pull policy end to end: skopeo pushes real images (a Debian one with a vulnerable
openssl, a clean one, one never scanned), `cargohold vulndb import` / `scan run` / `scan
policy` / `scan allow` run as subprocesses on the server's own stores, and skopeo's pulls
are refused or let through.

The server is this module's own (embedded, and scale-out on PostgreSQL + S3 + Redis): the
advisories imported here would otherwise show in other tests' results. It runs no
background scanner (CARGOHOLD_SCAN_WORKERS=0): every scan is the CLI's. Servers cache a
namespace's policy for policy_cache_seconds, here POLICY_CACHE (shorter than the default so
the test waits less), so every change is followed by that wait.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveRegistry, scaleout_environment
from tests.scan.layerkit import Layer, write_oci_layout
from tests.scan.test_service import ADVISORIES, DEBIAN_OS_RELEASE, debian_layer

from .skopeo import Result, Skopeo

PUSH = "--dest-tls-verify=false"
PULL = "--src-tls-verify=false"
POLICY_CACHE = 0.5


@pytest.fixture(scope="module", params=["embedded", "scaleout"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveRegistry]:
    data_dir = tmp_path_factory.mktemp(f"scan-policy-{request.param}") / "data"
    with ExitStack() as stack:
        env = {"CARGOHOLD_SCAN_WORKERS": "0", "CARGOHOLD_POLICY_CACHE_SECONDS": str(POLICY_CACHE)}
        if request.param == "scaleout":
            env.update(scaleout_environment(stack))
        live = LiveRegistry(data_dir, env)
        try:
            yield live
        finally:
            live.stop()


def cargohold(server: LiveRegistry, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """`python -m cargohold ARGS` on the live server's stores."""
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(server.data_dir)],
        env={**os.environ, **server.extra_env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
    return result


def settle() -> None:
    """Wait until every server process has read the namespace's policy again."""
    time.sleep(POLICY_CACHE + 0.5)


def clean_layer() -> Layer:
    status = "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\n"
    return (
        Layer()
        .dir("etc")
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", status)
    )


def layout(root: Path, *layers: Layer) -> str:
    write_oci_layout(root, list(layers))
    return f"oci:{root}:latest"


def pull(skopeo: Skopeo, server: LiveRegistry, ref: str, dest: Path) -> Result:
    dest.mkdir(parents=True, exist_ok=True)
    target = f"oci:{dest}:{uuid.uuid4().hex[:8]}"
    return skopeo.copy(f"docker://{server.host}/{ref}", target, PULL, check=False)


def refused(result: Result) -> str:
    """The error skopeo reports for a pull the registry refused (403 DENIED)."""
    assert result.returncode != 0, result.describe()
    assert "denied" in result.stderr.lower(), result.describe()
    return result.stderr


def allowed(result: Result) -> None:
    assert result.returncode == 0, result.describe()


def test_pulls_follow_the_namespace_scan_policy(
    skopeo: Skopeo, server: LiveRegistry, tmp_path: Path
) -> None:
    ns = f"sp-{uuid.uuid4().hex[:10]}"
    advisories = tmp_path / "osv"
    advisories.mkdir()
    for record in ADVISORIES:
        (advisories / f"{record['id']}.json").write_text(json.dumps(record))
    cargohold(server, "vulndb", "import", str(advisories))

    vulnerable = layout(tmp_path / "vulnerable", debian_layer())
    clean = layout(tmp_path / "clean", clean_layer())
    fresh = layout(tmp_path / "fresh", debian_layer().file("etc/motd", "never scanned\n"))
    for source, tag in ((vulnerable, "vuln"), (clean, "clean"), (fresh, "fresh")):
        skopeo.copy(source, f"docker://{server.host}/{ns}/app:{tag}", PUSH)

    report = json.loads(cargohold(server, "scan", "run", f"{ns}/app:vuln", "--json").stdout)
    findings = report["images"][0]["findings"]
    assert {(f["advisory"], f["package"], f["severity"]) for f in findings} == {
        ("TEST-DEB12-SSL1", "openssl", "high"),
        ("TEST-DEB12-SSL1", "libssl3", "high"),
    }
    clean_report = json.loads(cargohold(server, "scan", "run", f"{ns}/app:clean", "--json").stdout)
    assert clean_report["status"] == "scanned" and clean_report["images"][0]["findings"] == []

    # Without a policy everything pulls.
    allowed(pull(skopeo, server, f"{ns}/app:vuln", tmp_path / "pulled"))

    cargohold(server, "scan", "policy", "set", ns, "--severity", "high", "--deny-unscanned")
    settle()
    stderr = refused(pull(skopeo, server, f"{ns}/app:vuln", tmp_path / "pulled"))
    assert "TEST-DEB12-SSL1 (CVE-2099-SSL1) in libssl3 3.0.11-1~deb12u2" in stderr
    assert "in openssl 3.0.11-1~deb12u2 [high; fixed in 3.0.15-1~deb12u1]" in stderr
    assert f"scan policy of namespace {ns}" in stderr and "high severity" in stderr
    assert f"cargohold scan allow {ns} CVE-2099-SSL1 --expires YYYY-MM-DD" in stderr
    allowed(pull(skopeo, server, f"{ns}/app:clean", tmp_path / "pulled"))
    unscanned = refused(pull(skopeo, server, f"{ns}/app:fresh", tmp_path / "pulled"))
    assert "has not been scanned for vulnerabilities yet" in unscanned
    assert f"cargohold scan run {ns}/app@sha256:" in unscanned

    # An exception for the finding's CVE lets the image through.
    until = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    cargohold(server, "scan", "allow", ns, "cve-2099-ssl1", "--expires", until, "--reason", "e2e")
    settle()
    allowed(pull(skopeo, server, f"{ns}/app:vuln", tmp_path / "pulled"))

    # One that has expired does not.
    cargohold(server, "scan", "disallow", ns, "CVE-2099-SSL1")
    # Far enough ahead for a CLI start on a busy machine, then waited out.
    soon = datetime.now(UTC) + timedelta(seconds=12)
    cargohold(server, "scan", "allow", ns, "CVE-2099-SSL1", "--expires", soon.isoformat())
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.5)
    settle()
    listed: list[dict[str, Any]] = json.loads(
        cargohold(server, "scan", "allow-list", ns, "--json").stdout
    )
    assert [(e["vulnerability"], e["expired"]) for e in listed] == [("CVE-2099-SSL1", True)]
    assert "TEST-DEB12-SSL1" in refused(pull(skopeo, server, f"{ns}/app:vuln", tmp_path / "p"))

    # Unscanned images pass once the policy allows them; vulnerable ones still do not.
    cargohold(server, "scan", "policy", "set", ns, "--severity", "high", "--allow-unscanned")
    settle()
    allowed(pull(skopeo, server, f"{ns}/app:fresh", tmp_path / "pulled"))
    refused(pull(skopeo, server, f"{ns}/app:vuln", tmp_path / "pulled"))
    # The refusal is the spec's error body; existence checks (HEAD) are never refused.
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    url = f"{server.url}/v2/{ns}/app/manifests/vuln"
    got = httpx.get(url, headers=accept, timeout=30)
    assert got.status_code == 403 and got.headers["content-type"] == "application/json"
    [error] = got.json()["errors"]
    assert error["code"] == "DENIED" and "TEST-DEB12-SSL1" in error["message"]
    assert error["detail"]["min_severity"] == "high"
    head = httpx.head(url, headers=accept, timeout=30)
    assert head.status_code == 200 and head.headers["docker-content-digest"] == report["digest"]
    # Removing the policy lets everything through.
    cargohold(server, "scan", "policy", "remove", ns)
    settle()
    allowed(pull(skopeo, server, f"{ns}/app:vuln", tmp_path / "pulled"))

"""The OSV query API (POST /v1/query, /v1/querybatch) of a live server, with the fixture
advisories imported through `cargohold vulndb import`, and pip-audit using it offline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveRegistry
from tests.vulndb.conftest import OSV

JINJA2_ALL = ["PYSEC-2014-8", "PYSEC-2014-82", "PYSEC-2019-217", "PYSEC-2019-220", "PYSEC-2021-66"]
RATE_LIMIT = 1000


def cargohold(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def start(data_dir: Path, rate_limit: int) -> LiveRegistry:
    """A server enforcing access control (it has a user), with the fixtures imported."""
    cargohold(data_dir, "user", "add", "alice", "--admin", "--password-stdin", stdin="pw-alice")
    imported = json.loads(cargohold(data_dir, "vulndb", "import", str(OSV), "--json"))
    assert imported["records"] == 145
    return LiveRegistry(
        data_dir,
        {"CARGOHOLD_TEST_WORKERS": "1", "CARGOHOLD_RATE_LIMIT_PER_MINUTE": str(rate_limit)},
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    live = start(tmp_path_factory.mktemp("osv-api") / "data", RATE_LIMIT)
    yield live
    live.stop()


@pytest.fixture
def http(server: LiveRegistry) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [vuln["id"] for vuln in response.json()["vulns"]]


def query(http: httpx.Client, **body: object) -> httpx.Response:
    return http.post("/v1/query", json=body)


def test_query_by_package_and_version(http: httpx.Client) -> None:
    pypi = {"name": "jinja2", "ecosystem": "PyPI"}
    assert ids(query(http, package=pypi, version="2.10")) == ["PYSEC-2019-217", "PYSEC-2021-66"]
    assert ids(query(http, package=pypi, version="2.11.3")) == []  # the last fix
    # Names and ecosystems as clients spell them loosely: PEP 503, lower case.
    loose = {"name": "Jinja2", "ecosystem": "pypi"}
    assert ids(query(http, package=loose, version="2.10.0")) == ["PYSEC-2019-217", "PYSEC-2021-66"]
    # The full records, as imported.
    record = query(http, package=pypi, version="2.10").json()["vulns"][1]
    stored = json.loads((OSV / "PyPI" / "PYSEC-2021-66.json").read_text())
    assert record == stored


def test_query_without_version_gives_every_advisory_of_the_package(http: httpx.Client) -> None:
    assert ids(query(http, package={"name": "jinja2", "ecosystem": "PyPI"})) == JINJA2_ALL
    # Withdrawn advisories are never served.
    assert ids(query(http, package={"name": "arrayfire", "ecosystem": "PyPI"})) == []
    openssl = ids(query(http, package={"name": "openssl", "ecosystem": "Debian:12"}))
    assert "TEST-DEB12-0001" in openssl and "TEST-DEB12-0005" not in openssl


def test_query_by_purl(http: httpx.Client) -> None:
    def purl(text: str, **extra: object) -> list[str]:
        return ids(query(http, package={"purl": text}, **extra))

    assert purl("pkg:pypi/jinja2@2.10") == ["PYSEC-2019-217", "PYSEC-2021-66"]
    assert purl("pkg:pypi/jinja2", version="2.10") == ["PYSEC-2019-217", "PYSEC-2021-66"]
    assert purl("pkg:pypi/jinja2") == JINJA2_ALL
    assert purl("pkg:golang/golang.org/x/crypto@v0.16.0") == ["GO-2023-2402"]
    assert purl("pkg:npm/left-pad@1.2.0") == ["TEST-NPM-0001"]
    # Distribution packages: the release from the distro qualifier, the source package
    # advisories name from the upstream qualifier.
    libssl = "pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u3?arch=amd64&upstream=openssl"
    assert purl(f"{libssl}&distro=debian-11") == ["DSA-5343-1"]
    assert purl(f"{libssl}&distro=bullseye") == ["DSA-5343-1"]
    assert purl("pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u4?distro=debian-11") == []
    assert purl("pkg:apk/alpine/busybox@1.29.3-r9?distro=alpine-3.11.3") == [
        "ALPINE-CVE-2018-20679"
    ]


def test_querybatch(http: httpx.Client) -> None:
    body = {
        "queries": [
            {"package": {"name": "jinja2", "ecosystem": "PyPI"}, "version": "2.10"},
            {"package": {"purl": "pkg:pypi/jinja2@3.1.6"}},
            {"package": {"name": "nothing-here", "ecosystem": "NoSuchEcosystem"}},
        ]
    }
    response = http.post("/v1/querybatch", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [[v["id"] for v in r["vulns"]] for r in results] == [
        ["PYSEC-2019-217", "PYSEC-2021-66"],
        [],
        [],
    ]
    assert results[0]["vulns"][1] == {"id": "PYSEC-2021-66", "modified": "2021-03-22T16:34:00Z"}
    empty = http.post("/v1/querybatch", json={"queries": []})
    assert empty.json() == {"results": []}


def test_unknown_ecosystem_or_package_gives_no_vulns(http: httpx.Client) -> None:
    assert ids(query(http, package={"name": "jinja2", "ecosystem": "Nope"}, version="1")) == []
    assert ids(query(http, package={"name": "no-such-package", "ecosystem": "PyPI"})) == []
    assert ids(query(http, package={"name": "jinja2", "ecosystem": "PyPI"}, version="x y")) == []


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/query", b"{not json", "not valid JSON"),
        ("/v1/query", b"[]", "JSON object"),
        ("/v1/query", b'{"version": "1.0"}', "package is required"),
        ("/v1/query", b'{"package": {"name": "jinja2"}}', "package.ecosystem"),
        ("/v1/query", b'{"package": {"name": 3, "ecosystem": "PyPI"}}', "must be a string"),
        ("/v1/query", b'{"package": "jinja2"}', "must be an object"),
        ("/v1/query", b'{"commit": "6879efc2c1596d11a6a6ad296f80063b558d5e0f"}', "commit"),
        ("/v1/query", b'{"package": {"purl": "jinja2"}}', "invalid purl"),
        ("/v1/query", b'{"package": {"purl": "pkg:pypi/a@1"}, "version": "2"}', "both"),
        ("/v1/query", b'{"package": {"purl": "pkg:maven/a/b@1"}}', "not supported"),
        ("/v1/query", b'{"package": {"purl": "pkg:deb/debian/curl@7"}}', "distro qualifier"),
        ("/v1/query", b'{"package": {"purl": "pkg:apk/alpine/musl@1"}}', "distro qualifier"),
        ("/v1/querybatch", b'{"queries": {}}', "list"),
        ("/v1/querybatch", b'{"queries": [{"package": {}}]}', "queries[0]"),
    ],
)
def test_bad_requests_are_400_json(
    http: httpx.Client, path: str, body: bytes, message: str
) -> None:
    response = http.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == 3 and message in error["message"], error


def test_post_only(http: httpx.Client) -> None:
    assert http.get("/v1/query").status_code == 405


def test_public_without_credentials_but_rate_limited(http: httpx.Client) -> None:
    assert http.get("/v2/").status_code == 401  # access control is enforced for /v2
    response = query(http, package={"name": "jinja2", "ecosystem": "PyPI"}, version="2.10")
    assert response.status_code == 200
    assert response.headers["ratelimit-limit"] == str(RATE_LIMIT)
    # Credentials are not needed, and bad ones do not matter: nothing is authenticated here.
    bad = http.post(
        "/v1/query",
        json={"package": {"name": "jinja2", "ecosystem": "PyPI"}},
        auth=("alice", "wrong"),
    )
    assert ids(bad) == JINJA2_ALL


def test_rate_limit_applies(tmp_path: Path) -> None:
    live = start(tmp_path / "data", 3)
    try:
        body = {"package": {"name": "jinja2", "ecosystem": "PyPI"}}
        codes = [httpx.post(f"{live.url}/v1/query", json=body).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
    finally:
        live.stop()


def pip_audit() -> str:
    """pip-audit is a dev dependency: missing, it is a failure, not a skip."""
    found = shutil.which("pip-audit", path=str(Path(sys.executable).parent))
    found = found or shutil.which("pip-audit")
    assert found, "pip-audit is not installed: pip install -e '.[dev]'"
    return found


def test_pip_audit_uses_the_registry(server: LiveRegistry, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==2.10\nurllib3==1.26.16\nrequests==2.32.3\n")
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            str(pip_audit()),
            "--osv-url",
            f"{server.url}/v1/query",
            "--vulnerability-service",
            "osv",
            "--requirement",
            str(requirements),
            "--no-deps",
            "--disable-pip",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--progress-spinner",
            "off",
            "--format",
            "json",
            "--output",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        # No proxy and no index: anything but the loopback server would fail.
        env={
            "PATH": str(Path(sys.executable).parent),
            "HOME": str(tmp_path),
            "NO_PROXY": "127.0.0.1",
            "PIP_NO_INDEX": "1",
        },
    )
    assert result.returncode == 1, result.stdout + result.stderr  # 1: vulnerabilities found
    found = {
        dep["name"]: sorted(v["id"] for v in dep["vulns"])
        for dep in json.loads(report.read_text())["dependencies"]
    }
    assert found == {
        "jinja2": ["PYSEC-2019-217", "PYSEC-2021-66"],
        "urllib3": ["PYSEC-2023-192"],
        "requests": [],
    }

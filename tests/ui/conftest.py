"""A registry with users, an org and scanned images pushed by skopeo, and Debian's chromium
driven by Playwright (its own browser builds cannot be downloaded here: a missing
/usr/bin/chromium fails the tests, it never skips them).

Screenshots go to build/ui-screenshots/ (CARGOHOLD_UI_SCREENSHOTS to change it).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveRegistry
from tests.e2e.oci_layout import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MANIFEST,
    Blob,
    Image,
    build_index_layout,
    make_image,
    write_layout,
)
from tests.e2e.skopeo import Skopeo, find_skopeo
from tests.scan.test_scan_on_push import SCANNING, app_layout, bootstrap, wait_for

from cargohold.scan.sbom import CYCLONEDX_JSON

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("admin", "scan-admin-pw")  # bootstrap() of the scanning tests adds this admin
READER = ("rita", "reader-pw-1")
XSS = "<img src=x onerror=\"document.title='pwned'\">"
REPO = "acme/app"


@dataclass
class UiRegistry:
    server: LiveRegistry
    data_dir: Path
    app_digest: str  # acme/app:1.0, scanned, with findings
    stable_first: str  # what acme/app:stable named first (app_digest)
    stable_now: str  # what it names now (another image)
    xss_digest: str  # acme/app:xss, annotated and labelled with markup

    @property
    def url(self) -> str:
        return self.server.url


def screenshots_dir() -> Path:
    folder = Path(os.environ.get("CARGOHOLD_UI_SCREENSHOTS", ROOT / "build" / "ui-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _hostile_image() -> Image:
    """An image whose manifest annotations and config labels hold markup."""
    base = make_image("xss", layers=1)
    config = json.loads(base.config.data)
    config["config"]["Labels"] = {"org.example.note": XSS, XSS: "label key"}
    config_blob = Blob(MEDIA_TYPE_CONFIG, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [blob.descriptor() for blob in base.layers],
        "annotations": {"org.opencontainers.image.description": XSS, XSS: "key"},
    }
    return Image(
        Blob(MEDIA_TYPE_MANIFEST, json.dumps(manifest).encode()),
        config_blob,
        base.layers,
        base.diff_ids,
        base.os,
        base.architecture,
    )


def _push(skopeo: Skopeo, layout: Path, tag: str, server: LiveRegistry, target: str) -> None:
    skopeo.copy(
        f"oci:{layout}:{tag}",
        f"docker://{server.host}/{target}",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        ":".join(ADMIN),
    )


def _digest(server: LiveRegistry, tag: str) -> str:
    response = httpx.get(f"{server.url}/api/v1/repositories/{REPO}/tags/{tag}", auth=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["digest"]


@pytest.fixture(scope="package")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiRegistry]:
    base = tmp_path_factory.mktemp("ui")
    data_dir = base / "data"
    bootstrap(data_dir, base)  # schema, the admin, advisories
    server = LiveRegistry(data_dir, extra_env=SCANNING)
    try:
        with httpx.Client(base_url=f"{server.url}/api/v1", auth=ADMIN) as api:
            for path, body in (
                ("/users", {"name": READER[0], "password": READER[1]}),
                ("/orgs", {"name": "acme"}),
                ("/namespaces/acme/members", {"user": READER[0], "role": "reader"}),
            ):
                assert api.post(path, json=body).status_code == 201, path
        (base / "skopeo").mkdir()
        skopeo = Skopeo(find_skopeo(), base / "skopeo")
        app_layout(base / "app", tag="1.0")
        _push(skopeo, base / "app", "1.0", server, f"{REPO}:1.0")
        _push(skopeo, base / "app", "1.0", server, f"{REPO}:stable")
        other = make_image("other", layers=2)
        write_layout(base / "other", "2.0", other.manifest, [other])
        _push(skopeo, base / "other", "2.0", server, f"{REPO}:stable")
        hostile = _hostile_image()
        write_layout(base / "xss", "xss", hostile.manifest, [hostile])
        _push(skopeo, base / "xss", "xss", server, f"{REPO}:xss")
        build_index_layout(base / "multi", "multi")
        _push(skopeo, base / "multi", "multi", server, f"{REPO}:multi")
        app_digest = _digest(server, "1.0")

        def scanned() -> bool:
            scan = httpx.get(f"{server.url}/api/v1/repositories/{REPO}/scans/1.0", auth=ADMIN)
            sbom = httpx.get(
                f"{server.url}/v2/{REPO}/referrers/{app_digest}",
                params={"artifactType": CYCLONEDX_JSON},
                auth=ADMIN,
            )
            return scan.status_code == 200 and bool(sbom.json().get("manifests"))

        wait_for(scanned, 60)
        yield UiRegistry(
            server=server,
            data_dir=data_dir,
            app_digest=app_digest,
            stable_first=app_digest,
            stable_now=_digest(server, "stable"),
            xss_digest=_digest(server, "xss"),
        )
    finally:
        server.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(
            f"no {CHROMIUM}: the web UI tests need Debian's chromium (apt-get install "
            "chromium); CI installs it",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            launched.close()

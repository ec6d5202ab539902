"""Namespace settings for pulls and promotions in Debian's chromium: the scan pull policy
and its allow-list, trusted keys and the signature policy, promotion gates, the webhook
delivery log with redelivery, replication executions; and a reader's view of them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, Page, expect
from tests.scan.test_scan_on_push import wait_for

from .conftest import ADMIN, READER, XSS, UiRegistry
from .test_browser import shot, sign_in

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
NS = "acme"


@pytest.fixture
def admin(browser: Browser, registry: UiRegistry) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a script opened a dialog: {dialog.message}"))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, registry.url, ADMIN)
    page.goto(f"{registry.url}/ui/namespace?ns={NS}")
    expect(page.get_by_role("heading", name=f"Settings of {NS}")).to_be_visible()
    yield page
    context.close()
    assert errors == []


@pytest.fixture
def api(registry: UiRegistry) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{registry.url}/api/v1/namespaces/{NS}", auth=ADMIN) as client:
        yield client


def test_scan_policy_and_allow_list(admin: Page, api: httpx.Client):
    page = admin
    scan = page.locator("section", has=page.get_by_role("heading", name="Scan pull policy"))
    expect(scan).to_contain_text("No scan policy")
    try:
        page.get_by_label("Refuse pulls with findings at or above").select_option("high")
        page.get_by_label("Let images with no scan yet through").uncheck()
        page.get_by_role("button", name="Save scan policy").click()
        expect(page.get_by_role("status")).to_contain_text("Scan policy saved")
        expect(scan).to_contain_text("high severity or worse are refused, and so are images")
        saved = api.get("/scan-policy").json()
        assert saved["min_severity"] == "high" and saved["allow_unscanned"] is False

        page.get_by_label("Vulnerability").fill("CVE-2099-0001")
        page.get_by_label("Until (optional)").fill("2099-12-31")
        page.get_by_label("Reason").fill(XSS)
        page.get_by_role("button", name="Add exception").click()
        row = page.locator("table.allowlist tbody tr", has_text="CVE-2099-0001")
        expect(row).to_contain_text(XSS)  # markup shown as text
        expect(row).to_contain_text("2099-12-31")
        assert page.title() != "pwned"
        entries = api.get("/scan-policy/allowlist").json()["entries"]
        assert [e["vulnerability"] for e in entries] == ["CVE-2099-0001"]
        shot(page, "namespace-policies")
        page.get_by_role("button", name="Remove the exception CVE-2099-0001").click()
        page.get_by_role("dialog").get_by_role("button", name="Remove").click()
        expect(page.locator("table.allowlist")).to_have_count(0)
        assert api.get("/scan-policy/allowlist").json()["entries"] == []

        page.get_by_role("button", name="Remove the scan policy").click()
        page.get_by_role("dialog").get_by_role("button", name="Remove").click()
        expect(scan).to_contain_text("No scan policy")
        assert api.get("/scan-policy").status_code == 404
    finally:
        api.delete("/scan-policy")  # other tests pull from acme


def _public_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_trusted_keys_signature_policy_and_promotion_gates(admin: Page, api: httpx.Client):
    page = admin
    try:
        page.get_by_label("Key name").fill("release")
        page.get_by_label("Public key (PEM, as cosign.pub)").fill(_public_key_pem())
        page.get_by_role("button", name="Add key").click()
        expect(page.get_by_role("status")).to_contain_text("Key release is trusted")
        expect(page.locator("table.keys")).to_contain_text("release")

        page.get_by_role("button", name="Require signatures on pull").click()
        expect(page.get_by_role("status")).to_contain_text("Pulls now need a signature")
        assert api.get("/signature-policy").json()["required"] is True
        page.get_by_role("button", name="Stop requiring signatures").click()
        expect(page.get_by_role("button", name="Require signatures on pull")).to_be_visible()
        assert api.get("/signature-policy").json()["required"] is False

        page.get_by_label("Refuse findings at").select_option("high")
        page.get_by_label("Signed by a trusted key").check()
        page.get_by_role("button", name="Save gates").click()
        expect(page.get_by_role("status")).to_contain_text("Promotion gates saved")
        gates = api.get("/promotion-gates").json()
        assert gates["max_severity"] == "high" and gates["require_signature"] is True
        assert gates["require_immutable"] is False
        page.get_by_role("button", name="Remove the promotion gates").click()
        page.get_by_role("dialog").get_by_role("button", name="Remove").click()
        expect(page.get_by_text("No gates: every promotion passes.")).to_be_visible()
        gates_section = page.locator(
            "section", has=page.get_by_role("heading", name="Promotion gates")
        )
        expect(gates_section).not_to_contain_text("null")
        assert api.get("/promotion-gates").status_code == 404

        page.get_by_role("button", name="Remove the key release").click()
        page.get_by_role("dialog").get_by_role("button", name="Remove").click()
        expect(page.locator("table.keys")).to_have_count(0)
    finally:
        api.delete("/signature-policy")
        api.delete("/promotion-gates")
        api.delete("/keys/release")


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        _Receiver.received.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"thanks")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_delivery_log_and_redelivery(
    admin: Page, api: httpx.Client, receiver: str, registry: UiRegistry
):
    made = api.post("/webhooks", json={"url": receiver})
    assert made.status_code == 201, made.text
    hook = made.json()["id"]
    try:
        tested = api.post(f"/webhooks/{hook}/test")
        assert tested.status_code == 200, tested.text
        assert tested.json()["state"] == "delivered"
        page = admin
        page.reload()
        log = page.locator("table.delivery-log", has_text="ping")
        expect(log.locator("tbody tr")).to_have_count(1)
        expect(log).to_contain_text("delivered")
        expect(log).to_contain_text("thanks")
        first = tested.json()["id"]
        page.get_by_role("button", name=f"Redeliver delivery {first}").click()
        expect(page.get_by_role("status")).to_contain_text("Sent again as delivery")
        expect(log.locator("tbody tr")).to_have_count(2)
        wait_for(lambda: len(_Receiver.received) == 2, 15)
    finally:
        api.delete(f"/webhooks/{hook}")


def test_replication_endpoints_rules_and_executions(admin: Page, registry: UiRegistry):
    page = admin
    page.get_by_role("link", name="Replication").click()
    page.get_by_label("Endpoint name").fill("exec-site")
    page.get_by_label("Registry URL").fill("https://registry.exec.example")
    page.get_by_label("User (optional)").fill("robot")
    page.get_by_label("Password or token (optional)").fill("s3cret-value")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("status")).to_contain_text("Endpoint exec-site added")
    expect(page.locator("table.endpoints")).to_contain_text("https://registry.exec.example")
    expect(page.locator("main")).not_to_contain_text("s3cret-value")  # write-only

    page.get_by_label("Rule name").fill("to-exec")
    page.get_by_label("Endpoint", exact=True).select_option("exec-site")
    page.get_by_label("Direction").select_option("push")
    page.get_by_label("Repositories").fill("acme/*")
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_role("status")).to_contain_text("Rule to-exec added")
    expect(page.locator("table.rules tbody tr", has_text="to-exec")).to_contain_text("acme/*")

    page.get_by_role("button", name="Show the executions of to-exec").click()
    expect(page.locator("#executions")).to_contain_text("No executions yet")
    page.get_by_role("button", name="Run the rule to-exec now").click()
    expect(page.get_by_role("status")).to_contain_text("Queued execution")
    rows = page.locator("table.executions tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("manual")
    shot(page, "replication")

    page.get_by_role("button", name="Remove the rule to-exec").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator("table.rules tbody tr", has_text="to-exec")).to_have_count(0)
    page.get_by_role("button", name="Remove the endpoint exec-site").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator("table.endpoints tbody tr", has_text="exec-site")).to_have_count(0)
    with httpx.Client(base_url=f"{registry.url}/api/v1/replication", auth=ADMIN) as api:
        assert "to-exec" not in {rule["name"] for rule in api.get("/rules").json()["rules"]}
        assert api.get("/endpoints/exec-site").status_code == 404


def test_a_reader_cannot_change_policies(browser: Browser, registry: UiRegistry):
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, registry.url, READER)
        page.goto(f"{registry.url}/ui/namespace?ns={NS}")
        expect(page.get_by_role("alert").first).to_contain_text("Not allowed")
        for button in ("Save scan policy", "Add key", "Save gates", "Add exception"):
            assert page.get_by_role("button", name=button).count() == 0
        statuses = page.evaluate(
            """async (ns) => {
                const session = await (await fetch('/api/v1/session')).json();
                const headers = {'X-CSRF-Token': session.csrf_token,
                                 'Content-Type': 'application/json'};
                const put = (path, body) => fetch(`/api/v1/namespaces/${ns}/${path}`,
                    {method: 'PUT', headers, body: JSON.stringify(body)});
                return [
                    (await put('scan-policy', {min_severity: 'low'})).status,
                    (await put('signature-policy', {})).status,
                    (await put('promotion-gates', {require_signature: true})).status,
                ];
            }""",
            NS,
        )
        assert statuses == [403, 403, 403]
    finally:
        context.close()

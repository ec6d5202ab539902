"""End to end in Debian's chromium: sign in, browse to a tag, its layers and
vulnerabilities, roll a tag back, create a robot account, change visibility, hostile
strings rendered as text, and a reader's view without management controls."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from tests.scan.test_scan_on_push import wait_for

from cargohold.storage.meta import ChangeOrigin, SqlMetadataStore
from cargohold.storage.meta.sqlbase import create_sql_engine

from .conftest import ADMIN, READER, REPO, XSS, UiRegistry, screenshots_dir

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def sign_in(page: Page, url: str, user: tuple[str, str]) -> None:
    page.goto(f"{url}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("User name").fill(user[0])
    page.get_by_label("Password").fill(user[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Repositories")).to_be_visible()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(screenshots_dir() / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def admin_page(browser: Browser, registry: UiRegistry) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a script opened a dialog: {dialog.message}"))
    page.on("pageerror", lambda error: PAGE_ERRORS.append(str(error)))
    page.on(
        "console",
        lambda message: (
            PAGE_ERRORS.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    sign_in(page, registry.url, ADMIN)
    yield page
    context.close()
    assert PAGE_ERRORS == []


PAGE_ERRORS: list[str] = []  # uncaught script errors and CSP violations of the admin's page


def test_sign_in_lists_repositories_with_search(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/")
    rows = page.locator("table.repos tbody tr")
    expect(rows.filter(has_text=REPO)).to_have_count(1)
    expect(rows.filter(has_text=REPO)).to_contain_text("private")
    expect(page.get_by_role("img", name=re.compile("Storage by repository"))).to_be_visible()
    shot(page, "repositories")
    page.get_by_role("searchbox", name="Search").fill("nothing-like-this")
    expect(page.get_by_text("No repositories match.")).to_be_visible()
    assert "q=nothing-like-this" in page.url
    page.get_by_role("searchbox", name="Search").fill("app")
    expect(rows).to_have_count(1)
    page.get_by_label("Visibility", exact=True).select_option("public")
    expect(page.get_by_text("No repositories match.")).to_be_visible()
    page.get_by_label("Visibility", exact=True).select_option("")
    expect(rows.filter(has_text=REPO)).to_have_count(1)
    page.get_by_label("Size").select_option(str(1024**3))
    expect(page.get_by_text("No repositories match.")).to_be_visible()
    assert f"min_bytes={1024**3}" in page.url
    page.get_by_label("Size").select_option("")
    page.get_by_label("Last push").select_option("1")
    expect(rows.filter(has_text=REPO)).to_have_count(1)


def test_repository_page_shows_tags_scans_and_pull_command(admin_page: Page, registry: UiRegistry):
    pulled = httpx.get(
        f"{registry.url}/v2/{REPO}/manifests/1.0",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        auth=ADMIN,
    )
    assert pulled.status_code == 200

    def pull_recorded() -> bool:  # the audit log, which records pulls, writes in the background
        details = httpx.get(f"{registry.url}/api/v1/repositories/{REPO}/tag-details", auth=ADMIN)
        return any(t["name"] == "1.0" and t["pulled_at"] for t in details.json()["tags"])

    wait_for(pull_recorded, 15)
    page = admin_page
    page.goto(f"{registry.url}/ui/")
    page.get_by_role("link", name=REPO).click()
    expect(page.get_by_role("heading", name=REPO, exact=True)).to_be_visible()
    tags = page.locator("table.tags tbody tr")
    expect(tags).to_have_count(4)  # 1.0, multi, stable, xss
    first = tags.filter(has=page.get_by_role("link", name="1.0", exact=True))
    expect(first).to_contain_text("critical")
    expect(first).to_contain_text(registry.app_digest[:19])
    expect(first).to_contain_text("linux/amd64")
    expect(first).to_contain_text("by admin")
    expect(first).to_contain_text("KiB")  # config and layers, not the manifest alone
    expect(first.locator("td").nth(4)).to_contain_text("UTC")  # last pull
    expect(page.locator(".copy code").first).to_have_text(
        f"docker pull {registry.server.host}/{REPO}:1.0"
    )
    expect(page.get_by_role("button", name="Delete tag 1.0")).to_be_visible()
    shot(page, "repository")


def test_manifest_page_shows_layers_config_and_referrers(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/repository?name={REPO}")
    page.get_by_role("link", name="1.0", exact=True).click()
    expect(page.get_by_role("heading", name=f"{REPO}:1.0")).to_be_visible()
    expect(page.locator("table.layers tbody tr")).to_have_count(3)
    expect(page.get_by_text(f"docker pull {registry.server.host}/{REPO}@{registry.app_digest}"))
    expect(page.locator("table.referrers")).to_contain_text("SBOM")
    expect(page.locator(".facts").first).to_contain_text(registry.app_digest)
    shot(page, "manifest")


def test_vulnerability_report_filters_findings(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/manifest?name={REPO}&ref=1.0")
    page.get_by_role("link", name="Vulnerabilities").click()
    expect(page.get_by_role("img", name="Findings by severity")).to_be_visible()
    findings = page.locator("table.findings tbody tr")
    expect(findings.first).to_be_visible()
    total = findings.count()
    assert total >= 2
    expect(page.locator("table.findings")).to_contain_text("TEST-PYPI-REQ1")
    shot(page, "vulnerabilities")
    page.get_by_label("Severity", exact=True).select_option("high")
    expect(page.locator("table.findings")).not_to_contain_text("TEST-PYPI-REQ1")
    expect(page.locator("table.findings")).to_contain_text("libssl3")
    page.get_by_label("Severity", exact=True).select_option("")
    page.get_by_role("searchbox", name="Search").fill("requests")
    expect(findings).to_have_count(1)


def test_rollback_with_confirmation_changes_the_history(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/repository?name={REPO}")
    page.locator("table.tags tbody tr", has_text="stable").get_by_role(
        "link", name="History"
    ).click()
    events = page.locator("table.history tbody tr")
    expect(events).to_have_count(2)
    rollback = page.get_by_role("button", name=re.compile(r"^Roll back to sha256:"))
    expect(rollback).to_have_count(1)
    rollback.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Roll back tag")
    dialog.get_by_role("button", name="Cancel").click()
    expect(events).to_have_count(2)
    rollback.click()
    page.get_by_role("dialog").get_by_role("button", name="Roll back").click()
    expect(events).to_have_count(3)
    expect(events.first).to_contain_text("rollback")
    expect(page.get_by_role("status")).to_contain_text("stable now names")
    shot(page, "history")
    response = httpx.get(f"{registry.url}/api/v1/repositories/{REPO}/tags/stable", auth=ADMIN)
    assert response.json()["digest"] == registry.stable_first


def test_create_robot_account_and_change_visibility(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/namespaces")
    page.get_by_role("link", name="Settings of acme").click()
    expect(page.get_by_role("heading", name="Settings of acme")).to_be_visible()
    page.get_by_label("Robot name").fill("ci")
    page.get_by_label("push").check()
    page.get_by_role("button", name="Create robot account").click()
    secret_box = page.locator("#robot-secret")
    expect(secret_box).to_contain_text("shown only now")
    secret = secret_box.locator(".copy code").nth(1).text_content()
    assert secret
    expect(page.locator("table.robots")).to_contain_text("robot$acme+ci")
    shot(page, "namespace-settings")
    pulled = httpx.get(f"{registry.url}/v2/{REPO}/tags/list", auth=("robot$acme+ci", secret))
    assert pulled.status_code == 200, pulled.text
    page.get_by_role("button", name="I have stored it").click()
    expect(secret_box).to_be_empty()

    page.get_by_label("Public: anyone may pull").check()
    page.get_by_role("button", name="Save visibility").click()
    expect(page.get_by_role("status")).to_contain_text("acme is now public")
    tags_list = f"{registry.url}/v2/{REPO}/tags/list"
    wait_for(lambda: httpx.get(tags_list).status_code == 200, 15)  # policy cache: seconds
    page.get_by_label("Private: members only").check()
    page.get_by_role("button", name="Save visibility").click()
    expect(page.get_by_role("status")).to_contain_text("acme is now private")
    wait_for(lambda: httpx.get(tags_list).status_code == 401, 15)


def test_markup_in_annotations_and_labels_renders_as_text(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/manifest?name={REPO}&ref=xss")
    annotations = page.locator("table.annotations").first
    expect(annotations).to_contain_text(XSS)
    expect(page.locator("main")).to_contain_text(XSS)
    assert page.locator("main img").count() == 0
    assert page.title() != "pwned"
    assert page.evaluate("document.title") != "pwned"


def test_csp_and_security_headers(registry: UiRegistry):
    for path in ("/", "/ui/repository", "/ui/static/app.js"):
        response = httpx.get(f"{registry.url}{path}")
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{registry.url}/ui/static/../../config.py").status_code == 404
    assert httpx.get(f"{registry.url}/v2/").status_code == 401  # /v2 untouched


def test_tags_paginate(admin_page: Page, registry: UiRegistry):
    with httpx.Client(base_url=registry.url, auth=ADMIN) as client:
        for number in range(60):
            response = client.put(
                f"/api/v1/repositories/{REPO}/tags/t{number:03}", json={"source": "1.0"}
            )
            assert response.status_code == 200, response.text
    page = admin_page
    page.goto(f"{registry.url}/ui/repository?name={REPO}")
    tags = page.locator("table.tags tbody tr")
    expect(tags).to_have_count(50)
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("table.tags caption")).to_contain_text("page 2")
    expect(tags).to_have_count(14)  # 64 tags in all
    page.get_by_role("button", name="Previous page").click()
    expect(tags).to_have_count(50)


def test_phone_width(browser: Browser, registry: UiRegistry):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    sign_in(page, registry.url, ADMIN)
    page.goto(f"{registry.url}/ui/manifest?name={REPO}&ref=1.0")
    expect(page.locator("table.layers")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, width
    shot(page, "manifest-phone")
    context.close()


def test_reader_sees_no_management_controls_and_gets_403(browser: Browser, registry: UiRegistry):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, registry.url, READER)
    page.goto(f"{registry.url}/ui/repository?name={REPO}")
    expect(page.locator("table.tags tbody tr").first).to_be_visible()
    expect(page.get_by_text("You may: pull.")).to_be_visible()
    assert page.get_by_role("button", name=re.compile("^Delete")).count() == 0
    assert page.get_by_role("link", name=re.compile("^Settings")).count() == 0
    assert page.get_by_role("link", name="Replication").count() == 0
    page.goto(f"{registry.url}/ui/manifest?name={REPO}&ref=1.0")
    expect(page.locator("table.layers")).to_be_visible()
    assert page.get_by_role("button", name="Delete manifest").count() == 0
    page.goto(f"{registry.url}/ui/history?name={REPO}&tag=stable")
    expect(page.locator("table.history tbody tr").first).to_be_visible()
    assert page.get_by_role("button", name=re.compile("^Roll back")).count() == 0
    shot(page, "reader-history")
    page.goto(f"{registry.url}/ui/namespace?ns=acme")
    expect(page.get_by_role("alert")).to_contain_text("Not allowed")
    assert page.get_by_role("button", name="Create robot account").count() == 0
    # Posting anyway, with the session and its CSRF token: the API says no.
    status = page.evaluate(
        """async (path) => {
            const session = await (await fetch('/api/v1/session')).json();
            const response = await fetch(path, {
                method: 'DELETE', headers: {'X-CSRF-Token': session.csrf_token}});
            return response.status;
        }""",
        f"/api/v1/repositories/{REPO}/tags/1.0",
    )
    assert status == 403
    context.close()


def test_changes_by_cookie_need_the_csrf_token(admin_page: Page, registry: UiRegistry):
    status = admin_page.evaluate(
        """async (path) => (await fetch(path, {method: 'DELETE'})).status""",
        f"/api/v1/repositories/{REPO}/tags/xss",
    )
    assert status == 403
    assert (
        httpx.get(f"{registry.url}/api/v1/repositories/{REPO}/tags/xss", auth=ADMIN).status_code
        == 200
    )


def test_sign_out(browser: Browser, registry: UiRegistry):
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, registry.url, ADMIN)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{registry.url}/ui/repository?name={REPO}")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert "next=" in page.url
    context.close()


def test_a_wrong_password_is_shown_without_a_browser_dialog(browser: Browser, registry: UiRegistry):
    context = browser.new_context()
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.goto(f"{registry.url}/ui/login")
    page.get_by_label("User name").fill(ADMIN[0])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid credentials")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    context.close()


def test_delete_a_tag_after_confirmation(admin_page: Page, registry: UiRegistry):
    made = httpx.put(
        f"{registry.url}/api/v1/repositories/{REPO}/tags/doomed", json={"source": "1.0"}, auth=ADMIN
    )
    assert made.status_code == 200, made.text
    page = admin_page
    page.goto(f"{registry.url}/ui/repository?name={REPO}")
    page.get_by_role("button", name="Delete tag doomed").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete tag").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted the tag doomed")
    expect(page.get_by_role("link", name="doomed", exact=True)).to_have_count(0)
    gone = httpx.get(f"{registry.url}/api/v1/repositories/{REPO}/tags/doomed", auth=ADMIN)
    assert gone.status_code == 404


def test_delete_a_manifest_after_confirmation(admin_page: Page, registry: UiRegistry):
    digest = registry.stable_now  # untagged since the rollback of stable
    made = httpx.put(
        f"{registry.url}/api/v1/repositories/{REPO}/tags/old", json={"source": digest}, auth=ADMIN
    )
    assert made.status_code == 200, made.text
    page = admin_page
    page.goto(f"{registry.url}/ui/manifest?name={REPO}&ref=old")
    page.get_by_role("button", name="Delete manifest").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete manifest").click()
    expect(page.get_by_role("heading", name=REPO, exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Deleted the manifest")
    expect(page.get_by_role("link", name="old", exact=True)).to_have_count(0)
    gone = httpx.get(f"{registry.url}/api/v1/repositories/{REPO}/manifests/{digest}", auth=ADMIN)
    assert gone.status_code == 404


def test_namespace_overview_usage_and_audit_log(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/namespace?ns=acme")
    expect(page.locator("table.members")).to_contain_text("rita")
    expect(page.get_by_role("img", name="Storage by repository", exact=True)).to_be_visible()
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("img", name="Storage by namespace")).to_be_visible()
    expect(page.get_by_role("img", name="Storage by namespace")).to_contain_text("acme")
    shot(page, "usage")
    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("table.audit tbody tr").first).to_be_visible()
    page.get_by_label("Action").fill("robot_add")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("acme")
    assert "action=robot_add" in page.url
    shot(page, "audit")


def test_sbom_package_list(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/manifest?name={REPO}&ref=1.0")
    page.get_by_role("link", name="Packages (SBOM)").click()
    packages = page.locator("table.packages tbody tr")
    expect(packages.first).to_be_visible()
    expect(page.locator("table.packages")).to_contain_text("requests")
    expect(page.locator("table.packages")).to_contain_text("libssl3")
    shot(page, "sbom")
    page.get_by_role("searchbox", name="Search").fill("requests")
    expect(packages).to_have_count(1)
    expect(packages.first).to_contain_text("2.19.0")


def test_a_multi_platform_index(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/repository?name={REPO}")
    row = page.locator("table.tags tbody tr", has=page.get_by_role("link", name="multi"))
    expect(row).to_contain_text("linux/amd64, linux/arm64")
    row.get_by_role("link", name="multi").click()
    platforms = page.locator("section", has=page.get_by_role("heading", name="Platforms"))
    expect(platforms.locator("tbody tr")).to_have_count(2)
    platforms.locator("tbody tr", has_text="linux/arm64").get_by_role("link").click()
    expect(page.locator("table.layers tbody tr")).to_have_count(2)
    expect(page.get_by_text("linux/arm64")).to_be_visible()
    page.goto(f"{registry.url}/ui/vulnerabilities?name={REPO}&ref=multi")
    expect(page.get_by_role("img", name="Findings by severity")).to_be_visible()
    expect(page.get_by_text("0 of 0 findings")).to_be_visible()


def test_keyboard_only_sign_in(browser: Browser, registry: UiRegistry):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{registry.url}/ui/login")
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.type(ADMIN[0])
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(ADMIN[1])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Repositories")).to_be_visible()
    page.keyboard.press("Tab")  # the page took the focus: the next stop is its first field
    expect(page.get_by_role("searchbox", name="Search")).to_be_focused()
    page.keyboard.type("app")
    expect(page.locator("table.repos tbody tr")).to_have_count(1)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Namespace")).to_be_focused()
    context.close()


def test_roles_rules_and_repository_visibility(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/namespace?ns=acme")
    page.get_by_label("Grant to", exact=True).select_option("user")
    page.get_by_label("User or team name").fill(READER[0])
    page.get_by_label("Role", exact=True).select_option("writer")
    page.locator("#grant-repo").fill(REPO)
    page.get_by_role("button", name="Grant role").click()
    members = page.locator("table.members tbody tr")
    expect(members.filter(has_text="writer")).to_have_count(1)
    access = httpx.get(f"{registry.url}/api/v1/repositories/{REPO}/access", auth=READER)
    assert "push" in access.json()["actions"]
    page.get_by_role("button", name=f"Remove the role of user {READER[0]} on {REPO}").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(members.filter(has_text="writer")).to_have_count(0)

    page.locator("#rule-pattern").fill("v*")
    page.get_by_role("button", name="Add rule").click()
    expect(page.locator("table.rules")).to_contain_text("v*")
    page.get_by_role("button", name="Remove the rule v*").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator("table.rules")).to_have_count(0)

    page.goto(f"{registry.url}/ui/repository?name={REPO}")
    page.get_by_label("Visibility", exact=True).select_option("public")
    page.get_by_role("button", name="Save visibility").click()
    expect(page.get_by_role("status")).to_contain_text(f"{REPO} is public now")
    page.get_by_label("Visibility", exact=True).select_option("inherit")
    page.get_by_role("button", name="Save visibility").click()
    expect(page.get_by_role("status")).to_contain_text(f"{REPO} is private now")


def test_teams_retention_quota_and_webhooks(admin_page: Page, registry: UiRegistry):
    page = admin_page
    page.goto(f"{registry.url}/ui/namespace?ns=acme")
    page.get_by_label("New team").fill("devs")
    page.get_by_role("button", name="Add team").click()
    expect(page.locator("table.teams")).to_contain_text("devs")
    page.get_by_label("User", exact=True).fill(READER[0])
    page.get_by_role("button", name="Add to team").click()
    expect(page.locator("table.teams tbody tr", has_text="devs")).to_contain_text(READER[0])

    page.get_by_label("Tags to clean up").fill("pr-*")
    page.get_by_label("Keep last").fill("3")
    page.get_by_role("button", name="Add policy").click()
    expect(page.locator("table.retention")).to_contain_text("pr-*")
    page.get_by_role("button", name="Remove the policy pr-*").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator("table.retention")).to_have_count(0)

    page.get_by_label("Quota (e.g. 10GiB)").fill("1GiB")
    page.get_by_role("button", name="Set quota").click()
    expect(page.locator("section", has_text="Storage").locator(".facts")).to_contain_text("1.0 GiB")
    page.get_by_role("button", name="Remove the quota").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator("section", has_text="Storage").locator(".facts")).to_contain_text("none")

    page.get_by_label("Receiver URL").fill("https://ci.example/hook")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("table.webhooks")).to_contain_text("https://ci.example/hook")
    expect(page.locator("#webhook-secret")).to_contain_text("shown only now")
    page.get_by_role("button", name="Remove the webhook https://ci.example/hook").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator("table.webhooks")).to_have_count(0)


def test_replication_page_for_registry_admins(admin_page: Page, registry: UiRegistry):
    with httpx.Client(base_url=f"{registry.url}/api/v1/replication", auth=ADMIN) as api:
        endpoint = {"name": "dr-site", "url": "https://registry.dr.example"}
        assert api.post("/endpoints", json=endpoint).status_code == 201
        rule = {"name": "to-dr", "endpoint": "dr-site", "direction": "push", "source": "acme/*"}
        assert api.post("/rules", json=rule).status_code == 201
    page = admin_page
    page.goto(f"{registry.url}/ui/")
    page.get_by_role("link", name="Replication").click()
    expect(page.locator("table.endpoints")).to_contain_text("https://registry.dr.example")
    expect(page.locator("table.rules tbody tr")).to_contain_text("acme/*")
    expect(page.get_by_role("button", name="Run the rule to-dr now")).to_be_visible()


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "/\\evil.example/x", "https://evil.example/"]
)
def test_sign_in_never_redirects_to_another_site(
    browser: Browser, registry: UiRegistry, target: str
):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{registry.url}/ui/login?{urlencode({'next': target})}")
    page.get_by_label("User name").fill(READER[0])
    page.get_by_label("Password").fill(READER[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Repositories")).to_be_visible()
    assert page.url.startswith(registry.url)
    context.close()


def test_a_repository_with_5000_tags_paginates(admin_page: Page, registry: UiRegistry):
    many = "acme/many"
    made = httpx.put(
        f"{registry.url}/api/v1/repositories/{many}/tags/t0000",
        json={"source": f"{REPO}:1.0"},
        auth=ADMIN,
    )
    assert made.status_code == 200, made.text
    # The other 4,999 straight into the metadata store: 5,000 pushes would take minutes.
    engine = create_sql_engine(f"sqlite:///{registry.data_dir / 'meta.db'}")
    try:
        meta = SqlMetadataStore(engine)
        origin = ChangeOrigin("admin", "retag")
        started = time.monotonic()
        for number in range(1, 5000):
            meta.tag_manifest(many, f"t{number:04}", registry.app_digest, origin)
        print(f"5000 tags in {time.monotonic() - started:.1f} s")
    finally:
        engine.dispose()
    page = admin_page
    started = time.monotonic()
    page.goto(f"{registry.url}/ui/repository?name={many}")
    tags = page.locator("table.tags tbody tr")
    expect(tags).to_have_count(50)
    expect(tags.first).to_contain_text("t0000")
    assert time.monotonic() - started < 10  # generous: CI machines are busy
    for number in (2, 3, 4):
        page.get_by_role("button", name="Next page").click()
        expect(page.locator("table.tags caption")).to_contain_text(f"page {number}")
    expect(tags.first).to_contain_text("t0150")
    page.get_by_role("button", name="Previous page").click()
    expect(tags.first).to_contain_text("t0100")
    page.get_by_role("searchbox", name="Search tags").fill("t49")
    expect(tags).to_have_count(50)
    expect(tags.first).to_contain_text("t4900")
    page.get_by_role("button", name="Next page").click()
    expect(tags).to_have_count(50)
    expect(tags.first).to_contain_text("t4950")
    assert page.get_by_role("button", name="Next page").count() == 0
    page.get_by_role("searchbox", name="Search tags").fill("nothing")
    expect(page.get_by_text("No tags match.")).to_be_visible()
    last = httpx.get(
        f"{registry.url}/api/v1/repositories/{many}/tag-details",
        params={"n": 50, "last": "t4949"},
        auth=ADMIN,
    ).json()
    assert [t["name"] for t in last["tags"]][-1] == "t4999" and last["next"] is None

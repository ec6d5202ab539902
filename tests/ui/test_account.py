"""The account page in Debian's chromium: personal access tokens (the secret shown once,
revoking) and web UI sessions (listing, ending one, signing out everywhere else), and
sign-out ending the session on the server."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from cargohold.http.api.session import COOKIE

from .conftest import READER, REPO, UiRegistry
from .test_browser import shot, sign_in

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def signed_in(browser: Browser, registry: UiRegistry) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a script opened a dialog: {dialog.message}"))
    sign_in(page, registry.url, READER)
    return context, page


def open_account(page: Page) -> None:
    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name=f"Account of {READER[0]}")).to_be_visible()


def test_create_use_and_revoke_a_personal_access_token(browser: Browser, registry: UiRegistry):
    context, page = signed_in(browser, registry)
    try:
        open_account(page)
        page.get_by_label("Token name").fill("laptop")
        page.get_by_label("Expires in days").fill("30")
        page.get_by_role("button", name="Create token").click()
        secret_box = page.locator("#token-secret")
        expect(secret_box).to_contain_text("shown only now")
        token = secret_box.locator(".copy code").text_content()
        assert token
        expect(page.locator("table.tokens")).to_contain_text("laptop")
        expect(page.locator("table.tokens tr", has_text="laptop")).to_contain_text("active")
        tags = f"{registry.url}/v2/{REPO}/tags/list"
        assert httpx.get(tags, auth=(READER[0], token)).status_code == 200
        shot(page, "account")
        page.get_by_role("button", name="I have stored it").click()
        expect(secret_box).to_be_empty()

        page.get_by_role("button", name="Revoke the token laptop").click()
        page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("status")).to_contain_text("Token laptop revoked")
        expect(page.locator("table.tokens tr", has_text="laptop")).to_contain_text("revoked")
        expect(page.get_by_role("button", name="Revoke the token laptop")).to_have_count(0)
        assert httpx.get(tags, auth=(READER[0], token)).status_code == 401
    finally:
        context.close()


def test_end_other_sessions_from_the_account_page(browser: Browser, registry: UiRegistry):
    mine, page = signed_in(browser, registry)
    other, other_page = signed_in(browser, registry)
    try:
        open_account(page)
        expect(page.locator("table.sessions")).to_contain_text("this session")
        page.get_by_role("button", name="Sign out everywhere else").click()
        page.get_by_role("dialog").get_by_role("button", name="Sign out elsewhere").click()
        expect(page.get_by_role("status")).to_contain_text("Ended")
        expect(page.locator("table.sessions tbody tr")).to_have_count(1)
        other_page.reload()
        expect(other_page.get_by_role("heading", name="Sign in")).to_be_visible()

        # One more session, ended on its own.
        third, third_page = signed_in(browser, registry)
        try:
            page.reload()
            expect(page.locator("table.sessions tbody tr")).to_have_count(2)
            page.locator("table.sessions").get_by_role("button", name="End").click()
            page.get_by_role("dialog").get_by_role("button", name="End session").click()
            expect(page.get_by_role("status")).to_contain_text("Session ended")
            expect(page.locator("table.sessions tbody tr")).to_have_count(1)
            third_page.get_by_role("link", name="Namespaces").click()
            expect(third_page.get_by_role("heading", name="Sign in")).to_be_visible()
        finally:
            third.close()
        # The page that did it is still signed in.
        page.get_by_role("link", name="Namespaces").click()
        expect(page.get_by_role("heading", name="Namespaces")).to_be_visible()
    finally:
        mine.close()
        other.close()


def test_a_copied_cookie_is_useless_after_signing_out(browser: Browser, registry: UiRegistry):
    context, page = signed_in(browser, registry)
    try:
        copied = next(c["value"] for c in context.cookies() if c["name"] == COOKIE)
        me = f"{registry.url}/api/v1/users/me"
        assert httpx.get(me, cookies={COOKIE: copied}).status_code == 200
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert httpx.get(me, cookies={COOKIE: copied}).status_code == 401
    finally:
        context.close()

"""A first key in a real browser: "Use the sandbox" on Home, and every page is filled at once,
without a refresh button or a wait for the worker (issue 14 §2)."""

import pytest
from playwright.sync_api import expect

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.vault.models import ApiKey
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_use_the_sandbox_fills_models_generate_chat_credits_and_home(
    page_as, live_server, settings, screenshot
):
    settings.RIVYA_PUBLIC_URL = live_server.url
    settings.RIVYA_SANDBOX_RATE_LIMIT = 10_000
    page = page_as(Role.OWNER, "owner")
    page.goto("/")
    page.get_by_role("button", name="Use the sandbox").click()
    if page.locator("#reauth-password").count():
        page.locator("#reauth-password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm and continue").click()
    expect(page.locator(".messages, [role=status]").first).to_contain_text("Sandbox")
    assert ApiKey.objects.filter(environment="sandbox").count() == 1

    page.goto("/models/")
    expect(page.locator(".model-card").first).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("The catalogue is empty")
    page.goto("/generate/")
    expect(page.locator("textarea[name=prompt]")).to_be_visible()
    page.goto("/chat/")
    expect(page.locator("body")).not_to_contain_text("no chat models yet")
    page.goto("/credits/")
    expect(page.locator("body")).not_to_contain_text("No balance read yet")
    expect(page.locator("body")).to_contain_text("1,000")
    page.goto("/")
    expect(page.locator("body")).not_to_contain_text("not read yet")
    expect(page.locator("body")).not_to_contain_text("No balance read yet")
    screenshot(page, "home-after-sandbox")

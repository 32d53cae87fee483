"""A screenshot of every account page, light and dark, desktop and phone, under test-output/."""

import re

import pytest
from playwright.sync_api import Page, expect

from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.models import Role, User
from tests.browser.conftest import SCREENSHOTS
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    "setup",
    "setup-errors",
    "login",
    "login-errors",
    "dashboard",
    "team",
    "invite-created",
    "invite-accept",
    "audit",
    "403",
    "404",
]


def fill_setup(page: Page, confirmation: str) -> None:
    page.get_by_label("Username").fill("ada")
    page.get_by_label("E-mail").fill("ada@example.test")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(confirmation)
    page.get_by_role("button", name="Create owner account").click()


def test_every_account_page_is_captured(contexts, page, page_as, screenshot):
    page.goto("/setup/")
    screenshot(page, "setup")
    fill_setup(page, "not-the-same-password")
    expect(page.get_by_text("The two password fields didn\u2019t match.")).to_be_visible()
    expect(page.get_by_label("Password confirmation")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Password confirmation")).to_be_focused()
    screenshot(page, "setup-errors")
    fill_setup(page, PASSWORD)
    expect(page.get_by_role("heading", name="Hello, ada")).to_be_visible()
    screenshot(page, "dashboard")

    for role in (Role.ADMIN, Role.OPERATOR, Role.VIEWER):
        User.objects.create_user(role, f"{role}@example.test", PASSWORD, role=role)
        record(
            User.objects.get(username="ada"), "member.role_changed", role, old="viewer", new=role
        )
    page.goto("/accounts/team/")
    page.get_by_label("E-mail").fill("new.teammate@example.test")
    page.get_by_role("button", name="Create invitation link").click()
    screenshot(page, "invite-created")
    link = page.get_by_label("Invitation link").input_value()
    page.get_by_role("link", name="Back to the team").click()
    expect(page.get_by_text("new.teammate@example.test")).to_be_visible()
    screenshot(page, "team")
    page.goto("/accounts/audit/")
    screenshot(page, "audit")
    page.goto("/no-such-page/")
    screenshot(page, "404")

    visitor = contexts.open().new_page()
    visitor.goto(link)
    screenshot(visitor, "invite-accept")
    visitor.goto("/accounts/login/")
    screenshot(visitor, "login")
    visitor.get_by_label("Username").fill("ada")
    visitor.get_by_label("Password").fill("wrong-password")
    visitor.get_by_role("button", name="Sign in").click()
    expect(visitor.get_by_role("alert")).to_contain_text("correct username and password")
    screenshot(visitor, "login-errors")

    viewer = page_as(Role.VIEWER)
    viewer.goto("/accounts/team/")
    expect(viewer.get_by_role("heading", name=re.compile("have access"))).to_be_visible()
    screenshot(viewer, "403")

    for name in PAGES:
        for variant in ("desktop-light", "desktop-dark", "phone-light", "phone-dark"):
            assert (SCREENSHOTS / f"{name}-{variant}.png").stat().st_size > 5000

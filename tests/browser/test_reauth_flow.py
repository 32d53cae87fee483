"""Re-authentication in a real browser: a stale session confirms the password before a grant
page opens and again before the changed grant is saved, and the typed form survives; the same
in Urdu for disabling a key."""

import re
import time

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import Page, expect

from rivya_dashboard.accounts import reauth
from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.vault.models import KeyGrant
from tests.browser.conftest import store_sandbox_key
from tests.conftest import PASSWORD, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def make_stale(page: Page) -> None:
    """Move the browser's last password confirmation an hour back, on the server."""
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key=cookie["value"])
    session[reauth.AUTH_AT_KEY] = int(time.time()) - 3600
    session.save()


def test_a_grant_change_waits_for_the_password_and_keeps_the_form(live_server, page_as, screenshot):
    page = page_as(Role.ADMIN)
    admin = User.objects.get(username="admin")
    key = store_sandbox_key(admin, live_server.url, raw=issue_key(), label="Team")
    grant = KeyGrant.objects.create(
        member=make_member(Role.OPERATOR, "opal"), key=key, actions=["browse"]
    )
    make_stale(page)

    page.goto(f"/grants/{grant.pk}/")
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page).to_have_url(re.compile(rf"/grants/{grant.pk}/$"))

    page.get_by_label("Credit cap per day").fill("40")
    make_stale(page)
    page.get_by_role("button", name="Save the grant").click()
    expect(page.get_by_text("What you entered in the form is kept")).to_be_visible()
    screenshot(page, "reauth-confirm")
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_role("alert")).to_contain_text("That password is not right")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm and continue").click()

    expect(page).to_have_url(re.compile(rf"/keys/{key.pk}/$"))
    grant.refresh_from_db()
    assert grant.daily_cap == 40


def test_disabling_a_key_asks_for_the_password_in_urdu(live_server, contexts, screenshot):
    admin = make_member(Role.ADMIN, "zara")
    User.objects.filter(pk=admin.pk).update(language="ur")
    key = store_sandbox_key(admin, live_server.url, raw=issue_key(), label="Team")
    page = contexts.open(admin, locale="ur-PK").new_page()
    page.goto(f"/keys/{key.pk}/")
    make_stale(page)

    page.get_by_role("button", name="غیر فعال کریں").click()
    expect(page.get_by_role("heading", name="اپنے پاس ورڈ کی تصدیق کریں")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    screenshot(page, "ur-reauth-confirm")
    page.locator("#reauth-password").fill(PASSWORD)
    page.get_by_role("button", name="تصدیق کریں اور جاری رکھیں").click()

    expect(page).to_have_url(re.compile(rf"/keys/{key.pk}/$"))
    key.refresh_from_db()
    assert not key.is_active

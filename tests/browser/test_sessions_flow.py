"""Signed-in sessions in a real browser: a member sees the laptop and the phone, signs the phone
out, and the phone is at the sign-in page on its next click; the same with Urdu labels."""

import re

import pytest
from playwright.sync_api import expect

from rivya_dashboard.accounts.models import Role, User
from tests.browser.conftest import PHONE
from tests.conftest import make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_a_member_signs_their_phone_out(contexts, screenshot):
    member = make_member(Role.OPERATOR, "opal")
    laptop = contexts.open(member).new_page()
    phone = contexts.open(member, viewport=PHONE, user_agent=IPHONE).new_page()
    phone.goto("/")
    laptop.goto("/")

    laptop.get_by_role("link", name="opal").click()
    sessions = laptop.locator(".session-row")
    expect(sessions).to_have_count(2)
    expect(sessions.filter(has_text="This session")).to_contain_text("Chrome on Linux")
    screenshot(laptop, "sessions")
    sessions.filter(has_text="Safari on iPhone").get_by_role("button", name="Sign out").click()
    expect(laptop.get_by_text("That session is signed out.")).to_be_visible()
    expect(laptop.locator(".session-row")).to_have_count(1)

    phone.reload()
    expect(phone).to_have_url(re.compile(r"/accounts/login/"))


def test_signing_out_other_sessions_in_urdu(contexts, screenshot):
    member = make_member(Role.ADMIN, "zara")
    User.objects.filter(pk=member.pk).update(language="ur")
    here = contexts.open(member, locale="ur-PK").new_page()
    there = contexts.open(member, user_agent=IPHONE).new_page()
    there.goto("/")

    here.goto("/accounts/security/")
    expect(here.get_by_role("heading", name="سائن اِن سیشن")).to_be_visible()
    expect(here.locator(".session-row")).to_have_count(2)
    expect(here.locator(".session-row").filter(has_text="Safari")).to_contain_text("iPhone")
    screenshot(here, "ur-sessions")
    here.get_by_role("button", name="باقی تمام سیشن سائن آؤٹ کریں").click()
    expect(here.get_by_text("دوسرا سیشن سائن آؤٹ کر دیا گیا")).to_be_visible()

    there.reload()
    expect(there).to_have_url(re.compile(r"/accounts/login/"))

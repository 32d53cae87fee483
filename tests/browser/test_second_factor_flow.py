"""The second factor in a real browser: a new install's owner is led to set up an authenticator
right after creating the account, keeps the recovery codes, and proves the factor at the next
sign-in; passkeys through Chromium's virtual authenticator (DevTools protocol), added, used to
sign in and to confirm a sensitive action; sign-ins in Urdu."""

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from rivya_dashboard.accounts.models import AuditEvent, Role, User
from tests.browser.test_reauth_flow import make_stale
from tests.conftest import PASSWORD, make_member
from tests.views.test_second_factor import give_authenticator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Page, username: str, *, button: str = "Sign in") -> None:
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name=button).click()


def test_a_new_owner_enrols_at_once_and_proves_it_at_the_next_sign_in(
    settings, page: Page, screenshot
):
    settings.RIVYA_MFA_REQUIRED = True
    page.goto("/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("E-mail").fill("ada@example.test")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create owner account").click()

    expect(page).to_have_url(re.compile(r"/accounts/security/"))
    expect(page.get_by_role("alert")).to_contain_text("Your team requires a second factor")
    page.goto("/keys/")
    expect(page).to_have_url(re.compile(r"/accounts/security/"))
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.locator(".qr-code svg")).to_be_visible()
    screenshot(page, "mfa-enrol")
    page.get_by_text("Can't scan? Enter this key by hand").click()
    secret = page.locator(".secret-key").inner_text().strip()
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_text("That code does not match")).to_be_visible()
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()

    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    screenshot(page, "mfa-recovery-codes")
    page.get_by_role("link", name="I saved them — continue").click()
    expect(page.get_by_text("10 unused codes left.")).to_be_visible()
    screenshot(page, "mfa-my-security")
    page.get_by_role("navigation", name="Main").get_by_text("Admin", exact=True).click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    expect(page).to_have_url(re.compile(r"/keys/$"))

    page.get_by_role("button", name="Sign out").first.click()
    sign_in(page, "ada")
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    screenshot(page, "mfa-verify")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Hello, ada")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_text("Admin", exact=True).click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Security").click()
    expect(page.get_by_label("Owners and admins must use a second factor")).to_be_checked()
    screenshot(page, "mfa-security-settings")


def test_signing_in_with_a_second_factor_in_urdu(contexts, screenshot):
    member = make_member(Role.ADMIN, "zara")
    User.objects.filter(pk=member.pk).update(language="ur")
    totp = give_authenticator(member)
    page = contexts.open(locale="ur-PK").new_page()

    sign_in(page, "zara", button="سائن ان")
    expect(page.get_by_role("heading", name="تصدیق کریں کہ یہ آپ ہی ہیں")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    page.get_by_label("کوڈ").fill("000000")
    page.get_by_role("button", name="جاری رکھیں").click()
    expect(page.get_by_text("یہ کوڈ درست نہیں")).to_be_visible()
    screenshot(page, "ur-mfa-verify")
    page.get_by_label("کوڈ").fill(totp.now())
    page.get_by_role("button", name="جاری رکھیں").click()
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto("/accounts/security/")
    expect(page.get_by_role("heading", name="آپ کی سیکیورٹی")).to_be_visible()
    screenshot(page, "ur-mfa-my-security")


def virtual_authenticator(page: Page) -> None:
    """A platform authenticator with user verification, in this page's browser (DevTools)."""
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )


def test_a_passkey_is_added_then_signs_in_and_confirms_a_sensitive_action(
    settings, contexts, screenshot
):
    settings.RIVYA_MFA_REQUIRED = True
    owner = make_member(Role.OWNER, "ada")
    page = contexts.open(owner).new_page()
    virtual_authenticator(page)

    page.goto("/keys/")
    expect(page).to_have_url(re.compile(r"/accounts/security/"))
    page.get_by_role("link", name="Add a passkey").click()
    page.get_by_label("Name").fill("Work laptop")
    screenshot(page, "passkey-add")
    page.get_by_role("button", name="Add passkey").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    page.get_by_role("link", name="I saved them — continue").click()
    expect(page.locator("#passkeys-title + .session-row")).to_contain_text("Work laptop")
    assert owner.passkeys.get().transports == ["internal"]

    page.get_by_role("button", name="Sign out").first.click()
    sign_in(page, "ada")
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    screenshot(page, "passkey-verify")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("heading", name="Hello, ada")).to_be_visible()
    assert owner.passkeys.get().last_used_at is not None

    make_stale(page)
    page.goto("/keys/add/")
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(re.compile(r"/keys/add/$"))
    event = AuditEvent.objects.filter(action="reauth.confirmed").latest("at")
    assert event.detail == {"method": "passkey"}


def test_a_passkey_in_urdu(contexts, screenshot):
    member = make_member(Role.OPERATOR, "zara")
    User.objects.filter(pk=member.pk).update(language="ur")
    page = contexts.open(member, locale="ur-PK").new_page()
    virtual_authenticator(page)

    page.goto("/accounts/security/passkeys/add/")
    page.get_by_label("نام").fill("فون")
    page.get_by_role("button", name="پاس کی شامل کریں").click()
    expect(page.get_by_role("heading", name="آپ کے بحالی کوڈ")).to_be_visible()
    page.goto("/accounts/security/")
    expect(page.get_by_text("فون")).to_be_visible()
    screenshot(page, "ur-passkeys")

    page.get_by_role("button", name="سائن آؤٹ").first.click()
    sign_in(page, "zara", button="سائن ان")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    page.get_by_role("button", name="پاس کی استعمال کریں").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("link", name="zara")).to_be_visible()

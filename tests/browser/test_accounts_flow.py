"""The first day of a team, in a real browser: setup, invite, accept, roles and sign-out."""

import re

import pytest
from playwright.sync_api import Page, expect

from rivya_dashboard.accounts.models import Role, User
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def create_owner(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup/$"))
    page.get_by_label("Username").fill("ada")
    page.get_by_label("E-mail").fill("ada@example.test")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create owner account").click()
    expect(page.get_by_role("heading", name="Hello, ada")).to_be_visible()


def invite_operator(page: Page) -> str:
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_text("Admin", exact=True).click()
    nav.get_by_role("link", name="Team").click()
    page.get_by_label("E-mail").fill("opal@example.test")
    page.get_by_label("Role", exact=True).select_option("operator")
    page.get_by_role("button", name="Create invitation link").click()
    expect(page.get_by_role("heading", name="Invitation created")).to_be_visible()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.get_by_label("Invitation link").input_value()
    return copied


def test_setup_invite_accept_and_roles(contexts, page):
    owner_page = contexts.open(permissions=["clipboard-read", "clipboard-write"]).new_page()
    create_owner(owner_page)
    link = invite_operator(owner_page)

    invitee = page
    invitee.goto(link)
    expect(invitee.get_by_text("You were invited as Operator")).to_be_visible()
    expect(invitee.get_by_label("E-mail")).to_be_disabled()
    invitee.get_by_label("Username").fill("opal")
    invitee.get_by_label("Password", exact=True).fill(PASSWORD)
    invitee.get_by_label("Password confirmation").fill(PASSWORD)
    invitee.get_by_role("button", name="Create my account").click()
    expect(invitee.get_by_text("Welcome to the team, opal.")).to_be_visible()
    nav = invitee.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Team")).to_have_count(0)

    # Sign out and back in through the form.
    invitee.get_by_role("button", name="Sign out").click()
    expect(invitee).to_have_url(re.compile(r"/accounts/login/$"))
    invitee.get_by_label("Username").fill("opal")
    invitee.get_by_label("Password").fill(PASSWORD)
    invitee.get_by_role("button", name="Sign in").click()
    expect(invitee.get_by_role("heading", name="Hello, opal")).to_be_visible()

    # The owner makes opal a viewer; the team page is then closed to her.
    owner_page.goto("/accounts/team/")
    owner_page.get_by_label("Role of opal").select_option("viewer")
    owner_page.get_by_role("row", name=re.compile("opal")).get_by_role(
        "button", name="Save"
    ).click()
    expect(owner_page.get_by_text("opal is now Viewer.")).to_be_visible()
    assert User.objects.get(username="opal").role == Role.VIEWER
    invitee.goto("/accounts/team/")
    expect(invitee.get_by_role("heading", name="You don't have access to this")).to_be_visible()

    # Deactivation asks first, then signs opal out on her next request.
    owner_page.on("dialog", lambda dialog: dialog.accept())
    row = owner_page.get_by_role("row", name=re.compile("opal"))
    row.get_by_role("button", name="Deactivate").click()
    expect(owner_page.get_by_text("opal is deactivated and signed out.")).to_be_visible()
    invitee.goto("/")
    expect(invitee).to_have_url(re.compile(r"/accounts/login/"))


def test_a_used_invitation_link_shows_why_it_cannot_be_used(contexts, page):
    owner_page = contexts.open(permissions=["clipboard-read", "clipboard-write"]).new_page()
    create_owner(owner_page)
    link = invite_operator(owner_page)
    owner_page.goto("/accounts/team/")
    owner_page.get_by_role("button", name="Revoke").click()
    page.goto(link)
    expect(page.get_by_role("heading", name="This invitation can't be used")).to_be_visible()
    expect(page.get_by_text("revoked this invitation")).to_be_visible()

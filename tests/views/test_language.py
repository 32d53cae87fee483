"""The console's language: the browser's Accept-Language by default, a member's choice above it."""

from datetime import date
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import formats, translation

from rivya_dashboard.accounts.models import Role, User

pytestmark = pytest.mark.django_db

URDU_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "ur-PK,ur;q=0.9,en;q=0.5"}


def html_tag(response) -> str:
    content = response.content.decode()
    return content[content.index("<html") : content.index(">", content.index("<html")) + 1]


def test_it_follows_the_browser_until_the_member_chooses(clients):
    english = clients[Role.VIEWER].get(reverse("home"))
    assert html_tag(english) == '<html lang="en" dir="ltr">'
    urdu = clients[Role.VIEWER].get(reverse("home"), **URDU_BROWSER)
    assert html_tag(urdu) == '<html lang="ur" dir="rtl">'
    assert urdu["Content-Language"] == "ur"
    assert "Accept-Language" in urdu["Vary"]


def test_it_saves_the_members_choice_above_the_browser(clients, members):
    client = clients[Role.OPERATOR]
    response = client.post(reverse("language"), {"language": "ur", "next": "/credits/"})
    assert response.status_code == 302
    assert response["Location"] == "/credits/"
    assert User.objects.get(pk=members[Role.OPERATOR].pk).language == "ur"

    # Another browser, set to English, with no cookie: the saved choice still wins.
    elsewhere = Client()
    elsewhere.force_login(members[Role.OPERATOR])
    page = elsewhere.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-GB,en")
    assert html_tag(page) == '<html lang="ur" dir="rtl">'
    assert "السلام علیکم، \u2068operator\u2069" in page.content.decode()


def test_a_member_can_switch_back_to_english(clients, members):
    client = clients[Role.VIEWER]
    client.post(reverse("language"), {"language": "ur"})
    client.post(reverse("language"), {"language": "en"})
    assert User.objects.get(pk=members[Role.VIEWER].pk).language == "en"
    page = client.get(reverse("home"), **URDU_BROWSER)
    assert html_tag(page) == '<html lang="en" dir="ltr">'


def test_a_visitor_on_the_sign_in_page_gets_a_cookie(db, members):
    visitor = Client()
    response = visitor.post(reverse("language"), {"language": "ur", "next": reverse("login")})
    assert response["Location"] == reverse("login")
    cookie = visitor.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "ur"
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    page = visitor.get(reverse("login"))
    assert html_tag(page) == '<html lang="ur" dir="rtl">'
    assert "سائن ان" in page.content.decode()


def test_an_unknown_language_changes_nothing(clients, members):
    client = clients[Role.VIEWER]
    response = client.post(reverse("language"), {"language": "xx", "next": "/"})
    assert response.status_code == 302
    assert User.objects.get(pk=members[Role.VIEWER].pk).language == ""
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies


def test_it_refuses_to_send_the_member_off_site(clients):
    response = clients[Role.VIEWER].post(
        reverse("language"), {"language": "ur", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_the_switcher_offers_the_other_language_and_comes_back_here(clients):
    page = clients[Role.VIEWER].get(reverse("keys")).content.decode()
    assert 'action="/language/"' in page
    assert 'value="ur" lang="ur" dir="rtl"' in page
    assert ">اردو</button>" in page
    assert 'name="next" value="/keys/"' in page


def test_the_switcher_works_before_setup(db):
    visitor = Client()
    response = visitor.post(reverse("language"), {"language": "ur", "next": reverse("setup")})
    assert response["Location"] == reverse("setup")
    page = visitor.get(reverse("setup"))
    assert html_tag(page) == '<html lang="ur" dir="rtl">'


def test_urdu_numbers_and_dates_use_the_urdu_formats():
    with translation.override("ur"):
        assert formats.date_format(date(2026, 3, 5)) == "5 مارچ 2026"
        assert formats.number_format(1234567.5, 1, force_grouping=True) == "1,234,567.5"
    with translation.override("en"):
        assert formats.date_format(date(2026, 3, 5)) == "March 5, 2026"


def test_management_commands_speak_the_active_language(db):
    errors = StringIO()
    with translation.override("ur"):
        call_command("sandbox_key", stdout=StringIO(), stderr=errors)
    assert "سینڈباکس کلید بن گئی" in errors.getvalue()

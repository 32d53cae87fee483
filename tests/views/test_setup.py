"""First-run setup: the owner account is created once, before anything else is reachable."""

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter

from rivya_dashboard.accounts.models import AuditEvent, Role, User
from tests.conftest import PASSWORD, make_member

pytestmark = pytest.mark.django_db

SETUP = "/setup/"


def owner_form(**overrides: str) -> dict[str, str]:
    return {
        "username": "ada",
        "email": "ada@example.test",
        "password1": PASSWORD,
        "password2": PASSWORD,
        **overrides,
    }


@pytest.mark.parametrize(
    "path", ["/", "/accounts/login/", "/accounts/team/", "/accounts/audit/", "/no-such-page/"]
)
def test_it_sends_every_page_to_setup_before_an_owner_exists(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == reverse("setup")


def test_it_keeps_machine_endpoints_reachable_before_setup(client):
    assert client.get("/healthz").status_code == 200


def test_it_shows_the_setup_form(client):
    response = client.get(SETUP)
    assert response.status_code == 200
    assert b"Create owner account" in response.content
    assert b'<label for="id_password1"' in response.content


def test_it_creates_the_owner_and_signs_them_in(client):
    response = client.post(SETUP, owner_form())
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    owner = User.objects.get()
    assert (owner.username, owner.email, owner.role) == ("ada", "ada@example.test", Role.OWNER)
    assert owner.check_password(PASSWORD)
    assert AuditEvent.objects.filter(action="member.owner_created", target="ada").count() == 1
    home = client.get("/")
    assert home.status_code == 200
    assert b"Your owner account is ready" in home.content


def test_error_reports_never_show_the_passwords(client):
    response = client.post(SETUP, owner_form(password2="not the same"))
    reported = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert PASSWORD not in str(reported) and "not the same" not in str(reported)
    assert reported["username"] == "ada"


def test_it_closes_setup_once_a_member_exists(client):
    make_member(Role.VIEWER, "first")
    assert client.get(SETUP)["Location"] == reverse("home")
    response = client.post(SETUP, owner_form())
    assert response.status_code == 302
    assert list(User.objects.values_list("username", flat=True)) == ["first"]
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password1": "short-1", "password2": "short-1"}, "at least 10 characters"),
        ({"password1": "1234567890", "password2": "1234567890"}, "entirely numeric"),
        ({"password1": "password123", "password2": "password123"}, "too common"),
        ({"password1": "ada@example.test", "password2": "ada@example.test"}, "too similar"),
        ({"password2": PASSWORD + "x"}, "didn\u2019t match"),
        ({"email": "not-an-address"}, "valid email address"),
        ({"username": "has space"}, "valid username"),
    ],
)
def test_it_rejects_bad_owner_details_and_creates_nothing(client, overrides, message):
    response = client.post(SETUP, owner_form(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert b'aria-invalid="true"' in response.content
    assert not User.objects.exists()
    assert not AuditEvent.objects.exists()


def test_createsuperuser_makes_an_owner(client, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", interactive=False, username="root", email="root@example.test")
    assert User.objects.get(username="root").role == Role.OWNER
    assert client.get(SETUP)["Location"] == reverse("home")


def test_deactivating_every_member_does_not_reopen_setup(client):
    make_member(Role.OWNER, "gone")
    User.objects.update(is_active=False)
    assert client.get("/")["Location"].startswith(reverse("login"))
    assert client.post(SETUP, owner_form()).status_code == 302
    assert not User.objects.filter(username="ada").exists()

"""Sign-in, lock-out after repeated failures, sign-out, and the session's idle and total limits."""

import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.accounts.forms import PURGE_LOCK, do_purge_failed_logins, lockout
from rivya_dashboard.accounts.middleware import SEEN_KEY, STARTED_KEY
from rivya_dashboard.accounts.models import AuditEvent, FailedLogin, Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
TEST_CLIENT_IP = "127.0.0.1"  # what Django's test Client sends as REMOTE_ADDR


def sign_in(client: Client, username: str, password: str = PASSWORD, **extra: str):
    return client.post(LOGIN, {"username": username, "password": password, **extra})


def test_it_signs_in_with_a_new_session_id(members):
    client = Client()
    before = client.session
    before["probe"] = "anonymous"
    before.save()
    client.cookies[django_settings.SESSION_COOKIE_NAME] = before.session_key
    response = sign_in(client, "viewer")
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    after = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert after != before.session_key
    assert not Session.objects.filter(session_key=before.session_key).exists()
    assert STARTED_KEY in client.session
    assert client.get("/").status_code == 200


def test_it_follows_next_after_sign_in(members):
    client = Client()
    response = sign_in(client, "owner", next="/accounts/team/")
    assert response["Location"] == "/accounts/team/"


def test_it_sends_a_signed_in_member_away_from_the_login_page(clients):
    assert clients[Role.VIEWER].get(LOGIN)["Location"] == reverse("home")


def test_it_rejects_a_wrong_password_with_a_message(members):
    client = Client()
    response = sign_in(client, "viewer", "wrong-password")
    assert response.status_code == 400
    assert "enter a correct username and password" in response.content.decode()
    assert FailedLogin.objects.filter(username="viewer").count() == 1
    assert client.get("/").status_code == 302


def test_it_locks_the_account_after_repeated_failures(members, settings):
    settings.RIVYA_LOGIN_MAX_FAILURES = 3
    client = Client()
    for _ in range(3):
        assert sign_in(client, "viewer", "wrong-password").status_code == 400
    # Even the right password is refused while the lock holds.
    response = sign_in(client, "viewer")
    assert response.status_code == 429
    assert "Too many failed sign-ins for this account. Try again in 1 minute." in (
        response.content.decode()
    )
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(action="login.locked", target="viewer").count() == 1
    # Locking one account leaves the others alone.
    assert sign_in(Client(), "operator").status_code == 302


def test_the_lock_grows_with_each_failure_past_the_limit(members, settings):
    settings.RIVYA_LOGIN_MAX_FAILURES = 2
    waits = []
    for _ in range(4):
        FailedLogin.objects.create(username="viewer", ip=TEST_CLIENT_IP)
        lock = lockout("viewer", TEST_CLIENT_IP)
        waits.append(round(lock.remaining.total_seconds() / 60) if lock else 0)
    assert waits == [0, 1, 2, 4]


def test_it_lets_the_member_in_once_the_lock_has_passed(members, settings):
    settings.RIVYA_LOGIN_MAX_FAILURES = 2
    client = Client()
    for _ in range(2):
        sign_in(client, "viewer", "wrong-password")
    assert sign_in(client, "viewer").status_code == 429
    FailedLogin.objects.update(at=timezone.now() - timedelta(minutes=2))
    assert sign_in(client, "viewer").status_code == 302
    assert not FailedLogin.objects.filter(username="viewer").exists()


def test_a_successful_sign_in_clears_earlier_failures(members, settings):
    settings.RIVYA_LOGIN_MAX_FAILURES = 2
    client = Client()
    sign_in(client, "viewer", "wrong-password")
    assert sign_in(client, "viewer").status_code == 302
    assert sign_in(Client(), "viewer", "wrong-password").status_code == 400


def test_a_failed_sign_in_behind_a_proxy_records_the_client_address(members, settings):
    settings.RIVYA_BEHIND_PROXY = True
    settings.RIVYA_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.7")

    sign_in(client, "viewer", "wrong-password")

    assert FailedLogin.objects.get().ip == "198.51.100.7"


def test_a_failed_sign_in_without_a_proxy_ignores_x_forwarded_for(members, settings):
    settings.RIVYA_BEHIND_PROXY = False
    client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")

    sign_in(client, "viewer", "wrong-password")

    assert FailedLogin.objects.get().ip == "10.0.0.2"


def add_failures(username: str, minutes_ago: int, count: int = 1) -> None:
    for _ in range(count):
        FailedLogin.objects.create(
            username=username,
            ip=TEST_CLIENT_IP,
            at=timezone.now() - timedelta(minutes=minutes_ago),
        )


def test_the_purge_drops_only_failures_too_old_to_lock_anyone_out(members, settings):
    settings.RIVYA_LOGIN_MAX_FAILURES = 2
    add_failures("sprayed-name", minutes_ago=76, count=3)
    add_failures("viewer", minutes_ago=14, count=2)
    add_failures("viewer", minutes_ago=74)

    assert do_purge_failed_logins() == 3

    assert not FailedLogin.objects.filter(username="sprayed-name").exists()
    assert FailedLogin.objects.filter(username="viewer").count() == 3
    assert lockout("viewer", TEST_CLIENT_IP) is None
    assert sign_in(Client(), "viewer", "wrong-password").status_code == 400
    assert lockout("viewer", TEST_CLIENT_IP) is not None


def test_failed_sign_ins_sweep_old_failures_at_most_once_per_interval(members):
    cache.delete(PURGE_LOCK)
    add_failures("sprayed-1", minutes_ago=120)
    sign_in(Client(), "sprayed-2", "wrong-password")
    assert set(FailedLogin.objects.values_list("username", flat=True)) == {"sprayed-2"}

    add_failures("sprayed-3", minutes_ago=120)
    sign_in(Client(), "sprayed-4", "wrong-password")
    assert FailedLogin.objects.filter(username="sprayed-3").exists()

    cache.delete(PURGE_LOCK)
    sign_in(Client(), "sprayed-5", "wrong-password")
    assert set(FailedLogin.objects.values_list("username", flat=True)) == {
        "sprayed-2",
        "sprayed-4",
        "sprayed-5",
    }


def test_it_signs_out_on_post_only(clients):
    client = clients[Role.VIEWER]
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response["Location"] == reverse("login")
    assert client.get("/")["Location"].startswith(reverse("login"))


def age_session(client: Client, *, seen_ago: int, started_ago: int) -> None:
    now = int(time.time())
    session = client.session
    session[SEEN_KEY] = now - seen_ago
    session[STARTED_KEY] = now - started_ago
    session.save()


def test_it_keeps_a_session_that_was_used_within_the_idle_limit(clients):
    client = clients[Role.VIEWER]
    age_session(client, seen_ago=29 * 60, started_ago=11 * 3600)
    assert client.get("/").status_code == 200
    assert int(time.time()) - client.session[SEEN_KEY] < 5


def test_it_signs_out_after_thirty_idle_minutes(clients):
    client = clients[Role.VIEWER]
    age_session(client, seen_ago=31 * 60, started_ago=31 * 60)
    response = client.get("/accounts/audit/?action=x")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
    page = client.get(response["Location"])
    assert "signed out after a period of inactivity" in page.content.decode()
    assert client.get("/").status_code == 302


def test_it_signs_out_after_twelve_hours_however_active(clients):
    client = clients[Role.VIEWER]
    age_session(client, seen_ago=0, started_ago=12 * 3600 + 5)
    response = client.get("/")
    assert response.status_code == 302
    assert "maximum length" in client.get(response["Location"]).content.decode()


def test_the_limits_follow_the_settings(clients, settings):
    settings.RIVYA_SESSION_IDLE_MINUTES = 5
    client = clients[Role.VIEWER]
    age_session(client, seen_ago=6 * 60, started_ago=6 * 60)
    assert client.get("/").status_code == 302


HTMX_FROM_AUDIT = {"HX-Request": "true", "HX-Current-URL": "http://testserver/accounts/audit/?a=1"}
BACK_TO_AUDIT = reverse("login") + "?next=/accounts/audit/%3Fa%3D1"


def test_an_htmx_request_after_expiry_reloads_the_whole_login_page(clients):
    client = clients[Role.ADMIN]
    age_session(client, seen_ago=31 * 60, started_ago=31 * 60)
    response = client.get("/accounts/audit/?action=key", headers=HTMX_FROM_AUDIT)
    assert response.status_code == 200
    assert response["HX-Redirect"] == BACK_TO_AUDIT


def test_an_htmx_request_without_a_session_reloads_the_whole_login_page(members):
    response = Client().get("/accounts/audit/?action=key", headers=HTMX_FROM_AUDIT)
    assert response["HX-Redirect"] == BACK_TO_AUDIT
    plain = Client().get("/accounts/audit/?action=key")
    assert plain["Location"] == reverse("login") + "?next=/accounts/audit/%3Faction%3Dkey"


def test_a_stranger_cannot_lock_a_member_out(members, settings):
    settings.RIVYA_LOGIN_MAX_FAILURES = 3
    stranger = Client(REMOTE_ADDR="203.0.113.66")
    for _ in range(5):
        sign_in(stranger, "viewer", "wrong-password")

    refused = sign_in(stranger, "viewer")
    member = sign_in(Client(REMOTE_ADDR="198.51.100.7"), "viewer")

    assert refused.status_code == 429
    assert "for this account" in refused.content.decode()
    assert member.status_code == 302
    locked = AuditEvent.objects.get(action="login.locked", target="viewer")
    assert locked.ip == "203.0.113.66"


def test_the_members_success_leaves_the_strangers_failures_counting(members, settings):
    settings.RIVYA_LOGIN_MAX_FAILURES = 3
    stranger = Client(REMOTE_ADDR="203.0.113.66")
    for _ in range(2):
        sign_in(stranger, "viewer", "wrong-password")

    assert sign_in(Client(REMOTE_ADDR="198.51.100.7"), "viewer").status_code == 302
    sign_in(stranger, "viewer", "wrong-password")

    assert sign_in(stranger, "viewer").status_code == 429


def test_one_address_guessing_many_names_is_locked_by_the_address_limit(members, settings):
    settings.RIVYA_LOGIN_MAX_FAILURES = 3
    settings.RIVYA_LOGIN_MAX_FAILURES_PER_ADDRESS = 4
    sprayer = Client(REMOTE_ADDR="203.0.113.66")
    for name in ("viewer", "operator", "admin", "owner"):
        assert sign_in(sprayer, name, "wrong-password").status_code == 400

    refused = sign_in(sprayer, "operator")
    elsewhere = sign_in(Client(REMOTE_ADDR="198.51.100.7"), "operator")

    assert refused.status_code == 429
    assert "Too many failed sign-ins from this address. Try again in 1 minute." in (
        refused.content.decode()
    )
    assert elsewhere.status_code == 302
    assert AuditEvent.objects.filter(action="login.address_locked", target="203.0.113.66").exists()


def test_the_address_lock_grows_with_each_failure_past_its_limit(members, settings):
    settings.RIVYA_LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    waits = []
    for number in range(4):
        FailedLogin.objects.create(username=f"name-{number}", ip="203.0.113.66")
        lock = lockout("someone-else", "203.0.113.66")
        waits.append((lock.scope, round(lock.remaining.total_seconds() / 60)) if lock else 0)

    assert waits == [0, ("address", 1), ("address", 2), ("address", 4)]

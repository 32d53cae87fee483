"""Signed-in sessions: the list on a member's security page, signing one or all others out, an
admin's "sign out everywhere", and the password change that ends the other sessions."""

import pytest
from django.test import Client
from django.urls import reverse

from rivya_dashboard.accounts import member_sessions
from rivya_dashboard.accounts.models import AuditEvent, MemberSession, Role
from tests.conftest import PASSWORD
from tests.views.test_second_factor import give_authenticator

pytestmark = pytest.mark.django_db

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def sign_in(username: str, user_agent: str = CHROME_LINUX) -> Client:
    client = Client(HTTP_USER_AGENT=user_agent)
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def row_of(client: Client) -> MemberSession:
    return MemberSession.objects.get(key_hash=member_sessions.key_hash(client.session.session_key))


def is_signed_out(client: Client) -> bool:
    response = client.get(reverse("my-security"))
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (CHROME_LINUX, "Chrome on Linux"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko Firefox/133.0",
            "Firefox on Windows",
        ),
        ("Mozilla/5.0 (Macintosh) AppleWebKit Chrome/131 Safari/537.36 Edg/131", "Edge on macOS"),
        ("curl/8.5.0", "curl"),
        ("", "Unknown device"),
    ],
)
def test_it_names_the_device_from_the_user_agent(user_agent, device):
    assert member_sessions.describe_device(user_agent) == device


def test_signing_in_lists_the_session_marked_as_this_one(members):
    client = sign_in(Role.OPERATOR)
    sign_in(Role.OPERATOR, SAFARI_IPHONE)

    page = client.get(reverse("my-security"), REMOTE_ADDR="127.0.0.1")

    text = page.content.decode()
    assert "Chrome on Linux" in text and "Safari on iPhone" in text
    assert text.count("This session") == 1
    row = row_of(client)
    assert row.user == members[Role.OPERATOR] and row.ip == "127.0.0.1"
    assert row.user_agent == CHROME_LINUX
    assert client.session.session_key not in str(list(MemberSession.objects.values()))


def test_last_seen_is_written_at_most_once_a_minute(members):
    client = sign_in(Role.VIEWER)
    client.get(reverse("home"))
    seen = row_of(client).last_seen

    client.get(reverse("home"))
    assert row_of(client).last_seen == seen
    session = client.session
    session[member_sessions.TRACKED_AT_KEY] -= member_sessions.TRACK_EVERY_SECONDS
    session.save()
    client.get(reverse("home"))

    assert row_of(client).last_seen > seen


def test_a_member_signs_out_one_other_session(members):
    here, there = sign_in(Role.VIEWER), sign_in(Role.VIEWER, SAFARI_IPHONE)
    other = row_of(there)

    response = here.post(reverse("session-end", args=[other.pk]))

    assert response.status_code == 302
    assert is_signed_out(there) and not is_signed_out(here)
    other.refresh_from_db()
    assert other.ended_at is not None
    assert AuditEvent.objects.get(action="session.ended").detail == {"device": "Safari on iPhone"}


def test_this_session_is_not_signed_out_from_the_list(members):
    client = sign_in(Role.VIEWER)

    response = client.post(reverse("session-end", args=[row_of(client).pk]))

    assert response.status_code == 400
    assert "That is this session" in response.content.decode()
    assert not is_signed_out(client)


def test_another_members_session_is_not_found(members):
    mine, theirs = sign_in(Role.VIEWER), sign_in(Role.OPERATOR)

    response = mine.post(reverse("session-end", args=[row_of(theirs).pk]))

    assert response.status_code == 404
    assert not is_signed_out(theirs)


def test_sign_out_all_other_sessions(members):
    here = sign_in(Role.ADMIN)
    others = [sign_in(Role.ADMIN, SAFARI_IPHONE), sign_in(Role.ADMIN)]
    bystander = sign_in(Role.VIEWER)

    response = here.post(reverse("sessions-end-others"), follow=True)

    assert "2 other sessions are signed out." in response.content.decode()
    assert all(is_signed_out(client) for client in others)
    assert not is_signed_out(here) and not is_signed_out(bystander)


def test_an_admin_signs_a_member_out_everywhere(members, clients):
    theirs = [sign_in(Role.OPERATOR), sign_in(Role.OPERATOR, SAFARI_IPHONE)]

    response = clients[Role.ADMIN].post(
        reverse("member-sign-out", args=[members[Role.OPERATOR].pk])
    )

    assert response.status_code == 302
    assert all(is_signed_out(client) for client in theirs)
    event = AuditEvent.objects.get(action="session.signed_out_everywhere")
    assert (event.actor, event.target) == (members[Role.ADMIN], "operator")
    assert not MemberSession.objects.filter(user=members[Role.OPERATOR], ended_at=None).exists()


def test_an_admin_cannot_sign_an_owner_out(members, clients):
    owner = sign_in(Role.OWNER)

    response = clients[Role.ADMIN].post(reverse("member-sign-out", args=[members[Role.OWNER].pk]))

    assert response.status_code == 400
    assert "Only an owner can sign an owner out" in response.content.decode()
    assert not is_signed_out(owner)


def test_changing_the_password_signs_out_the_other_sessions(members):
    here, there = sign_in(Role.OPERATOR), sign_in(Role.OPERATOR, SAFARI_IPHONE)
    new = "a-brand-new-passphrase-7"

    wrong = here.post(
        reverse("password-change"),
        {"old_password": "nope", "new_password1": new, "new_password2": new},
    )
    assert wrong.status_code == 400
    assert "current password is not right" in wrong.content.decode()
    done = here.post(
        reverse("password-change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )

    assert done.status_code == 302
    assert is_signed_out(there) and not is_signed_out(here)
    members[Role.OPERATOR].refresh_from_db()
    assert members[Role.OPERATOR].check_password(new)
    assert AuditEvent.objects.get(action="password.changed").detail == {"sessions_ended": 1}


def test_the_second_factor_step_keeps_one_row_under_the_new_key(members):
    totp = give_authenticator(members[Role.VIEWER])
    client = sign_in(Role.VIEWER)
    client.get(reverse("mfa-verify"))

    client.post(reverse("mfa-verify"), {"code": totp.now()})

    assert MemberSession.objects.filter(user=members[Role.VIEWER]).count() == 1
    assert row_of(client).ended_at is None


def test_signing_out_and_deactivation_end_the_rows(members, clients):
    leaving = sign_in(Role.VIEWER)
    row = row_of(leaving)
    deactivated = sign_in(Role.OPERATOR)
    their_row = row_of(deactivated)

    leaving.post(reverse("logout"))
    clients[Role.OWNER].post(
        reverse("member-active", args=[members[Role.OPERATOR].pk]), {"active": "0"}
    )

    row.refresh_from_db()
    their_row.refresh_from_db()
    assert row.ended_at is not None and their_row.ended_at is not None
    assert is_signed_out(deactivated)

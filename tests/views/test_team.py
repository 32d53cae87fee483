"""The team page: invitations, role changes, deactivation and the last-owner guard."""

import re
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter

from rivya_dashboard.accounts.models import AuditEvent, Invite, Role, User, hash_token
from tests.conftest import PASSWORD, make_member

pytestmark = pytest.mark.django_db

TEAM = "/accounts/team/"
INVITE = "/accounts/team/invites/"


def invite(client: Client, **overrides: object) -> str:
    """Create an invitation through the page; returns the link shown once."""
    data = {"email": "new@example.test", "role": Role.OPERATOR, "days": 7, **overrides}
    response = client.post(INVITE, data)
    assert response.status_code == 200, response.content
    return re.search(r'id="invite-link"[^>]*value="([^"]+)"', response.content.decode()).group(1)


def accept_form(**overrides: str) -> dict[str, str]:
    return {"username": "newbie", "password1": PASSWORD, "password2": PASSWORD, **overrides}


def path_of(link: str) -> str:
    return link.removeprefix("http://testserver")


def test_it_lists_members_and_pending_invitations(owner_client):
    invite(owner_client, email="pending@example.test")
    response = owner_client.get(TEAM)
    assert response.status_code == 200
    page = response.content.decode()
    for name in ("owner", "admin", "operator", "viewer", "pending@example.test"):
        assert name in page


def test_an_invitation_link_is_shown_once_and_only_its_hash_is_stored(owner_client):
    link = invite(owner_client, role=Role.ADMIN, days=3)
    token = link.rstrip("/").rsplit("/", 1)[1]
    stored = Invite.objects.get()
    assert stored.token_hash == hash_token(token)
    assert (stored.email, stored.role) == ("new@example.test", Role.ADMIN)
    expected_expiry = timezone.now() + timedelta(days=3)
    assert abs(stored.expires_at - expected_expiry) < timedelta(minutes=1)
    assert token not in owner_client.get(TEAM).content.decode()
    event = AuditEvent.objects.get(action="invite.created")
    assert token not in str(event.detail) + event.target
    assert event.detail == {"role": Role.ADMIN, "days": 3}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"email": "viewer@example.test"}, "A member with this e-mail already exists."),
        ({"email": "nope"}, "valid email address"),
        ({"days": 0}, "greater than or equal to 1"),
        ({"days": 31}, "less than or equal to 30"),
        ({"role": "emperor"}, "Select a valid choice"),
    ],
)
def test_it_refuses_a_bad_invitation(owner_client, overrides, message):
    data = {"email": "new@example.test", "role": Role.OPERATOR, "days": 7, **overrides}
    response = owner_client.post(INVITE, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Invite.objects.exists()


def test_an_invitee_accepts_and_is_signed_in_with_the_invited_role(owner_client):
    url = path_of(invite(owner_client, role=Role.VIEWER))
    guest = Client()
    page = guest.get(url)
    assert page.status_code == 200
    assert "You were invited as <strong>Viewer</strong>" in page.content.decode()
    # The e-mail is fixed by the invitation, whatever the form sends.
    response = guest.post(url, accept_form(email="other@example.test"))
    assert response.status_code == 302
    member = User.objects.get(username="newbie")
    assert (member.email, member.role) == ("new@example.test", Role.VIEWER)
    assert Invite.objects.get().accepted_by == member
    assert guest.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="invite.accepted", actor=member).exists()


def test_error_reports_never_show_the_invitees_password(owner_client):
    response = Client().post(path_of(invite(owner_client)), accept_form(password2="mismatch"))
    reported = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert PASSWORD not in str(reported) and "mismatch" not in str(reported)


def test_a_used_link_cannot_make_a_second_account(owner_client):
    url = path_of(invite(owner_client))
    assert Client().post(url, accept_form()).status_code == 302
    response = Client().post(url, accept_form(username="second"))
    assert response.status_code == 410
    assert "already used" in response.content.decode()
    assert not User.objects.filter(username="second").exists()


def test_an_expired_link_is_refused(owner_client):
    url = path_of(invite(owner_client))
    Invite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().post(url, accept_form())
    assert response.status_code == 410
    assert "has expired" in response.content.decode()
    assert not User.objects.filter(username="newbie").exists()


def test_a_revoked_link_is_refused(owner_client):
    url = path_of(invite(owner_client))
    revoke = owner_client.post(f"/accounts/team/invites/{Invite.objects.get().pk}/revoke/")
    assert revoke.status_code == 302
    assert AuditEvent.objects.filter(action="invite.revoked").exists()
    response = Client().get(url)
    assert response.status_code == 410
    assert "revoked this invitation" in response.content.decode()


def test_an_unknown_link_is_a_styled_404(members):
    response = Client().get("/accounts/invite/made-up-token/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password2": "something-else-123"}, "didn\u2019t match"),
        ({"password1": "short", "password2": "short"}, "at least 10 characters"),
        ({"username": "VIEWER"}, "That username is taken; choose another."),
    ],
)
def test_bad_account_details_leave_the_invitation_usable(owner_client, overrides, message):
    url = path_of(invite(owner_client))
    response = Client().post(url, accept_form(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert User.objects.count() == 4
    assert Invite.objects.get().is_usable


def test_an_invitation_for_an_email_that_joined_meanwhile_is_refused(owner_client):
    url = path_of(invite(owner_client))
    make_member(Role.VIEWER, "new")
    response = Client().post(url, accept_form())
    assert response.status_code == 400
    assert "A member with this e-mail already exists." in response.content.decode()
    assert Invite.objects.get().is_usable


def test_the_owner_changes_a_role(owner_client, members):
    viewer = members[Role.VIEWER]
    response = owner_client.post(f"/accounts/team/members/{viewer.pk}/role/", {"role": "admin"})
    assert response["Location"] == reverse("team")
    viewer.refresh_from_db()
    assert viewer.role == Role.ADMIN
    event = AuditEvent.objects.get(action="member.role_changed")
    assert (event.target, event.detail) == ("viewer", {"old": "viewer", "new": "admin"})
    assert "viewer is now Admin." in owner_client.get(TEAM).content.decode()


def test_the_only_owner_cannot_be_demoted(owner_client, members):
    owner = members[Role.OWNER]
    owner_client.post(f"/accounts/team/members/{owner.pk}/role/", {"role": "admin"})
    owner.refresh_from_db()
    assert owner.role == Role.OWNER
    assert "owner is the only owner. Make another member owner first." in (
        owner_client.get(TEAM).content.decode()
    )
    assert not AuditEvent.objects.exists()


def test_an_owner_may_hand_over_ownership(owner_client, members):
    owner, admin = members[Role.OWNER], members[Role.ADMIN]
    owner_client.post(f"/accounts/team/members/{admin.pk}/role/", {"role": "owner"})
    response = owner_client.post(f"/accounts/team/members/{owner.pk}/role/", {"role": "viewer"})
    assert response["Location"] == reverse("home")
    owner.refresh_from_db()
    assert owner.role == Role.VIEWER
    assert owner_client.get(TEAM).status_code == 403


def test_demoting_a_superuser_drops_the_flag(owner_client):
    root = User.objects.create_superuser("root", "root@example.test", PASSWORD)
    owner_client.post(f"/accounts/team/members/{root.pk}/role/", {"role": "operator"})
    root.refresh_from_db()
    assert (root.role, root.is_superuser) == (Role.OPERATOR, False)


def test_deactivation_ends_the_members_sessions_at_once(owner_client, clients, members):
    viewer, viewer_client = members[Role.VIEWER], clients[Role.VIEWER]
    assert viewer_client.get("/").status_code == 200
    url = f"/accounts/team/members/{viewer.pk}/active/"
    owner_client.post(url, {"active": "0"})
    viewer.refresh_from_db()
    assert not viewer.is_active
    assert viewer_client.get("/")["Location"].startswith(reverse("login"))
    # A page that polls with htmx is sent to the login page as a whole, not as a fragment.
    poll = viewer_client.get("/", headers={"HX-Request": "true"})
    assert poll["HX-Redirect"].startswith(reverse("login"))
    assert sign_in_fails(viewer)
    # Reactivation lets them sign in again but revives no old session.
    owner_client.post(url, {"active": "1"})
    assert viewer_client.get("/").status_code == 302
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["member.deactivated", "member.reactivated"]


def sign_in_fails(member: User) -> bool:
    response = Client().post(
        "/accounts/login/", {"username": member.username, "password": PASSWORD}
    )
    return response.status_code == 400


def test_deactivation_keeps_other_members_sessions(owner_client, clients, members):
    owner_client.post(f"/accounts/team/members/{members[Role.VIEWER].pk}/active/", {"active": "0"})
    assert clients[Role.OPERATOR].get("/").status_code == 200
    assert Session.objects.count() == 3


def test_an_owner_cannot_deactivate_themselves(owner_client, members):
    owner = members[Role.OWNER]
    owner_client.post(f"/accounts/team/members/{owner.pk}/active/", {"active": "0"})
    owner.refresh_from_db()
    assert owner.is_active
    assert "deactivate yourself. Ask another owner" in owner_client.get(TEAM).content.decode()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.VIEWER])
def test_a_non_owner_posting_a_team_action_gets_the_403_page_and_changes_nothing(
    clients, members, role
):
    client, viewer = clients[role], members[Role.VIEWER]
    attempts = [
        (f"/accounts/team/members/{viewer.pk}/role/", {"role": "owner"}),
        (f"/accounts/team/members/{viewer.pk}/active/", {"active": "0"}),
        (INVITE, {"email": "x@example.test", "role": "owner", "days": 7}),
    ]
    for url, data in attempts:
        response = client.post(url, data)
        assert response.status_code == 403
        assert "You don't have access to this" in response.content.decode()
    viewer.refresh_from_db()
    assert (viewer.role, viewer.is_active) == (Role.VIEWER, True)
    assert not Invite.objects.exists()
    assert not AuditEvent.objects.exists()

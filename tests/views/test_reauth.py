"""Re-authentication before sensitive actions: every listed view asks for the password again
when it was last confirmed more than RIVYA_REAUTH_MINUTES ago, keeps the form, and audits it."""

import time

import pytest
from django.apps import apps
from django.test import Client
from django.urls import get_resolver, reverse

from rivya_dashboard.accounts import reauth
from rivya_dashboard.accounts.models import AuditEvent, Role
from rivya_dashboard.vault.models import ApiKey, KeyGrant
from tests.conftest import PASSWORD, make_member
from tests.views.test_access_matrix import walk

pytestmark = pytest.mark.django_db

# (url name, kwargs, methods): the actions issue 15 §3 lists, plus the second factor's own.
SENSITIVE = {
    "key-add": ({}, ("GET", "POST")),
    "key-sandbox": ({}, ("POST",)),
    "key-replace": ({"pk": 1}, ("GET", "POST")),
    "key-status": ({"pk": 1}, ("POST",)),
    "key-delete": ({"pk": 1}, ("GET", "POST")),
    "grant-create": ({"pk": 1}, ("POST",)),
    "grant-edit": ({"pk": 1}, ("GET", "POST")),
    "grant-revoke": ({"pk": 1}, ("POST",)),
    "invite-create": ({}, ("POST",)),
    "invite-revoke": ({"pk": 1}, ("POST",)),
    "member-role": ({"pk": 1}, ("POST",)),
    "member-active": ({"pk": 1}, ("POST",)),
    "webhook-rotate": ({"key_pk": 1, "endpoint_id": "whend_x"}, ("POST",)),
    "sandbox-faults": ({}, ("POST",)),
    "security-policy": ({}, ("POST",)),
    "member-mfa-reset": ({"pk": 1}, ("POST",)),
    "member-sign-out": ({"pk": 1}, ("POST",)),
    "session-end": ({"pk": 1}, ("POST",)),
    "sessions-end-others": ({}, ("POST",)),
    "totp-enrol": ({}, ("GET", "POST")),
    "totp-remove": ({}, ("POST",)),
    "recovery-codes": ({}, ("POST",)),
    "passkey-add": ({}, ("GET", "POST")),
    "passkey-remove": ({"pk": 1}, ("POST",)),
}


def make_stale(client: Client) -> None:
    session = client.session
    session[reauth.AUTH_AT_KEY] = int(time.time()) - 3600
    session.save()


def row_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.label
        not in {"sessions.Session", "accounts.AuditEvent", "accounts.MemberSession"}
    }


def test_exactly_the_listed_views_ask_for_the_password_again():
    guarded = {
        name
        for name, pattern in walk(get_resolver())
        if getattr(pattern.callback, "reauth_required", False)
    }

    assert guarded == set(SENSITIVE)


@pytest.mark.parametrize("name", sorted(SENSITIVE))
def test_a_stale_session_is_sent_to_confirm_and_nothing_changes(name, owner_client, vault_key):
    kwargs, methods = SENSITIVE[name]
    url = reverse(name, kwargs=kwargs)
    make_stale(owner_client)
    before = row_counts()
    audited = AuditEvent.objects.count()

    for method in methods:
        response = getattr(owner_client, method.lower())(url, {"label": "x", "status": "disabled"})

        assert response.status_code == 302, (name, method)
        query = "?next=" if method == "GET" else "?resume="
        assert response["Location"].startswith(reverse("reauth-confirm") + query)
    assert row_counts() == before
    assert AuditEvent.objects.count() == audited


def test_a_fresh_sign_in_counts_as_a_confirmation(owner_client):
    assert owner_client.get(reverse("key-add")).status_code == 200


def test_the_window_is_configurable(settings, owner_client):
    settings.RIVYA_REAUTH_MINUTES = 1
    session = owner_client.session
    session[reauth.AUTH_AT_KEY] = int(time.time()) - 90
    session.save()

    assert owner_client.get(reverse("key-add"))["Location"].startswith(reverse("reauth-confirm"))


def test_the_form_survives_the_confirmation(members, owner_client, sandbox_key, api_in_process):
    make_stale(owner_client)
    form = {"label": "Kept", "environment": "sandbox", "secret": sandbox_key}

    sent = owner_client.post(reverse("key-add"), form)
    page = owner_client.get(sent["Location"])
    assert page.status_code == 200
    assert f'action="{reverse("key-add")}"' in page.content.decode()
    assert sandbox_key not in page.content.decode() + str(owner_client.session.items())
    token = page.context["hidden"][reauth.RESUME_FIELD]
    before_key = owner_client.session.session_key

    wrong = owner_client.post(
        reverse("key-add"), {reauth.RESUME_FIELD: token, reauth.CONFIRM_INPUT: "nope"}
    )
    assert wrong.status_code == 400
    assert "password is not right" in wrong.content.decode()
    assert not ApiKey.objects.exists()

    done = owner_client.post(
        reverse("key-add"), {reauth.RESUME_FIELD: token, reauth.CONFIRM_INPUT: PASSWORD}
    )

    key = ApiKey.objects.get()
    assert done.status_code == 302 and done["Location"] == reverse("key-detail", args=[key.pk])
    assert key.label == "Kept" and key.reveal() == sandbox_key
    confirmed = AuditEvent.objects.get(action="reauth.confirmed")
    assert confirmed.target == reverse("key-add") and confirmed.detail == {"method": "password"}
    assert AuditEvent.objects.filter(action="reauth.failed").count() == 1
    assert reauth.PENDING_KEY not in owner_client.session
    assert owner_client.session.session_key != before_key, "confirming gives a new session key"
    again = owner_client.post(reverse("key-add"), {reauth.RESUME_FIELD: token})
    assert again.status_code == 409
    assert ApiKey.objects.count() == 1


def test_a_stale_get_comes_back_after_the_password(owner_client):
    make_stale(owner_client)

    asked = owner_client.get(reverse("key-add"))
    assert asked["Location"] == reverse("reauth-confirm") + "?next=%2Fkeys%2Fadd%2F"
    confirmed = owner_client.post(
        reverse("reauth-confirm"), {"next": "/keys/add/", reauth.CONFIRM_INPUT: PASSWORD}
    )

    assert confirmed["Location"] == "/keys/add/"
    assert owner_client.get(reverse("key-add")).status_code == 200


def test_confirmation_refuses_an_offsite_next(owner_client):
    response = owner_client.post(
        reverse("reauth-confirm"), {"next": "https://evil.example/", reauth.CONFIRM_INPUT: PASSWORD}
    )

    assert response["Location"] == reverse("home")


def test_a_grant_change_resumes_with_the_members_choices(members, owner_client, vault_key):
    grant = KeyGrant.objects.create(
        member=members[Role.OPERATOR], key=vault_key, actions=["browse"]
    )
    make_stale(owner_client)
    form = {"actions": ["browse", "generate"], "daily_cap": "40", "monthly_cap": ""}

    asked = owner_client.post(reverse("grant-edit", args=[grant.pk]), form)
    token = asked["Location"].split("resume=")[1]
    owner_client.post(
        reverse("grant-edit", args=[grant.pk]),
        {reauth.RESUME_FIELD: token, reauth.CONFIRM_INPUT: PASSWORD},
    )

    grant.refresh_from_db()
    assert sorted(grant.actions) == ["browse", "generate"] and grant.daily_cap == 40


def test_htmx_is_sent_to_confirm_as_a_whole_page(owner_client, vault_key):
    make_stale(owner_client)

    response = owner_client.post(
        reverse("grant-create", args=[vault_key.pk]), {"member": "1"}, HTTP_HX_REQUEST="true"
    )

    assert response["HX-Redirect"].startswith(reverse("reauth-confirm") + "?resume=")


def test_a_kept_form_resumes_only_on_its_own_action(members, owner_client, vault_key):
    make_stale(owner_client)
    token = owner_client.post(reverse("key-status", args=[vault_key.pk]), {"status": "disabled"})[
        "Location"
    ].split("resume=")[1]

    response = owner_client.post(
        reverse("key-delete", args=[vault_key.pk]),
        {reauth.RESUME_FIELD: token, reauth.CONFIRM_INPUT: PASSWORD},
    )

    assert response.status_code == 409
    assert ApiKey.objects.filter(pk=vault_key.pk).exists()


def test_an_unknown_resume_token_shows_that_the_form_expired(owner_client):
    response = owner_client.get(reverse("reauth-confirm") + "?resume=gone")

    assert response.status_code == 409
    assert "That form expired" in response.content.decode()


def test_too_many_wrong_passwords_sign_the_member_out(members):
    member = make_member(Role.ADMIN, "guess")
    client = Client()
    client.force_login(member)
    for _ in range(reauth.MAX_FAILURES):
        wrong = client.post(reverse("reauth-confirm"), {reauth.CONFIRM_INPUT: "wrong"})
        assert wrong.status_code == 400

    response = client.post(reverse("reauth-confirm"), {reauth.CONFIRM_INPUT: PASSWORD})

    assert response.status_code == 429
    assert "Too many wrong passwords" in response.content.decode()
    assert client.get(reverse("keys"))["Location"].startswith(reverse("login"))

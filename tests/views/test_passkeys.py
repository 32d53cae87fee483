"""Passkeys on the server side: options, relying party, refusals that change nothing, removal
rules and resets. A real ceremony runs in tests/browser/test_second_factor_flow.py (Chromium's
virtual authenticator)."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from rivya_dashboard.accounts import passkeys, reauth, second_factor
from rivya_dashboard.accounts.models import AuditEvent, Passkey, Role, User
from tests.conftest import PASSWORD
from tests.views.test_second_factor import give_authenticator, sign_in

pytestmark = pytest.mark.django_db

FORGED = json.dumps(
    {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"clientDataJSON": "e30", "attestationObject": "oA", "signature": "AA"},
    }
)


def add_passkey(member: User, name: str = "Key") -> Passkey:
    return Passkey.objects.create(
        user=member, name=name, credential_id=f"cred-{name}", public_key=b"not-a-real-key"
    )


def mark_verified(client: Client) -> None:
    session = client.session
    session[second_factor.VERIFIED_KEY] = True
    session.save()


def options_on(page) -> dict:
    return json.loads(page.context["options"])


def test_the_add_page_carries_registration_options_for_this_host(members, clients):
    add_passkey(members[Role.VIEWER], "Old")
    mark_verified(clients[Role.VIEWER])

    page = clients[Role.VIEWER].get(reverse("passkey-add"))

    options = options_on(page)
    assert options["rp"] == {"id": "testserver", "name": "Rivya Console"}
    assert options["user"]["name"] == "viewer"
    assert "viewer" not in options["user"]["id"]
    assert [c["id"] for c in options["excludeCredentials"]] == ["cred-Old"]
    assert clients[Role.VIEWER].session[passkeys.REGISTRATION_KEY] == options["challenge"]
    assert "data-passkey-options" in page.content.decode()
    assert "<script>" not in page.content.decode()


def test_the_public_url_names_the_relying_party(settings, members, clients):
    settings.RIVYA_PUBLIC_URL = "https://console.example.com"

    options = options_on(clients[Role.VIEWER].get(reverse("passkey-add")))

    assert options["rp"]["id"] == "console.example.com"


def test_an_address_by_number_offers_no_passkeys(members, clients):
    page = clients[Role.VIEWER].get(reverse("passkey-add"), HTTP_HOST="127.0.0.1")

    assert "open it at http://localhost" in page.content.decode()
    assert "options" not in page.context


def test_a_forged_registration_is_refused_and_stores_nothing(members, clients):
    client = clients[Role.VIEWER]

    unasked = client.post(reverse("passkey-add"), {"name": "Mine", "credential": FORGED})
    refused = client.post(reverse("passkey-add"), {"name": "Mine", "credential": FORGED})

    assert unasked.status_code == 400
    assert "That passkey request expired" in unasked.content.decode()
    assert refused.status_code == 400
    assert "could not be verified" in refused.content.decode()
    assert not Passkey.objects.exists()
    assert not AuditEvent.objects.filter(action="mfa.passkey_added").exists()


def test_a_passkey_counts_as_a_factor_and_a_forged_assertion_is_refused(members):
    add_passkey(members[Role.OPERATOR])
    client = sign_in(Role.OPERATOR)

    page = client.get(reverse("history"), follow=True)
    assert page.request["PATH_INFO"] == reverse("mfa-verify")
    assert json.loads(page.context["passkey_options"])["allowCredentials"][0]["id"] == "cred-Key"
    refused = client.post(reverse("mfa-verify"), {"passkey": FORGED})

    assert refused.status_code == 400
    assert "That passkey did not confirm it" in refused.content.decode()
    assert AuditEvent.objects.filter(action="mfa.failed").count() == 1
    assert client.get(reverse("history")).status_code == 302


def test_confirmation_by_a_forged_passkey_is_refused(members, clients):
    add_passkey(members[Role.ADMIN])
    client = clients[Role.ADMIN]
    mark_verified(client)
    session = client.session
    session[reauth.AUTH_AT_KEY] = 0
    session.save()
    page = client.get(reverse("reauth-confirm") + "?next=/keys/add/")
    assert json.loads(page.context["passkey_options"])["userVerification"] == "required"

    refused = client.post(
        reverse("reauth-confirm"), {"next": "/keys/add/", reauth.PASSKEY_INPUT: FORGED}
    )

    assert refused.status_code == 400
    assert client.get(reverse("key-add")).status_code == 302
    failed = AuditEvent.objects.get(action="reauth.failed")
    assert failed.detail == {"method": "passkey"}


def test_the_last_required_passkey_stays(settings, members, clients):
    settings.RIVYA_MFA_REQUIRED = True
    passkey = add_passkey(members[Role.ADMIN])
    mark_verified(clients[Role.ADMIN])

    response = clients[Role.ADMIN].post(reverse("passkey-remove", args=[passkey.pk]))

    assert response.status_code == 400
    assert "this is your last one" in response.content.decode()
    assert Passkey.objects.filter(pk=passkey.pk).exists()


def test_removing_one_of_two_factors_keeps_the_recovery_codes_and_ends_other_sessions(members):
    member = members[Role.VIEWER]
    passkey = add_passkey(member)
    totp = give_authenticator(member)
    second_factor.do_issue_recovery_codes(member, None)
    here = sign_in(member.username)
    here.post(reverse("mfa-verify"), {"code": totp.now()})
    elsewhere = Client()
    elsewhere.force_login(member)

    response = here.post(reverse("passkey-remove", args=[passkey.pk]))

    assert response.status_code == 302
    assert not Passkey.objects.exists()
    assert second_factor.recovery_codes_left(member) == 10
    assert elsewhere.get(reverse("home"))["Location"].startswith(reverse("login"))
    assert AuditEvent.objects.get(action="mfa.passkey_removed").detail == {"name": "Key"}


def test_someone_elses_passkey_is_not_found(members, clients):
    theirs = add_passkey(members[Role.OPERATOR])

    response = clients[Role.VIEWER].post(reverse("passkey-remove", args=[theirs.pk]))

    assert response.status_code == 404
    assert Passkey.objects.filter(pk=theirs.pk).exists()


def test_an_owner_reset_removes_passkeys_too(members, clients):
    add_passkey(members[Role.OPERATOR])

    clients[Role.OWNER].post(reverse("member-mfa-reset", args=[members[Role.OPERATOR].pk]))

    assert not Passkey.objects.exists()
    client = Client()
    client.post(reverse("login"), {"username": "operator", "password": PASSWORD})
    assert client.get(reverse("history")).status_code == 200

"""Second factor: the requirement, authenticator enrolment with pyotp, sign-in verification,
recovery codes, resets by an owner and by `manage.py reset_mfa`."""

import re
import time
from io import StringIO

import pyotp
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from rivya_dashboard.accounts import second_factor
from rivya_dashboard.accounts.models import (
    AuditEvent,
    RecoveryCode,
    Role,
    SecurityPolicy,
    TotpDevice,
    User,
)
from rivya_dashboard.vault import crypto
from tests.conftest import PASSWORD, make_member

pytestmark = pytest.mark.django_db


def give_authenticator(member: User) -> pyotp.TOTP:
    secret = pyotp.random_base32()
    device = TotpDevice.objects.create(user=member)
    device.secret = crypto.encrypt(secret, row=crypto.binding(device, "secret"))
    device.save(update_fields=["secret"])
    return pyotp.TOTP(secret)


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the following 30-second step: still accepted, and not the one just used."""
    return totp.at(time.time() + 30)


def sign_in(username: str) -> Client:
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def verified_client(member: User, totp: pyotp.TOTP) -> Client:
    client = sign_in(member.username)
    response = client.post(reverse("mfa-verify"), {"code": totp.now()})
    assert response.status_code == 302
    return client


def test_owners_must_enrol_before_anything_else_when_required(settings, members, clients):
    settings.RIVYA_MFA_REQUIRED = True

    for path in (reverse("home"), reverse("keys"), reverse("team")):
        response = clients[Role.OWNER].get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("my-security"))
    assert clients[Role.OWNER].get(reverse("my-security")).status_code == 200
    assert clients[Role.OWNER].get(reverse("totp-enrol")).status_code == 200
    # Operators are not owners or admins: the default requirement leaves them alone.
    assert clients[Role.OPERATOR].get(reverse("home")).status_code == 200


def test_htmx_requests_are_sent_to_enrol_as_a_whole_page(settings, members, clients):
    settings.RIVYA_MFA_REQUIRED = True

    response = clients[Role.ADMIN].get(reverse("keys"), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("my-security")


def test_password_only_sign_in_works_when_not_required(members):
    client = sign_in(Role.OWNER)

    assert client.get(reverse("keys")).status_code == 200


def test_the_owners_choice_replaces_the_environment_default(settings, members, clients):
    settings.RIVYA_MFA_REQUIRED = True
    owner = members[Role.OWNER]
    give_authenticator(owner)
    session = clients[Role.OWNER].session
    session[second_factor.VERIFIED_KEY] = True
    session.save()

    response = clients[Role.OWNER].post(reverse("security-policy"), {"require_for_everyone": "on"})

    assert response.status_code == 302
    policy = SecurityPolicy.objects.get()
    assert (policy.require_for_admins, policy.require_for_everyone) == (False, True)
    assert clients[Role.VIEWER].get(reverse("home"))["Location"].startswith(reverse("my-security"))
    event = AuditEvent.objects.get(action="security.policy_changed")
    assert event.detail["new"] == {"admins": False, "everyone": True}
    settings.RIVYA_MFA_REQUIRED = False
    assert clients[Role.VIEWER].get(reverse("home")).status_code == 302


def test_enrolment_with_pyotp_then_recovery_codes_shown_once(settings, members, clients):
    settings.RIVYA_MFA_REQUIRED = True
    client = clients[Role.ADMIN]
    page = client.get(reverse("totp-enrol"))
    secret = page.context["secret"]
    assert "<svg" in page.content.decode() and "otpauth" not in page.content.decode()
    assert client.get(reverse("totp-enrol")).context["secret"] == secret, "reload keeps the key"

    wrong = client.post(reverse("totp-enrol"), {"code": "000000"})
    assert wrong.status_code == 400
    assert "does not match" in wrong.content.decode()
    assert not TotpDevice.objects.exists()

    done = client.post(reverse("totp-enrol"), {"code": pyotp.TOTP(secret).now()})

    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10 and all(re.fullmatch(r"([a-z2-7]{5}-){4}[a-z2-7]{5}", c) for c in codes)
    stored = set(RecoveryCode.objects.values_list("code_hash", flat=True))
    assert stored == {second_factor.recovery_hash(code) for code in codes}
    device = TotpDevice.objects.get(user=members[Role.ADMIN])
    assert secret not in device.secret and device.secret.startswith("v1:")
    assert client.get(reverse("keys")).status_code == 200
    assert codes[0] not in client.get(reverse("my-security")).content.decode()
    assert AuditEvent.objects.filter(action="mfa.totp_added").count() == 1


def test_sign_in_asks_for_the_code_and_refuses_a_replayed_one(members):
    operator = members[Role.OPERATOR]
    totp = give_authenticator(operator)
    client = sign_in(operator.username)

    blocked = client.get(reverse("history"))
    assert blocked.status_code == 302
    assert blocked["Location"] == reverse("mfa-verify") + "?next=%2Fgenerations%2F"
    wrong = client.post(reverse("mfa-verify"), {"code": "123456"})
    assert wrong.status_code == 400
    assert "not right" in wrong.content.decode()
    code = totp.now()
    done = client.post(reverse("mfa-verify"), {"code": code, "next": "/generations/"})
    assert done.status_code == 302 and done["Location"] == "/generations/"
    assert client.get(reverse("history")).status_code == 200

    again = sign_in(operator.username)
    assert again.post(reverse("mfa-verify"), {"code": code}).status_code == 400
    assert AuditEvent.objects.filter(action="mfa.failed", actor=operator).count() == 2


def test_verification_refuses_an_offsite_next(members):
    totp = give_authenticator(members[Role.VIEWER])
    client = sign_in(Role.VIEWER)

    response = client.post(
        reverse("mfa-verify"), {"code": totp.now(), "next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("home")


def test_verification_gives_a_new_session_key(members):
    totp = give_authenticator(members[Role.VIEWER])
    client = sign_in(Role.VIEWER)
    before = client.session.session_key

    client.post(reverse("mfa-verify"), {"code": totp.now()})

    assert client.session.session_key != before


def test_too_many_wrong_codes_are_refused_with_429(members):
    give_authenticator(members[Role.VIEWER])
    client = sign_in(Role.VIEWER)
    for _ in range(second_factor.MAX_FAILURES):
        client.post(reverse("mfa-verify"), {"code": "000000"})

    response = client.post(reverse("mfa-verify"), {"code": "000000"})

    assert response.status_code == 429
    assert "Too many wrong codes" in response.content.decode()


def test_a_recovery_code_signs_in_once(members):
    member = members[Role.OWNER]
    give_authenticator(member)
    codes = second_factor.do_issue_recovery_codes(member, None)
    client = sign_in(member.username)

    done = client.post(reverse("mfa-verify"), {"code": codes[3].upper().replace("-", " ")})

    assert done.status_code == 302
    assert client.get(reverse("keys")).status_code == 200
    assert second_factor.recovery_codes_left(member) == 9
    again = sign_in(member.username)
    assert again.post(reverse("mfa-verify"), {"code": codes[3]}).status_code == 400
    assert AuditEvent.objects.filter(action="mfa.recovery_code_used").count() == 1


def test_an_abandoned_enrolment_leaves_the_old_authenticator_working(members):
    member = members[Role.ADMIN]
    totp = give_authenticator(member)
    client = verified_client(member, totp)
    client.get(reverse("totp-enrol"))
    client.post(reverse("totp-enrol"), {"code": "999999"})

    later = sign_in(member.username)

    assert later.post(reverse("mfa-verify"), {"code": next_code(totp)}).status_code == 302
    assert TotpDevice.objects.filter(user=member).count() == 1


def test_replacing_the_authenticator_signs_out_other_sessions(members):
    member = members[Role.ADMIN]
    totp = give_authenticator(member)
    here = verified_client(member, totp)
    elsewhere = Client()
    elsewhere.force_login(member)
    secret = here.get(reverse("totp-enrol")).context["secret"]

    response = here.post(reverse("totp-enrol"), {"code": pyotp.TOTP(secret).now()})

    assert response.status_code == 200  # first recovery codes
    assert here.get(reverse("keys")).status_code == 200
    assert elsewhere.get(reverse("keys"))["Location"].startswith(reverse("login"))
    assert AuditEvent.objects.filter(action="mfa.totp_replaced").count() == 1


def test_removing_a_required_authenticator_is_refused(settings, members):
    settings.RIVYA_MFA_REQUIRED = True
    member = members[Role.OWNER]
    client = verified_client(member, give_authenticator(member))

    response = client.post(reverse("totp-remove"))

    assert response.status_code == 400
    assert "requires a second factor" in response.content.decode()
    assert TotpDevice.objects.filter(user=member).exists()


def test_removing_an_optional_authenticator_takes_its_recovery_codes(members):
    member = members[Role.VIEWER]
    client = verified_client(member, give_authenticator(member))
    second_factor.do_issue_recovery_codes(member, None)

    assert client.post(reverse("totp-remove")).status_code == 302

    assert not TotpDevice.objects.filter(user=member).exists()
    assert not RecoveryCode.objects.filter(user=member).exists()


def test_recovery_codes_need_a_factor_first(members, clients):
    response = clients[Role.VIEWER].post(reverse("recovery-codes"))

    assert response.status_code == 400
    assert "Add a passkey or an authenticator app first" in response.content.decode()
    assert not RecoveryCode.objects.exists()


def test_an_owner_resets_a_members_factors_and_signs_them_out(members, clients):
    member = members[Role.OPERATOR]
    totp = give_authenticator(member)
    second_factor.do_issue_recovery_codes(member, None)
    theirs = verified_client(member, totp)

    response = clients[Role.OWNER].post(reverse("member-mfa-reset", args=[member.pk]))

    assert response.status_code == 302
    assert not TotpDevice.objects.filter(user=member).exists()
    assert not RecoveryCode.objects.filter(user=member).exists()
    assert theirs.get(reverse("history"))["Location"].startswith(reverse("login"))
    event = AuditEvent.objects.get(action="mfa.reset")
    assert (event.actor, event.target) == (members[Role.OWNER], member.username)


def test_an_owner_cannot_reset_their_own_factor_from_the_team_page(members, clients):
    give_authenticator(members[Role.OWNER])
    session = clients[Role.OWNER].session
    session[second_factor.VERIFIED_KEY] = True
    session.save()

    response = clients[Role.OWNER].post(reverse("member-mfa-reset", args=[members[Role.OWNER].pk]))

    assert response.status_code == 400
    assert TotpDevice.objects.filter(user=members[Role.OWNER]).exists()


def test_the_security_page_lists_who_has_a_factor(members, clients):
    give_authenticator(members[Role.OPERATOR])

    owner_page = clients[Role.OWNER].get(reverse("security")).content.decode()
    admin_page = clients[Role.ADMIN].get(reverse("security")).content.decode()

    assert reverse("member-mfa-reset", args=[members[Role.OPERATOR].pk]) in owner_page
    assert "Only an owner can change this." in admin_page
    assert "member-mfa-reset" not in admin_page and "/reset/" not in admin_page


def test_reset_mfa_command_lets_the_last_owner_back_in(settings):
    settings.RIVYA_MFA_REQUIRED = True
    owner = make_member(Role.OWNER, "solo")
    give_authenticator(owner)
    out = StringIO()

    call_command("reset_mfa", "SOLO", stdout=out)

    assert "Removed the second factors of solo" in out.getvalue()
    assert not TotpDevice.objects.filter(user=owner).exists()
    event = AuditEvent.objects.get(action="mfa.reset")
    assert event.actor is None and event.actor_name == "system"
    client = sign_in("solo")
    assert client.get(reverse("home"))["Location"].startswith(reverse("my-security"))


def test_reset_mfa_command_names_an_unknown_member():
    with pytest.raises(CommandError, match="No member is called 'ghost'"):
        call_command("reset_mfa", "ghost")

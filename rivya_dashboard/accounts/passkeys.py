"""Passkeys and security keys (WebAuthn) through py_webauthn: registration, and assertions as a
second factor at sign-in or as the confirmation before a sensitive action.

Each ceremony's options are put in the page that starts it (a data attribute read by
static/js/passkeys.js); the challenge waits in the session and is spent by the first answer.
The relying party is RIVYA_PUBLIC_URL's host when set, otherwise the host the request was
addressed to (already checked against ALLOWED_HOSTS). Browsers refuse IP addresses as relying
party ids, so a console reached at 127.0.0.1 offers no passkeys and says to use localhost.
"""

import hashlib
import ipaddress
import json
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.member_sessions import end_sessions
from rivya_dashboard.accounts.models import Passkey, User
from rivya_dashboard.accounts.second_factor import SecondFactorError

REGISTRATION_KEY = "rivya_passkey_registration"
ASSERTION_KEY = "rivya_passkey_assertion"
RP_NAME = "Rivya Console"
TIMEOUT_MS = 120_000
KNOWN_TRANSPORTS = {transport.value for transport in AuthenticatorTransport}


def relying_party(request: HttpRequest) -> tuple[str, str]:
    """(rp id, expected origin) for this console."""
    if settings.RIVYA_PUBLIC_URL:
        public = urlsplit(settings.RIVYA_PUBLIC_URL)
        return public.hostname or "", f"{public.scheme}://{public.netloc}"
    host = request.get_host()
    return urlsplit(f"//{host}").hostname or "", f"{request.scheme}://{host}"


def available(request: HttpRequest) -> bool:
    rp_id = relying_party(request)[0]
    try:
        ipaddress.ip_address(rp_id)
    except ValueError:
        return bool(rp_id)
    return False


def user_handle(member: User) -> bytes:
    """A stable, opaque WebAuthn user id: no name or e-mail goes to the authenticator."""
    return hashlib.sha256(f"rivya-member:{member.pk}:{settings.SECRET_KEY}".encode()).digest()


def descriptors(member: User) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(passkey.credential_id),
            transports=[AuthenticatorTransport(t) for t in passkey.transports],
        )
        for passkey in member.passkeys.all()
    ]


def registration_options(request: HttpRequest) -> str:
    member = request.user
    rp_id, _origin = relying_party(request)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=RP_NAME,
        user_name=member.get_username(),
        user_id=user_handle(member),
        timeout=TIMEOUT_MS,
        exclude_credentials=descriptors(member),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    request.session[REGISTRATION_KEY] = bytes_to_base64url(options.challenge)
    return options_to_json(options)


def spend_challenge(request: HttpRequest, key: str) -> bytes:
    challenge = request.session.pop(key, "")
    if not challenge:
        raise SecondFactorError(_("That passkey request expired. Reload the page and try again."))
    return base64url_to_bytes(challenge)


def do_register(request: HttpRequest, credential: str, name: str) -> Passkey:
    """Verify the browser's new credential and store its public key; other sessions end."""
    member = request.user
    challenge = spend_challenge(request, REGISTRATION_KEY)
    rp_id, origin = relying_party(request)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
        )
        transports = json.loads(credential).get("response", {}).get("transports") or []
    except (WebAuthnException, ValueError, AttributeError):
        raise SecondFactorError(
            _("The browser's answer could not be verified. Try again, or use another key.")
        ) from None
    with transaction.atomic():
        passkey = Passkey.objects.create(
            user=member,
            name=name,
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=[t for t in transports if t in KNOWN_TRANSPORTS],
        )
        end_sessions(member, keep=request.session.session_key)
        record(member, "mfa.passkey_added", request=request, name=name)
    return passkey


def assertion_options(request: HttpRequest, member: User, *, verify_user: bool) -> str:
    rp_id, _origin = relying_party(request)
    requirement = (
        UserVerificationRequirement.REQUIRED
        if verify_user
        else UserVerificationRequirement.PREFERRED
    )
    options = generate_authentication_options(
        rp_id=rp_id,
        timeout=TIMEOUT_MS,
        allow_credentials=descriptors(member),
        user_verification=requirement,
    )
    request.session[ASSERTION_KEY] = bytes_to_base64url(options.challenge)
    return options_to_json(options)


def check_assertion(
    request: HttpRequest, member: User, credential: str, *, verify_user: bool
) -> Passkey:
    """The passkey that signed this challenge, with its counter moved on; raises otherwise."""
    challenge = spend_challenge(request, ASSERTION_KEY)
    refused = SecondFactorError(
        _("That passkey did not confirm it's you. Try again, or use your authenticator code.")
    )
    try:
        credential_id = json.loads(credential)["id"]
    except (ValueError, KeyError, TypeError):
        raise refused from None
    passkey = member.passkeys.filter(credential_id=credential_id).first()
    if passkey is None:
        raise refused
    rp_id, origin = relying_party(request)
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=verify_user,
        )
    except WebAuthnException:
        raise refused from None
    Passkey.objects.filter(pk=passkey.pk).update(
        sign_count=verified.new_sign_count, last_used_at=timezone.now()
    )
    return passkey

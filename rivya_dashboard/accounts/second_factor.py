"""Second factor: the team's requirement, authenticator apps (TOTP), recovery codes, resets.

A session signs in with the password first; a member with a factor then proves it on the verify
page before the session may do anything else (SecondFactorMiddleware). The TOTP secret is stored
encrypted under the vault's keyring; recovery codes only as SHA-256 of 125 random bits, which
ASVS 5 (6.5.2) accepts for secrets of 112 bits or more.
"""

import hashlib
import hmac
import secrets
import time
from datetime import timedelta

import pyotp
import segno
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.member_sessions import end_sessions
from rivya_dashboard.accounts.models import (
    AuditEvent,
    Passkey,
    RecoveryCode,
    Role,
    SecurityPolicy,
    TotpDevice,
    User,
)
from rivya_dashboard.vault import crypto

# Session keys: the factor was proven in this session; an enrolment in progress (encrypted).
VERIFIED_KEY = "rivya_mfa_verified"
PENDING_TOTP_KEY = "rivya_totp_pending"

TOTP_STEP_SECONDS = 30
# A code from the step before or after the server's clock still counts: phones drift.
TOTP_DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
RECOVERY_GROUPS = 5
RECOVERY_GROUP_LENGTH = 5
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10
ISSUER = "Rivya Console"


class SecondFactorError(Exception):
    """A refused code or change; the message says what the member can do next."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def current_policy() -> SecurityPolicy:
    """The owner's saved choice, or RIVYA_MFA_REQUIRED's until the owner saves one."""
    saved = SecurityPolicy.objects.order_by("pk").first()
    if saved is not None:
        return saved
    return SecurityPolicy(require_for_admins=settings.RIVYA_MFA_REQUIRED)


def factor_required(member: User, policy: SecurityPolicy | None = None) -> bool:
    policy = policy or current_policy()
    return policy.require_for_everyone or (
        policy.require_for_admins and member.has_role(Role.ADMIN)
    )


def has_factor(member: User) -> bool:
    return (
        TotpDevice.objects.filter(user=member).exists()
        or Passkey.objects.filter(user=member).exists()
    )


@transaction.atomic
def do_set_policy(
    actor: User, *, require_for_admins: bool, require_for_everyone: bool, request: HttpRequest
) -> None:
    old = current_policy()
    SecurityPolicy.objects.update_or_create(
        pk=1,
        defaults={
            "require_for_admins": require_for_admins,
            "require_for_everyone": require_for_everyone,
            "updated_by": actor,
            "updated_at": timezone.now(),
        },
    )
    record(
        actor,
        "security.policy_changed",
        request=request,
        old={"admins": old.require_for_admins, "everyone": old.require_for_everyone},
        new={"admins": require_for_admins, "everyone": require_for_everyone},
    )


# --- Authenticator apps -------------------------------------------------------------------------


def pending_binding(member: User) -> str:
    return f"session:{member.pk}:totp"


def pending_totp_secret(member: User, session: SessionBase) -> str:
    """The secret of the enrolment in progress, made on first ask and kept (encrypted) until it
    is confirmed or started over, so reloading the page does not change the QR code."""
    stored = session.get(PENDING_TOTP_KEY)
    if stored:
        try:
            return crypto.decrypt(stored, row=pending_binding(member))
        except crypto.DecryptionError:
            pass
    secret = pyotp.random_base32()
    session[PENDING_TOTP_KEY] = crypto.encrypt(secret, row=pending_binding(member))
    return secret


def provisioning_uri(member: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=member.get_username(), issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code as inline SVG, drawn here: the secret never goes to a QR service."""
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff")


def accepted_step(secret: str, code: str, after_step: int) -> int | None:
    """The time step `code` belongs to, if it is current and later than `after_step`."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(time.time()) // TOTP_STEP_SECONDS
    for step in range(now_step - TOTP_DRIFT_STEPS, now_step + TOTP_DRIFT_STEPS + 1):
        expected = totp.at(step * TOTP_STEP_SECONDS)
        if step > after_step and hmac.compare_digest(expected, code):
            return step
    return None


def do_enrol_totp(member: User, session: SessionBase, code: str, request: HttpRequest) -> None:
    """Confirm the pending secret with a code and make it the member's authenticator.

    The old authenticator stays until this succeeds, so an abandoned enrolment changes nothing.
    """
    secret = pending_totp_secret(member, session)
    step = accepted_step(secret, code, after_step=0)
    if step is None:
        raise SecondFactorError(
            _(
                "That code does not match. Check that your phone's clock is right and enter the "
                "6-digit code your app shows now."
            )
        )
    with transaction.atomic():
        replaced = TotpDevice.objects.filter(user=member).delete()[0] > 0
        device = TotpDevice.objects.create(user=member, last_step=step)
        device.secret = crypto.encrypt(secret, row=crypto.binding(device, "secret"))
        device.save(update_fields=["secret"])
        record(member, "mfa.totp_replaced" if replaced else "mfa.totp_added", request=request)
        end_sessions(member, keep=session.session_key)
    del session[PENDING_TOTP_KEY]


def check_totp(member: User, code: str) -> bool:
    device = TotpDevice.objects.filter(user=member).first()
    if device is None:
        return False
    secret = crypto.decrypt(device.secret, row=crypto.binding(device, "secret"))
    step = accepted_step(secret, code, after_step=device.last_step)
    if step is None:
        return False
    # Conditional on the old step, so two requests racing with one code cannot both pass.
    spent = TotpDevice.objects.filter(pk=device.pk, last_step__lt=step)
    return spent.update(last_step=step, last_used_at=timezone.now()) == 1


# --- Recovery codes -----------------------------------------------------------------------------


def new_recovery_code() -> str:
    letters = "".join(
        secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH)
    )
    size = RECOVERY_GROUP_LENGTH
    return "-".join(letters[at : at + size] for at in range(0, len(letters), size))


def recovery_hash(code: str) -> str:
    normal = "".join(char for char in code.lower() if char in RECOVERY_ALPHABET)
    return hashlib.sha256(normal.encode()).hexdigest()


@transaction.atomic
def do_issue_recovery_codes(member: User, request: HttpRequest | None) -> list[str]:
    """A fresh set replacing any earlier one. The caller shows them once; only hashes are kept."""
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=member).delete()
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=member, code_hash=recovery_hash(code)) for code in codes
    )
    record(member, "mfa.recovery_codes_issued", request=request, count=len(codes))
    return codes


def recovery_codes_left(member: User) -> int:
    return RecoveryCode.objects.filter(user=member, used_at__isnull=True).count()


def use_recovery_code(member: User, code: str) -> bool:
    unused = RecoveryCode.objects.filter(
        user=member, code_hash=recovery_hash(code), used_at__isnull=True
    )
    return unused.update(used_at=timezone.now()) == 1


# --- Verification at sign-in --------------------------------------------------------------------


def recent_failures(member: User) -> int:
    since = timezone.now() - FAILURE_WINDOW
    failures = AuditEvent.objects.filter(action="mfa.failed", actor=member, at__gte=since)
    return failures.count()


def guard_failures(member: User) -> None:
    if recent_failures(member) >= MAX_FAILURES:
        raise SecondFactorError(
            _(
                "Too many wrong codes. Wait 15 minutes, or ask an owner to reset your second "
                "factor."
            ),
            status=429,
        )


def do_verify_code(member: User, code: str, request: HttpRequest) -> str:
    """Check an authenticator or recovery code; returns which one it was, or raises."""
    guard_failures(member)
    if check_totp(member, code):
        return "totp"
    if len(code.strip()) > 8 and use_recovery_code(member, code):
        left = recovery_codes_left(member)
        record(member, "mfa.recovery_code_used", request=request, left=left)
        return "recovery"
    record(member, "mfa.failed", request=request)
    raise SecondFactorError(
        _(
            "That code is not right, or was already used. Enter the current code from your "
            "authenticator app, or an unused recovery code."
        )
    )


def mark_verified(request: HttpRequest) -> None:
    """The session proved its second factor: a new session key, as after any sign-in step."""
    request.session.cycle_key()
    request.session[VERIFIED_KEY] = True


# --- Removing and resetting ---------------------------------------------------------------------


def do_remove_factor(member: User, request: HttpRequest, *, passkey: Passkey | None = None) -> None:
    """Remove the authenticator app, or one passkey; the last factor takes the recovery codes
    with it, and a required last factor stays."""
    keys = Passkey.objects.filter(user=member)
    if passkey is None:
        left = keys.exists()
    else:
        left = (
            keys.exclude(pk=passkey.pk).exists() or TotpDevice.objects.filter(user=member).exists()
        )
    if not left and factor_required(member):
        raise SecondFactorError(
            _(
                "Your team requires a second factor, and this is your last one. Add another "
                "passkey or an authenticator app first."
            )
        )
    with transaction.atomic():
        if passkey is None:
            TotpDevice.objects.filter(user=member).delete()
            record(member, "mfa.totp_removed", request=request)
        else:
            passkey.delete()
            record(member, "mfa.passkey_removed", request=request, name=passkey.name)
        if not left:
            # Recovery codes stand in for a factor; with none left they would be a way around it.
            RecoveryCode.objects.filter(user=member).delete()
        end_sessions(member, keep=request.session.session_key)


def do_reset_factors(actor: User | None, member: User, request: HttpRequest | None) -> int:
    """Remove every factor and recovery code of `member` and sign them out everywhere."""
    with transaction.atomic():
        removed = TotpDevice.objects.filter(user=member).delete()[0]
        removed += Passkey.objects.filter(user=member).delete()[0]
        removed += RecoveryCode.objects.filter(user=member).delete()[0]
        ended = end_sessions(member)
        record(actor, "mfa.reset", member.get_username(), request=request, sessions_ended=ended)
    return removed

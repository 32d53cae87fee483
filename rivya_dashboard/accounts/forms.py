"""Forms for first-run setup, sign-in with lock-out, invitations and the team page."""

import math
from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.auth.forms import (
    AuthenticationForm,
    BaseUserCreationForm,
    PasswordChangeForm,
)
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from rivya_dashboard.accounts.audit import client_ip, record
from rivya_dashboard.accounts.models import FailedLogin, Role, User

LOCKOUT_WINDOW = timedelta(minutes=15)
MAX_LOCKOUT_MINUTES = 60
# Failures older than this can no longer lock anyone out.
FAILED_LOGIN_KEEP = LOCKOUT_WINDOW + timedelta(minutes=MAX_LOCKOUT_MINUTES)
PURGE_EVERY_SECONDS = 10 * 60
PURGE_LOCK = "accounts:failed-login-purge"


class MemberCreationForm(BaseUserCreationForm):
    """Username, e-mail and a password checked by every configured validator."""

    email = forms.EmailField(label=_("E-mail"))

    class Meta:
        model = User
        fields = ("username", "email")

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("That username is taken; choose another."))
        return username

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("A member with this e-mail already exists."))
        return email


class InviteAcceptForm(MemberCreationForm):
    """The e-mail comes from the invitation and cannot be changed by the invitee."""

    def __init__(self, *args, invite_email: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].initial = invite_email
        self.fields["email"].disabled = True


@dataclass(frozen=True)
class Lockout:
    scope: str  # "account": this username from this address; "address": any name from it
    remaining: timedelta


def backoff(failures: QuerySet[FailedLogin], limit: int) -> timedelta | None:
    """The wait before another attempt, growing with each failure past the limit."""
    count = failures.count()
    if count < limit:
        return None
    last = failures.order_by("-at").values_list("at", flat=True).first()
    wait = timedelta(minutes=min(2 ** (count - limit), MAX_LOCKOUT_MINUTES))
    remaining = last + wait - timezone.now()
    return remaining if remaining > timedelta(0) else None


def lockout(username: str, ip: str | None) -> Lockout | None:
    """Like django-axes with [["username", "ip_address"], "ip_address"]: failures count per
    (username, address), and per address alone with a higher limit. Guesses from a stranger's
    address lock only that address, never the member signing in from their own."""
    recent = FailedLogin.objects.filter(at__gte=timezone.now() - LOCKOUT_WINDOW, ip=ip)
    account = backoff(recent.filter(username__iexact=username), settings.RIVYA_LOGIN_MAX_FAILURES)
    if account is not None:
        return Lockout("account", account)
    address = backoff(recent, settings.RIVYA_LOGIN_MAX_FAILURES_PER_ADDRESS)
    return Lockout("address", address) if address is not None else None


def lockout_message(lock: Lockout) -> str:
    minutes = max(1, math.ceil(lock.remaining.total_seconds() / 60))
    if lock.scope == "address":
        text = ngettext(
            "Too many failed sign-ins from this address. Try again in %(n)d minute.",
            "Too many failed sign-ins from this address. Try again in %(n)d minutes.",
            minutes,
        )
    else:
        text = ngettext(
            "Too many failed sign-ins for this account. Try again in %(n)d minute.",
            "Too many failed sign-ins for this account. Try again in %(n)d minutes.",
            minutes,
        )
    return text % {"n": minutes}


class SignInForm(AuthenticationForm):
    def clean(self) -> dict:
        username = self.cleaned_data.get("username", "")
        ip = client_ip(self.request) if self.request else None
        lock = lockout(username, ip) if username else None
        if lock is not None:
            raise forms.ValidationError(lockout_message(lock), code="locked")
        try:
            data = super().clean()
        except forms.ValidationError:
            if username:
                note_failed_login(username, ip, self.request)
            raise
        # Only this address's failures: a success must not give a stranger fresh guesses.
        FailedLogin.objects.filter(username__iexact=username, ip=ip).delete()
        return data


def note_failed_login(username: str, ip: str | None, request: HttpRequest | None) -> None:
    FailedLogin.objects.create(username=username, ip=ip)
    # Only a later success clears a username's rows, so guesses at made-up names are swept here.
    if cache.add(PURGE_LOCK, 1, PURGE_EVERY_SECONDS):
        do_purge_failed_logins()
    # The owner sees in the audit log when guessing starts to lock an account or an address.
    lock = lockout(username, ip)
    if lock is not None and lock.scope == "account":
        record(None, "login.locked", username, request=request)
    elif lock is not None:
        record(None, "login.address_locked", ip or "", request=request)


def do_purge_failed_logins() -> int:
    """Delete failures too old to count towards any lock-out; returns how many went."""
    stale = FailedLogin.objects.filter(at__lt=timezone.now() - FAILED_LOGIN_KEEP)
    return stale.delete()[0]


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.OPERATOR)
    days = forms.IntegerField(
        label=_("Link valid for (days)"), min_value=1, max_value=30, initial=7
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("A member with this e-mail already exists."))
        return email


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class SecondFactorCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=64,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
    )


class SecurityPolicyForm(forms.Form):
    require_for_admins = forms.BooleanField(
        label=_("Owners and admins must use a second factor"), required=False
    )
    require_for_everyone = forms.BooleanField(
        label=_("Every member must use a second factor"), required=False
    )


class ChangePasswordForm(PasswordChangeForm):
    """Django's, with the console's own wording (Django's Urdu catalogue lacks these)."""

    error_messages = {
        **PasswordChangeForm.error_messages,
        "password_incorrect": _("Your current password is not right. Enter it again."),
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["old_password"].label = _("Current password")
        self.fields["new_password1"].label = _("New password")
        self.fields["new_password2"].label = _("New password again")

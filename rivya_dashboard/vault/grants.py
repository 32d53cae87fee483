"""Who may use which key for what, and how many credits are left under their caps.

Every call site asks `check_grant` (or `ledger.recording`, which asks it under a lock) before
calling the API, so a refused call never reaches Rivya.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import DecimalField, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.vault.forms import GrantForm
from rivya_dashboard.vault.models import (
    READ_ONLY_ACTIONS,
    Action,
    ApiKey,
    KeyGrant,
    KeyStatus,
    LedgerEntry,
)

CREDITS_SUM = DecimalField(max_digits=20, decimal_places=4)


class GrantRefused(Exception):
    """The member may not make this call; the message says why and what to do."""


@dataclass(frozen=True)
class Period:
    name: str
    start: datetime
    resets_at: datetime


def day_period(now: datetime) -> Period:
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return Period("daily", start, start + timedelta(days=1))


def month_period(now: datetime) -> Period:
    start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    return Period("monthly", start, following)


def credits_spent(member: User, key: ApiKey, since: datetime) -> Decimal:
    """Credits of calls since `since`: the final charge, or the reservation while in flight."""
    return spent_since(member, key, [since])[0]


def spent_since(member: User, key: ApiKey, starts: list[datetime]) -> list[Decimal]:
    """credits_spent for several period starts, in one query: a submit checks both caps at once."""
    charge = Coalesce("credits_final", "credits_reserved")
    totals = LedgerEntry.objects.filter(member=member, key=key, at__gte=min(starts)).aggregate(
        **{
            f"since_{index}": Sum(charge, filter=Q(at__gte=start), output_field=CREDITS_SUM)
            for index, start in enumerate(starts)
        }
    )
    return [totals[f"since_{index}"] or Decimal(0) for index in range(len(starts))]


def visible_keys(user: User) -> QuerySet[ApiKey]:
    """Owners and admins see every key; operators and viewers the keys granted to them."""
    if user.has_role(Role.ADMIN):
        return ApiKey.objects.all()
    if user.has_role(Role.VIEWER):
        return ApiKey.objects.filter(grants__member=user).distinct()
    return ApiKey.objects.none()


def may_hold(user: User, action: str) -> bool:
    """Whether the member's role allows the action at all: viewers only read."""
    if user.has_role(Role.OPERATOR):
        return True
    return user.has_role(Role.VIEWER) and action in READ_ONLY_ACTIONS


def granted_key_ids(user: User, action: str, now: datetime | None = None) -> list[int]:
    """Keys on which the member holds an unexpired grant with action (admins hold none: they
    need none)."""
    if not may_hold(user, action):
        return []
    now = now or timezone.now()
    grants = KeyGrant.objects.filter(member=user).only("key_id", "actions", "expires_at")
    return [g.key_id for g in grants if action in g.actions and not g.is_expired(now)]


def usable_keys(user: User, action: str, now: datetime | None = None) -> list[ApiKey]:
    """Active keys the member may use for action, for the key pickers of other pages."""
    keys = visible_keys(user).filter(status=KeyStatus.ACTIVE)
    if user.has_role(Role.ADMIN):
        return list(keys)
    return list(keys.filter(pk__in=granted_key_ids(user, action, now)))


def check_grant(
    user: User,
    key: ApiKey,
    action: str,
    credits: int | Decimal = 0,
    *,
    now: datetime | None = None,
    lock: bool = False,
) -> KeyGrant | None:
    """Raise GrantRefused unless user may spend `credits` on key for action; returns the grant
    (None for owners and admins, who use every key without caps).

    With lock (inside a transaction: ledger.open_entry) the grant row stays locked until the
    spend is reserved, so two calls racing past a cap queue instead of both seeing the old total.
    """
    now = now or timezone.now()
    if not key.is_active:
        raise GrantRefused(
            _("The key “%(key)s” is disabled. Ask an admin to enable it, or pick another key.")
            % {"key": key.label}
        )
    if user.has_role(Role.ADMIN):
        return None
    if not may_hold(user, action):
        raise GrantRefused(
            _(
                "Viewers may only browse models and credits and read history on the keys granted "
                "to them. Ask the owner for the operator role to do more."
            )
        )
    grants = KeyGrant.objects.filter(member=user, key=key)
    grant = (grants.select_for_update() if lock else grants).first()
    if grant is None:
        raise GrantRefused(
            _("You have no grant for the key “%(key)s”. Ask an admin to grant it to you.")
            % {"key": key.label}
        )
    # The grant was found by these two: its terms and cap sums need not load them again.
    grant.member, grant.key = user, key
    check_grant_terms(grant, action, Decimal(credits), now)
    return grant


def check_grant_terms(grant: KeyGrant, action: str, credits: Decimal, now: datetime) -> None:
    if grant.is_expired(now):
        raise GrantRefused(
            _("Your grant for the key “%(key)s” expired on %(date)s. Ask an admin to renew it.")
            % {"key": grant.key.label, "date": f"{grant.expires_at:%Y-%m-%d %H:%M} UTC"}
        )
    if action not in grant.actions:
        raise GrantRefused(
            _(
                "Your grant for the key “%(key)s” does not include “%(action)s”. "
                "Ask an admin to add it."
            )
            % {"key": grant.key.label, "action": Action(action).label}
        )
    capped = [
        (cap, period)
        for cap, period in (
            (grant.daily_cap, day_period(now)),
            (grant.monthly_cap, month_period(now)),
        )
        if cap is not None
    ]
    if not capped:
        return
    spent_per_period = spent_since(grant.member, grant.key, [period.start for _, period in capped])
    for (cap, period), spent in zip(capped, spent_per_period, strict=True):
        if spent + credits > cap or (credits == 0 and spent >= cap):
            raise GrantRefused(cap_message(grant, period, cap, spent))


def cap_message(grant: KeyGrant, period: Period, cap: int, spent: Decimal) -> str:
    resets = f"{period.resets_at:%Y-%m-%d %H:%M} UTC"
    if period.name == "daily":
        text = ngettext(
            "This call would pass your daily cap of %(cap)s credit on the key “%(key)s” "
            "(%(spent)s used). The cap resets at %(resets)s; ask an admin to raise it sooner.",
            "This call would pass your daily cap of %(cap)s credits on the key “%(key)s” "
            "(%(spent)s used). The cap resets at %(resets)s; ask an admin to raise it sooner.",
            cap,
        )
    else:
        text = ngettext(
            "This call would pass your monthly cap of %(cap)s credit on the key “%(key)s” "
            "(%(spent)s used). The cap resets at %(resets)s; ask an admin to raise it sooner.",
            "This call would pass your monthly cap of %(cap)s credits on the key “%(key)s” "
            "(%(spent)s used). The cap resets at %(resets)s; ask an admin to raise it sooner.",
            cap,
        )
    return text % {
        "cap": cap,
        "key": grant.key.label,
        "spent": f"{spent.normalize():f}",
        "resets": resets,
    }


@dataclass(frozen=True)
class GrantSummary:
    grant: KeyGrant
    spent_today: Decimal
    spent_month: Decimal
    expired: bool


def grant_summaries(user: User, now: datetime | None = None) -> list[GrantSummary]:
    """The member's own grants with what they spent, for the Keys page of an operator."""
    now = now or timezone.now()
    starts = [day_period(now).start, month_period(now).start]
    return [
        GrantSummary(grant, *spent_since(user, grant.key, starts), grant.is_expired(now))
        for grant in KeyGrant.objects.filter(member=user).select_related("key")
    ]


def grant_detail(grant: KeyGrant) -> dict:
    return {
        "member": grant.member.get_username(),
        "key_id": grant.key_id,
        "actions": list(grant.actions),
        "daily_cap": grant.daily_cap,
        "monthly_cap": grant.monthly_cap,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
    }


@transaction.atomic
def do_create_grant(
    actor: User, key: ApiKey, form: GrantForm, *, request: HttpRequest | None = None
) -> KeyGrant:
    grant = form.save(commit=False)
    grant.key, grant.created_by = key, actor
    grant.save()
    record(actor, "grant.created", key.label, request=request, **grant_detail(grant))
    return grant


@transaction.atomic
def do_change_grant(actor: User, form: GrantForm, *, request: HttpRequest | None = None) -> None:
    grant = form.save(commit=False)
    grant.updated_at = timezone.now()
    grant.save()
    record(actor, "grant.changed", grant.key.label, request=request, **grant_detail(grant))


@transaction.atomic
def do_revoke_grant(actor: User, grant: KeyGrant, *, request: HttpRequest | None = None) -> None:
    detail = grant_detail(grant)
    grant.delete()
    record(actor, "grant.revoked", grant.key.label, request=request, **detail)

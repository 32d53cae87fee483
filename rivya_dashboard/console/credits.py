"""Balances of the keys' accounts: readings of `GET /credits`, their history, and what is reserved.

Each reading is kept, failed ones too, so an API outage shows the last known balance with its age
and the error instead of a blank page. A self-chaining task reads every active key periodically.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import DecimalField, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tasks import task

from rivya_dashboard.accounts.models import User
from rivya_dashboard.console import alerts
from rivya_dashboard.console.models import BalanceAlert, BalanceReading, Generation
from rivya_dashboard.console.tasks import chain_waiting
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.crypto import DecryptionError
from rivya_dashboard.vault.grants import (
    Period,
    credits_spent,
    day_period,
    month_period,
)
from rivya_dashboard.vault.models import Action, ApiKey, KeyGrant
from rivya_dashboard.visibility import visible_grants

logger = logging.getLogger(__name__)

CREDITS_FIELD = DecimalField(max_digits=20, decimal_places=4)


def do_read_balance(
    key: ApiKey, actor: User | None = None, *, client: RivyaClient | None = None
) -> BalanceReading:
    """Ask the API for the balance of key's account and keep the answer, or why there was none.

    With an actor the grant is checked first (GrantRefused propagates: nothing was called); the
    periodic task reads as the system. A client given for the key is used as it is.
    """
    reading = BalanceReading(key=key)
    try:
        client = client or key.client()
        action = Action.BROWSE if actor is not None else None
        with ledger.recording(actor, key, "credits.get", action=action, client=client):
            answer = client.get_credits()
        reading.credits = Decimal(str(answer.get("current_credits")))
        reading.request_id = (client.last_request_id or "")[:100]
    except RivyaError as exc:
        reading.error = exc.message[:300]
        reading.request_id = (exc.request_id or "")[:100]
    except DecryptionError:
        reading.error = _("The stored key cannot be decrypted; replace it on the Keys page.")
    except (ArithmeticError, TypeError, ValueError):
        reading.error = _("The API answered without a readable current_credits; try again later.")
    reading.save()
    alerts.do_check_threshold(reading)
    return reading


@dataclass(frozen=True)
class Balance:
    key: ApiKey
    latest: BalanceReading | None
    known: BalanceReading | None
    reserved: Decimal
    low: bool

    @property
    def stale_error(self) -> str:
        """The error of the latest reading when it failed; the known balance is then older."""
        return self.latest.error if self.latest is not None and self.latest.failed else ""


def balances(keys: list[ApiKey]) -> list[Balance]:
    reserved = reserved_by_key()
    low = set(
        BalanceAlert.objects.filter(below_since__isnull=False).values_list("key_id", flat=True)
    )
    found = []
    for key in keys:
        readings = BalanceReading.objects.filter(key=key)
        found.append(
            Balance(
                key,
                readings.first(),
                readings.filter(credits__isnull=False).first(),
                reserved.get(key.pk, Decimal(0)),
                key.pk in low,
            )
        )
    return found


def reserved_by_key() -> dict[int, Decimal]:
    """Credits reserved by jobs still running, which the balance has paid but not yet settled."""
    rows = (
        Generation.objects.running()
        .values("key_id")
        .annotate(
            total=Sum(
                Coalesce("reserved_credits", "estimate_credits"),
                output_field=CREDITS_FIELD,
            )
        )
    )
    return {row["key_id"]: row["total"] or Decimal(0) for row in rows}


def balance_history(key: ApiKey, days: int = 30) -> list[tuple[datetime, Decimal]]:
    since = timezone.now() - timedelta(days=days)
    readings = BalanceReading.objects.filter(key=key, at__gte=since, credits__isnull=False)
    return list(readings.order_by("at").values_list("at", "credits"))


def total_balance(found: list[Balance]) -> Decimal | None:
    known = [b.known.credits for b in found if b.known is not None]
    return sum(known, Decimal(0)) if known else None


@dataclass(frozen=True)
class CapState:
    grant: KeyGrant
    period: Period
    cap: int
    spent: Decimal

    @property
    def left(self) -> Decimal:
        return max(Decimal(self.cap) - self.spent, Decimal(0))

    @property
    def reached(self) -> bool:
        return self.spent >= self.cap

    @property
    def percent(self) -> int:
        return min(100, round(self.spent * 100 / self.cap)) if self.cap else 100


def cap_states(user: User, now: datetime | None = None) -> list[CapState]:
    """Every capped grant the member may see (admins: all, others: their own) and what is left."""
    now = now or timezone.now()
    grants = visible_grants(user).select_related("key", "member")
    states = []
    for grant in grants:
        for cap, period in (
            (grant.daily_cap, day_period(now)),
            (grant.monthly_cap, month_period(now)),
        ):
            if cap is not None:
                spent = credits_spent(grant.member, grant.key, period.start)
                states.append(CapState(grant, period, cap, spent))
    return states


def own_caps(user: User, key: ApiKey) -> list[CapState]:
    """The member's own caps on the key, for the cost box before a submit."""
    return [
        state
        for state in cap_states(user)
        if state.grant.member_id == user.pk and state.grant.key_id == key.pk
    ]


@task()
def refresh_balances() -> int:
    """Read every active key's balance, then come back after RIVYA_BALANCE_REFRESH_MINUTES."""
    keys = list(ApiKey.objects.filter(status="active"))
    for key in keys:
        reading = do_read_balance(key)
        if reading.failed:
            logger.warning("Balance of key %s not read: %s", key.pk, reading.error)
    run_after = timezone.now() + timedelta(minutes=settings.RIVYA_BALANCE_REFRESH_MINUTES)
    # A second chain, started by two page loads at once, ends here instead of running forever.
    if not chain_waiting(refresh_balances):
        refresh_balances.using(run_after=run_after).enqueue()
    return len(keys)


@task()
def read_balance(key_id: int) -> str:
    """One key's balance, read by the worker when the request that added the key could not."""
    key = ApiKey.objects.filter(pk=key_id, status="active").first()
    if key is None:
        return "no active key"
    reading = do_read_balance(key)
    return reading.error or str(reading.credits)


def ensure_balance_refresh() -> None:
    """Start the refresh chain unless one waits; a killed worker or a fresh install has none."""
    if not chain_waiting(refresh_balances):
        refresh_balances.enqueue()

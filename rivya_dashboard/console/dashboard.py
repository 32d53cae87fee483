"""What the dashboard home shows at a glance: balance, today's spend, running jobs, failures.

Failing webhook endpoints come from the webhooks app's banner context (`webhook_alerts`, admins
only), not from here: the console imports nothing of the webhooks app.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import User
from rivya_dashboard.console import credits, usage
from rivya_dashboard.console.models import Generation, Status
from rivya_dashboard.vault.grants import day_period

RECENT_DAYS = 7


@dataclass(frozen=True)
class Glance:
    balances: list[credits.Balance]
    total_balance: Decimal | None
    # The day's calls the member may see: the whole team's for those who see everything.
    team_today: usage.Totals
    sees_everything: bool
    mine_today: usage.Totals
    running_jobs: list[Generation]
    failed_jobs: list[Generation]


def glance(user: User) -> Glance:
    now = timezone.now()
    today = visibility.visible_usage(user).filter(at__gte=day_period(now).start)
    found = credits.balances(list(visibility.visible_balance_keys(user).filter(status="active")))
    jobs = visibility.visible_generations(user)
    failed = jobs.filter(status=Status.FAILED, created_at__gte=now - timedelta(days=RECENT_DAYS))
    return Glance(
        balances=found,
        total_balance=credits.total_balance(found),
        team_today=usage.totals(today),
        sees_everything=visibility.sight_of(user).everything,
        mine_today=usage.totals(today.filter(member=user)),
        running_jobs=list(jobs.running()[:5]),
        failed_jobs=list(failed[:5]),
    )

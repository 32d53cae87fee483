"""Per-key sliding-window rate limit (§3.3), counted from the request log."""

import math
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Min
from django.utils import timezone

from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.errors import ApiError
from rivya_dashboard.sandbox.models import RequestLog, SandboxKey

# The log doubles as the control page's recent-requests list; keep a day of it at most.
LOG_RETENTION = timedelta(days=1)
TRIM_EVERY = 500


@dataclass(frozen=True)
class RateState:
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


def hit(key: SandboxKey, limit: int) -> RateState:
    """Count this request against the key's window; raise 429 rate_limited when it is full."""
    now = timezone.now()
    window = timedelta(seconds=choices.RATE_LIMIT_WINDOW_SECONDS)
    recent = RequestLog.objects.filter(key=key, created_at__gt=now - window).exclude(status=429)
    found = recent.aggregate(used=Count("pk"), oldest=Min("created_at"))
    used = found["used"]
    reset_at = (found["oldest"] or now) + window
    reset = math.ceil(reset_at.timestamp())
    if used >= limit:
        retry_after = max(1, math.ceil(reset_at.timestamp() - time.time()))
        state = RateState(limit=limit, remaining=0, reset=reset)
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests: {limit} per {choices.RATE_LIMIT_WINDOW_SECONDS} s for this key.",
            {**state.headers(), "Retry-After": str(retry_after)},
        )
    return RateState(limit=limit, remaining=limit - used - 1, reset=reset)


def trim_log(newest_pk: int) -> None:
    if newest_pk % TRIM_EVERY == 0:
        RequestLog.objects.filter(created_at__lt=timezone.now() - LOG_RETENTION).delete()

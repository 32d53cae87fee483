"""The job page's status card: what it shows and when it asks again.

The card polls at the worker's pace: it asks just after the worker's next poll of the API is due
(no sooner, since nothing can change before it), and at least every PAGE_POLL_MAX_SECONDS, since
a verified webhook may end the job between two polls. At the end the status view answers htmx's
stop-polling status.
"""

import math

from django.utils import timezone

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import User
from rivya_dashboard.console.models import Generation

PAGE_POLL_MIN_SECONDS = 2
PAGE_POLL_MAX_SECONDS = 10
# The worker's poll takes a moment (the API call, the downloads of a finished job's outputs).
AFTER_WORKER_SECONDS = 1.0


def poll_seconds(generation: Generation) -> int | None:
    """Seconds until the page asks again; None once the job ended."""
    if generation.is_terminal:
        return None
    if generation.next_poll_at is None:
        return PAGE_POLL_MIN_SECONDS
    due = (generation.next_poll_at - timezone.now()).total_seconds() + AFTER_WORKER_SECONDS
    return min(PAGE_POLL_MAX_SECONDS, max(PAGE_POLL_MIN_SECONDS, math.ceil(due)))


def finishing_request(generation: Generation) -> object | None:
    """The verified webhook request that ended the job (an inbox request), or None when polling
    did: read through the link the webhooks app keeps on its rows, so nothing here imports it."""
    if not generation.is_terminal:
        return None
    applied = generation.webhook_requests.filter(generation_applied_at__isnull=False)
    return applied.select_related("inbox").first()


def status_context(generation: Generation, member: User) -> dict:
    """The card's context; the finishing event is linked only for members who may see it."""
    found = finishing_request(generation)
    visible = visibility.visible_inbox_requests(member)
    shown = found if found is not None and visible.filter(pk=found.pk).exists() else None
    return {
        "job": generation,
        "poll_seconds": poll_seconds(generation),
        "webhook_request": shown,
        "by_webhook": found is not None,
    }

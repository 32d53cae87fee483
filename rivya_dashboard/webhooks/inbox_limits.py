"""How much an inbox keeps: at most a number of requests and of stored bytes (the oldest go
first), each for a retention period.

The totals live on the Inbox row and change in the same transaction as the request stored or
pruned, so a check costs one small update instead of counting the table; the housekeeping step
recounts them from the rows, so nothing can drift for long. The rate limit is counted in the
same update; the cap on a refused request's body is applied in receiver.py.
"""

import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from rivya_dashboard.webhooks.models import Inbox, InboxRequest

MB = 1024 * 1024
# Rows pruned per stored request at most: a lowered limit is reached over the next requests and
# the housekeeping step, never in one long write that holds up every delivery.
PRUNE_BATCH = 500
EXPIRE_BATCH = 1000
RATE_WINDOW_SECONDS = 60


COUNT_IN = (
    f"UPDATE {Inbox._meta.db_table} SET"  # noqa: S608 - the table name is the model's own
    " rate_count = CASE WHEN rate_window = %s THEN rate_count + 1 ELSE 1 END,"
    " rate_window = %s, stored_requests = stored_requests + 1,"
    " stored_bytes = stored_bytes + %s"
    " WHERE id = %s AND (rate_window <> %s OR rate_count < %s)"
    " RETURNING stored_requests, stored_bytes"
)


class RateLimited(Exception):
    """The inbox's rate window is full; nothing was written."""

    def __init__(self, reopens_at: float) -> None:
        super().__init__(reopens_at)
        self.reopens_at = reopens_at


@dataclass(frozen=True)
class Limits:
    max_requests: int
    max_bytes: int
    retention_days: int
    rate_per_minute: int

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)


def limits_of(inbox: Inbox) -> Limits:
    """The inbox's own limits, or the RIVYA_INBOX_* defaults where it has none."""
    return Limits(
        max_requests=inbox.max_requests or settings.RIVYA_INBOX_MAX_REQUESTS,
        max_bytes=(inbox.max_megabytes or settings.RIVYA_INBOX_MAX_MB) * MB,
        retention_days=inbox.retention_days or settings.RIVYA_INBOX_RETENTION_DAYS,
        rate_per_minute=inbox.rate_per_minute or settings.RIVYA_INBOX_RATE_PER_MINUTE,
    )


def footprint(row: InboxRequest) -> int:
    """What the row holds in the database: the body, its search copy and the headers."""
    return len(bytes(row.body)) + len(row.body_text.encode()) + len(json.dumps(row.headers))


def do_store(row: InboxRequest, now: float) -> None:
    """Count the request in its inbox's rate window and totals, insert it, and keep the inbox
    within its limits; the caller holds the transaction. The rate limit is a fixed one-minute
    window counted on the inbox row by the same conditional update as the totals, so every
    process shares it at no extra write; a full window raises RateLimited."""
    limits = limits_of(row.inbox)
    row.stored_bytes = footprint(row)
    minute = int(now // RATE_WINDOW_SECONDS)
    with connection.cursor() as cursor:
        # One statement for the window and the totals, read back with RETURNING: on the hot
        # path, building the same update with ORM expressions cost more than running it.
        cursor.execute(
            COUNT_IN,
            [minute, minute, row.stored_bytes, row.inbox_id, minute, limits.rate_per_minute],
        )
        counted = cursor.fetchone()
    if counted is None:
        raise RateLimited((minute + 1) * RATE_WINDOW_SECONDS)
    row.save()
    count, size = counted
    if count > limits.max_requests or size > limits.max_bytes:
        prune(row.inbox_id, count - limits.max_requests, size - limits.max_bytes, keep=row.pk)


def prune(inbox_id: int, extra_requests: int, extra_bytes: int, *, keep: int | None = None) -> int:
    """Delete the oldest requests until the excess is gone; returns how many went."""
    oldest = InboxRequest.objects.filter(inbox_id=inbox_id).exclude(pk=keep)
    taken: list[int] = []
    freed = 0
    candidates = oldest.order_by("received_at", "pk").values_list("pk", "stored_bytes")
    for pk, size in candidates[: max(extra_requests, 0) + PRUNE_BATCH]:
        if len(taken) >= extra_requests and freed >= extra_bytes:
            break
        taken.append(pk)
        freed += size
    if not taken:
        return 0
    InboxRequest.objects.filter(pk__in=taken).delete()
    # Never below zero, even when rows were added behind the totals' back (the recount fixes it).
    Inbox.objects.filter(pk=inbox_id).update(
        stored_requests=Greatest(F("stored_requests") - len(taken), Value(0)),
        stored_bytes=Greatest(F("stored_bytes") - freed, Value(0)),
        pruned_requests=F("pruned_requests") + len(taken),
    )
    return len(taken)


def do_enforce(inbox: Inbox) -> int:
    """Drop requests past the retention period, recount the totals from the rows, and prune to
    the limits; returns how many requests went."""
    from rivya_dashboard.webhooks.receiver import one_writer

    limits = limits_of(inbox)
    removed = 0
    expired = InboxRequest.objects.filter(
        inbox=inbox, received_at__lt=timezone.now() - limits.retention
    )
    while batch := list(expired.values_list("pk", flat=True)[:EXPIRE_BATCH]):
        with one_writer(), transaction.atomic():
            removed += (
                InboxRequest.objects.filter(pk__in=batch)
                .delete()[1]
                .get(InboxRequest._meta.label, 0)
            )
    while True:
        with one_writer(), transaction.atomic():
            Inbox.objects.select_for_update().filter(pk=inbox.pk).first()
            totals = InboxRequest.objects.filter(inbox=inbox).aggregate(
                count=Count("pk"), size=Sum("stored_bytes")
            )
            count, size = totals["count"], totals["size"] or 0
            Inbox.objects.filter(pk=inbox.pk).update(stored_requests=count, stored_bytes=size)
            pruned = prune(inbox.pk, count - limits.max_requests, size - limits.max_bytes)
        removed += pruned
        if pruned < PRUNE_BATCH:
            return removed


def do_enforce_all() -> int:
    """The housekeeping step: every inbox within its retention period and limits."""
    return sum(do_enforce(inbox) for inbox in Inbox.objects.all())

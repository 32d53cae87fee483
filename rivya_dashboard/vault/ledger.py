"""Record every API call made through the console, successful or not.

    with ledger.recording(user, key, "generations.create", action=Action.GENERATE,
                          client=client, model=model, credits=reserve,
                          idempotency_key=nonce) as entry:
        generation = client.create_generation(...)
        entry.credits_final = generation.get("final_credits")

The row is written before the call (so in-flight reservations count against the caps, checked
under a lock on the grant) and settled after it, also when it fails.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from rivya_dashboard.accounts.models import User
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.grants import check_grant
from rivya_dashboard.vault.models import ApiKey, LedgerEntry

# The ledger row of the call being made in this thread, so that whoever observes the HTTP
# exchange (the workbench's inspector) knows the member, key and operation behind it.
current_entry: ContextVar[LedgerEntry | None] = ContextVar("current_ledger_entry", default=None)


def open_entry(
    user: User | None,
    key: ApiKey,
    operation: str,
    *,
    action: str | None,
    credits: int | Decimal | None,
    model: str,
    idempotency_key: str,
) -> LedgerEntry:
    with transaction.atomic():
        if action is not None and user is not None:
            # The one grant check of a call, under the lock that holds until its spend is saved.
            check_grant(user, key, action, credits or 0, lock=True)
        return LedgerEntry.objects.create(
            member=user,
            member_name=user.get_username() if user else "system",
            # A key being tested before it is saved has no row yet; its label is kept.
            key=key if key.pk else None,
            key_label=key.label,
            operation=operation,
            model=model or "",
            idempotency_key=idempotency_key or "",
            credits_reserved=credits,
        )


def settle_failure(entry: LedgerEntry, exc: BaseException) -> None:
    if isinstance(exc, RivyaError):
        entry.http_status = exc.status
        entry.error_code = (exc.code or type(exc).__name__)[:64]
        entry.request_id = (exc.request_id or "")[:100]
        if exc.status is not None and exc.status < 500:
            # Rivya refused the call, so it charged nothing; a lost answer keeps the reservation.
            entry.credits_final = Decimal(0)
    else:
        entry.error_code = entry.error_code or "console_error"


@contextmanager
def recording(
    user: User | None,
    key: ApiKey,
    operation: str,
    *,
    action: str | None = None,
    client: Any = None,
    model: str = "",
    credits: int | Decimal | None = None,
    idempotency_key: str = "",
) -> Iterator[LedgerEntry]:
    """Check the grant (when action is given), open a ledger row, and settle it on exit."""
    entry = open_entry(
        user,
        key,
        operation,
        action=action,
        credits=credits,
        model=model,
        idempotency_key=idempotency_key,
    )
    with settling(entry, key, client=client):
        yield entry


@contextmanager
def settling(entry: LedgerEntry, key: ApiKey, *, client: Any = None) -> Iterator[LedgerEntry]:
    """Settle a row opened earlier by open_entry: a call whose row was written in the request
    that asked for it (in that request's transaction) and is made later, by another thread."""
    started = time.perf_counter()
    outer = current_entry.get()
    current_entry.set(entry)
    try:
        yield entry
    except BaseException as exc:
        settle_failure(entry, exc)
        raise
    else:
        entry.http_status = entry.http_status or 200
    finally:
        # Set back rather than reset by token: a streamed call may end in another context.
        current_entry.set(outer)
        entry.latency_ms = round((time.perf_counter() - started) * 1000)
        if client is not None and not entry.request_id:
            entry.request_id = (client.last_request_id or "")[:100]
        entry.save()
        if key.pk:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())

"""Webhook events and their real deliveries, made by the background worker (contract §9.3-§9.7).

Flow: emit() stores an event and one pending delivery per subscribed active endpoint, and
enqueues the first attempt. attempt_delivery() claims a due delivery, POSTs the signed event
(10 s timeout, redirects not followed) and records the attempt; a failed attempt sets
next_retry_at from the retry schedule. One self-rescheduling sweep task picks up due retries and
generations that became terminal, so no per-retry bookkeeping is lost if a worker dies.

Generations advance from elapsed time (generations.py): whichever reader moves one to a terminal
state sends generation_finished, whose receiver here emits the event. The sweep runs every second
while generations are running, so events go out even when nobody polls; a generation's event row
(unique per task id) is the marker that it was emitted.
"""

import json
import time
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django_tasks import task

from rivya_dashboard import outbound
from rivya_dashboard.rivya import signing
from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.generations import advance, generation_finished, serialize
from rivya_dashboard.sandbox.models import (
    Account,
    Generation,
    SandboxSettings,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSettings,
)
from rivya_dashboard.sandbox.webhooks_payloads import event_object
from rivya_dashboard.sandbox.webhooks_targets import TargetRejected, check_target

USER_AGENT = "Rivya-Sandbox-Webhooks/1"
# Between sweeps while generations are still running; with nothing running, the next sweep is
# due when the earliest retry is.
SWEEP_SECONDS_WHILE_RUNNING = 1
LEASE_SECONDS = choices.WEBHOOK_TIMEOUT_SECONDS + 5
ERROR_LENGTH = 300
WEBHOOK_FAULT_NAMES = ("bad-signature", "stale-timestamp", "duplicate-delivery", "out-of-order")


def retry_offsets(fast: bool) -> list[timedelta]:
    divisor = choices.WEBHOOK_FAST_RETRY_DIVISOR if fast else 1
    return [timedelta(seconds=s / divisor) for s in choices.WEBHOOK_RETRY_DELAYS_SECONDS]


def emit(
    account: Account,
    event_type: str,
    data: dict,
    *,
    task_id: str = "",
    test_endpoint: WebhookEndpoint | None = None,
    faults: dict | None = None,
) -> tuple[WebhookEvent, list[WebhookDelivery]]:
    """Store an event and its deliveries. A test event goes to `test_endpoint` only; `faults`
    are a request's own (X-Sandbox-Fault) on top of the global and per-key ones.

    Raises IntegrityError when the generation `task_id` already has its event.
    """
    with transaction.atomic():
        event = WebhookEvent.objects.create(
            account=account,
            type=event_type,
            task_id=task_id,
            data=data,
            test=test_endpoint is not None,
        )
        if test_endpoint is not None:
            endpoints = [test_endpoint]
        else:
            active = account.webhook_endpoints.filter(status=WebhookEndpoint.Status.ACTIVE)
            endpoints = [e for e in active if event_type in e.event_types]
        deliveries = [
            WebhookDelivery.objects.create(
                endpoint=endpoint,
                event=event,
                created_at=event.created_at,
                next_retry_at=event.created_at,
                faults=webhook_faults(endpoint, faults or {}),
            )
            for endpoint in endpoints
        ]
        for delivery in deliveries:
            transaction.on_commit(lambda pk=delivery.pk: deliver_webhook.enqueue(pk))
    return event, deliveries


def emit_generation_event(generation: Generation) -> WebhookEvent | None:
    """Emit generation.succeeded/failed once the (already advanced) generation is terminal."""
    if not generation.is_terminal:
        return None
    if WebhookEvent.objects.filter(task_id=generation.public_id, test=False).exists():
        return None
    try:
        event, _ = emit(
            generation.account,
            f"generation.{generation.status}",
            serialize(generation),
            task_id=generation.public_id,
        )
    except IntegrityError:
        return None  # another reader emitted it first
    return event


def emit_generation_events(account: Account | None = None) -> None:
    """Advance every generation (of `account`) not yet emitted, emitting those now terminal."""
    pending = Generation.objects.select_related("account").exclude(
        Exists(WebhookEvent.objects.filter(task_id=OuterRef("public_id"), test=False))
    )
    if account is not None:
        pending = pending.filter(account=account)
    for generation in pending:
        # advance() sends generation_finished for a step to terminal; a generation that was
        # already terminal (its event lost to a crash) is emitted directly.
        emit_generation_event(advance(generation))


@receiver(generation_finished)
def on_generation_finished(sender: type, generation: Generation, **kwargs: object) -> None:
    emit_generation_event(generation)


@receiver(post_save, sender=Generation)
def on_generation_saved(
    sender: type, instance: Generation, created: bool, **kwargs: object
) -> None:
    if created:
        # After the submit commits, so the sweep's bookkeeping never lengthens its transaction.
        transaction.on_commit(schedule_sweep)


@task()
def deliver_webhook(delivery_pk: int) -> None:
    attempt_delivery(delivery_pk)


def attempt_delivery(delivery_pk: int, *, now: datetime | None = None) -> WebhookDelivery | None:
    """Make one attempt if the delivery is due and nobody else holds it; None otherwise."""
    now = now or timezone.now()
    due = Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now)
    claimed = (
        WebhookDelivery.objects.filter(due, pk=delivery_pk, status=WebhookDelivery.Status.PENDING)
        # The lease lets a sweep retry the attempt if this worker dies mid-request.
        .update(next_retry_at=now + timedelta(seconds=LEASE_SECONDS))
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=delivery_pk)
    endpoint = delivery.endpoint
    if endpoint.status != WebhookEndpoint.Status.ACTIVE and not delivery.event.test:
        return stop(delivery, now, f"The endpoint is {endpoint.status}; delivery stopped.")
    faults = set(delivery.faults)
    webhook_settings = WebhookSettings.load()
    if "out-of-order" in faults and hold_back(delivery, now, webhook_settings.fast_retries):
        return delivery
    status, error, duration_ms = post(delivery, faults, webhook_settings.allow_local_targets)
    record(delivery, now, status, error, duration_ms, faults, webhook_settings.fast_retries)
    if "out-of-order" in faults:
        release_held(endpoint, delivery, now)
    return delivery


def webhook_faults(endpoint: WebhookEndpoint, request_faults: dict) -> list[str]:
    key_faults = endpoint.created_by_key.faults if endpoint.created_by_key else {}
    merged = {**SandboxSettings.load().faults, **key_faults, **request_faults}
    return sorted(name for name in merged if name in WEBHOOK_FAULT_NAMES)


def stop_pending(endpoint: WebhookEndpoint, reason: str) -> int:
    """End the endpoint's pending deliveries now (it was disabled or revoked)."""
    return endpoint.deliveries.filter(status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED,
        error=reason,
        completed_at=timezone.now(),
        next_retry_at=None,
    )


def hold_back(delivery: WebhookDelivery, now: datetime, fast: bool) -> bool:
    """Out-of-order fault: keep this first attempt back until the endpoint's next delivery."""
    if delivery.attempt or delivery.held_back:
        return False
    others_held = WebhookDelivery.objects.filter(
        endpoint=delivery.endpoint, status=WebhookDelivery.Status.PENDING, held_back=True, attempt=0
    ).exclude(pk=delivery.pk)
    if others_held.exists():
        return False
    delivery.held_back = True
    delivery.next_retry_at = now + retry_offsets(fast)[1]
    delivery.save(update_fields=["held_back", "next_retry_at"])
    schedule_sweep(delivery.next_retry_at)
    return True


def release_held(endpoint: WebhookEndpoint, sent: WebhookDelivery, now: datetime) -> None:
    held = WebhookDelivery.objects.filter(
        endpoint=endpoint, status=WebhookDelivery.Status.PENDING, held_back=True, attempt=0
    ).exclude(pk=sent.pk)
    for pk in held.values_list("pk", flat=True):
        WebhookDelivery.objects.filter(pk=pk).update(next_retry_at=now)
        attempt_delivery(pk, now=now)


def signed_request(delivery: WebhookDelivery, faults: set[str]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event_object(delivery.event), separators=(",", ":")).encode()
    timestamp = int(time.time())
    secrets = delivery.endpoint.active_secrets()
    if "stale-timestamp" in faults:
        timestamp -= choices.WEBHOOK_STALE_SECONDS
    if "bad-signature" in faults:
        secrets = [signing.SECRET_PREFIX + "not-the-endpoint-secret"]
    headers = signing.sign(secrets, body, msg_id=delivery.event.public_id, timestamp=timestamp)
    return body, {**headers, "Content-Type": "application/json", "User-Agent": USER_AGENT}


def post(
    delivery: WebhookDelivery, faults: set[str], allow_local: bool
) -> tuple[int | None, str, int]:
    """POST the event once (twice under the duplicate fault); (status, error, duration ms)."""
    started = time.monotonic()
    try:
        check_target(delivery.endpoint.url, allow_local=allow_local)
        body, headers = signed_request(delivery, faults)
        response = send(delivery.endpoint.url, body, headers, allow_local)
        if "duplicate-delivery" in faults:
            send(delivery.endpoint.url, body, headers, allow_local)
    except TargetRejected as error:
        return None, f"Target refused: {error}", elapsed_ms(started)
    except outbound.Timeout:
        timeout = choices.WEBHOOK_TIMEOUT_SECONDS
        return None, f"No response within {timeout} s.", elapsed_ms(started)
    except outbound.RequestFailed as error:
        return None, f"Connection failed: {type(error).__name__}", elapsed_ms(started)
    duration_ms = elapsed_ms(started)
    if 200 <= response.status_code < 300:
        return response.status_code, "", duration_ms
    if response.is_redirect:
        return response.status_code, "Redirects are not followed.", duration_ms
    return response.status_code, f"The receiver answered HTTP {response.status_code}.", duration_ms


def send(url: str, body: bytes, headers: dict[str, str], allow_local: bool) -> outbound.Response:
    # Redirects are never followed (§9.3); with local targets allowed, loopback and private
    # addresses may be reached, never link-local (cloud metadata) ones.
    session = outbound.guarded_session(allow_local=allow_local)
    response = session.post(
        url, data=body, headers=headers, timeout=choices.WEBHOOK_TIMEOUT_SECONDS
    )
    response.close()
    return response


def elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def record(
    delivery: WebhookDelivery,
    now: datetime,
    status: int | None,
    error: str,
    duration_ms: int,
    faults: set[str],
    fast: bool,
) -> None:
    succeeded = not error
    delivery.attempt += 1
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempt,
        started_at=now,
        response_status=status,
        error=error[:ERROR_LENGTH],
        duration_ms=duration_ms,
        fault=",".join(sorted(faults)),
    )
    delivery.response_status = status
    delivery.error = error[:ERROR_LENGTH]
    delivery.duration_ms = duration_ms
    offsets = retry_offsets(fast)
    endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    if succeeded:
        delivery.status = WebhookDelivery.Status.SUCCEEDED
        delivery.completed_at = now
        delivery.next_retry_at = None
        endpoints.update(failure_count=0, failed_events_in_a_row=0, last_success_at=now)
    elif delivery.attempt < len(offsets):
        delivery.next_retry_at = max(now, delivery.created_at + offsets[delivery.attempt])
        endpoints.update(failure_count=F("failure_count") + 1, last_failure_at=now)
    else:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.completed_at = now
        delivery.next_retry_at = None
        endpoints.update(
            failure_count=F("failure_count") + 1,
            failed_events_in_a_row=F("failed_events_in_a_row") + 1,
            last_failure_at=now,
        )
        disable_if_failing(delivery.endpoint_id, now)
    delivery.save()
    if delivery.next_retry_at is not None:
        schedule_sweep(delivery.next_retry_at)


def disable_if_failing(endpoint_pk: int, now: datetime) -> None:
    WebhookEndpoint.objects.filter(
        pk=endpoint_pk,
        status=WebhookEndpoint.Status.ACTIVE,
        failed_events_in_a_row__gte=choices.WEBHOOK_DISABLE_AFTER_FAILED_EVENTS,
    ).update(status=WebhookEndpoint.Status.DISABLED, disabled_at=now, updated_at=now)


def stop(delivery: WebhookDelivery, now: datetime, reason: str) -> WebhookDelivery:
    delivery.status = WebhookDelivery.Status.FAILED
    delivery.error = reason
    delivery.completed_at = now
    delivery.next_retry_at = None
    delivery.save(update_fields=["status", "error", "completed_at", "next_retry_at"])
    return delivery


def deliver_due(now: datetime | None = None) -> int:
    """Attempt every pending delivery whose time has come (retries, lost first attempts)."""
    now = now or timezone.now()
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_retry_at__lte=now
    ).order_by("next_retry_at", "pk")
    return sum(attempt_delivery(pk, now=now) is not None for pk in due.values_list("pk", flat=True))


@task()
def sweep(scheduled_for: str) -> None:
    """Emit finished generations' events and make due retries, then schedule the next sweep."""
    webhook_settings = WebhookSettings.load()
    if webhook_settings.sweep_at is None or webhook_settings.sweep_at.isoformat() != scheduled_for:
        return  # superseded by an earlier schedule_sweep()
    WebhookSettings.objects.filter(pk=webhook_settings.pk).update(sweep_at=None)
    emit_generation_events()
    deliver_due()
    schedule_next_sweep()


def schedule_next_sweep() -> None:
    now = timezone.now()
    still_running = Generation.objects.exclude(
        status__in=[Generation.Status.SUCCEEDED, Generation.Status.FAILED]
    ).exists()
    if still_running:
        schedule_sweep(now + timedelta(seconds=SWEEP_SECONDS_WHILE_RUNNING))
        return
    next_retry = (
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        .order_by("next_retry_at")
        .values_list("next_retry_at", flat=True)
        .first()
    )
    if next_retry is not None:
        schedule_sweep(max(next_retry, now + timedelta(seconds=1)))


def schedule_sweep(at: datetime | None = None) -> bool:
    """Make sure a sweep runs by `at` (default: now). True when a sweep task was enqueued.

    Backends that cannot defer (the immediate backend in tests) get no sweep: tests call
    deliver_due() and emit_generation_events() themselves.
    """
    if not sweep.get_backend().supports_defer:
        return False
    at = at or timezone.now()
    WebhookSettings.load()
    moved = WebhookSettings.objects.filter(
        Q(sweep_at__isnull=True) | Q(sweep_at__gt=at) | Q(sweep_at__lt=timezone.now()), pk=1
    ).update(sweep_at=at)
    if moved:
        transaction.on_commit(lambda: sweep.using(run_after=at).enqueue(at.isoformat()))
    return bool(moved)

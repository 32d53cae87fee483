"""Submitting generations and following them to the end.

A submit first reserves the row (unique on key + idempotency key), then calls the API with that
Idempotency-Key: a double click or a resubmitted form finds the reserved row instead of calling
twice, and a request the API refuses leaves no row behind. Polling follows the documented
back-off (contract §6: first after 2-3 s, then every 5-10 s, longer for video and audio).
"""

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.console import media_cache
from rivya_dashboard.console.models import (
    CatalogueModel,
    Generation,
    Output,
    Status,
    UploadedFile,
)
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.rivya.errors import (
    AuthError,
    NotFound,
    RateLimited,
    RivyaError,
    Unavailable,
)
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.crypto import DecryptionError
from rivya_dashboard.vault.grants import GrantRefused
from rivya_dashboard.vault.models import Action, ApiKey, LedgerEntry

logger = logging.getLogger(__name__)

RUNNING_STATUSES = {Status.QUEUED, Status.PROCESSING}
END_STATUSES = {Status.SUCCEEDED, Status.FAILED}
MAX_OUTPUTS = 20
FIRST_POLL_SECONDS = 2.5
# Each later poll waits 1.5 times the previous one, up to the cap: 5, 7.5, 10 s for images, and
# on to 30 s for the long video and audio jobs.
BACKOFF_FACTOR = 1.5
SECOND_POLL_SECONDS = 5.0
POLL_CAP_SECONDS = {"image": 10.0, "video": 30.0, "audio": 20.0}


def poll_delay(poll_count: int, category: str) -> float:
    """Seconds until the next poll, already divided by RIVYA_POLL_SPEED (tests run fast)."""
    if poll_count == 0:
        seconds = FIRST_POLL_SECONDS
    else:
        cap = POLL_CAP_SECONDS.get(category, 10.0)
        seconds = min(cap, SECOND_POLL_SECONDS * BACKOFF_FACTOR ** (poll_count - 1))
    return seconds / settings.RIVYA_POLL_SPEED


def idempotency_key(user: User, nonce: str) -> str:
    # Scoped to the member: nobody can land on another member's job by replaying their nonce.
    return f"console-{user.pk}-{nonce}"[:100]


def estimate_credits(model: dict, params: dict) -> Decimal:
    """The reservation the API will make: base credits for fixed prices, as the contract shows."""
    return Decimal(str(model.get("base_credits") or 0))


def apply_progress(generation: Generation, remote: dict) -> None:
    """Copy what a remote generation object says of a job on its way (id, status, credits) onto
    the row, unsaved."""
    if remote.get("status") in RUNNING_STATUSES:
        generation.status = remote["status"]
    generation.remote_id = str(remote.get("id") or generation.remote_id)[:100]
    for field in ("reserved_credits", "final_credits"):
        if isinstance(remote.get(field), int | float):
            setattr(generation, field, Decimal(str(remote[field])))
    if generation.status == Status.PROCESSING and generation.started_at is None:
        generation.started_at = timezone.now()


def finish(generation: Generation, remote: dict) -> bool:
    """End a job with the terminal state the API reported, by a poll or by a verified webhook.

    The outputs are downloaded first; then status, final charge, finish time and outputs are saved
    in one transaction, so the job page never shows "Succeeded" without its results. Returns False
    (and changes nothing) when the state is not terminal or the job had already ended: the other
    path got there first.
    """
    status = remote.get("status")
    if status not in END_STATUSES:
        return False
    outputs = []
    if status == Status.SUCCEEDED:
        outputs = media_cache.fetched_outputs(generation, result_urls(remote))
    with transaction.atomic():
        if not _still_running(generation):
            return False
        _apply_end(generation, remote)
        generation.save()
        # An Output left by an earlier version of the console keeps its place.
        Output.objects.bulk_create(outputs, ignore_conflicts=True)
        settle_charge(generation)
    return True


def _apply_end(generation: Generation, remote: dict) -> None:
    apply_progress(generation, remote)
    generation.status = remote["status"]
    if generation.status == Status.FAILED:
        error = remote.get("error") if isinstance(remote.get("error"), dict) else {}
        generation.error_code = str(error.get("code") or "generation_failed")[:64]
        generation.error_message = str(error.get("message") or _("The generation failed."))[:500]
    updated = parse_datetime(str(remote.get("updated_at") or ""))
    generation.finished_at = updated or timezone.now()
    generation.next_poll_at = None


def _still_running(generation: Generation) -> bool:
    """Lock the row (inside a transaction) and tell whether it has not ended meanwhile."""
    running = Generation.objects.select_for_update().running().filter(pk=generation.pk)
    return running.values_list("pk", flat=True).first() is not None


def result_urls(remote: dict) -> list[str]:
    result = remote.get("result") if isinstance(remote.get("result"), dict) else {}
    urls = result.get("urls") or [result.get("primary_url")]
    return urls[:MAX_OUTPUTS] if isinstance(urls, list) else []


def reference_items(key: ApiKey, file_ids: list[str]) -> list[dict]:
    files = UploadedFile.objects.filter(key=key, pk__in=file_ids)
    return [upload.as_reference_item() for upload in files]


def do_submit(
    user: User,
    key: ApiKey,
    model: dict,
    *,
    nonce: str,
    prompt: str,
    params: dict[str, Any],
    reference_file_ids: list[str] = (),
    batch: Any = None,
) -> Generation:
    """Submit once per nonce. Raises GrantRefused or RivyaError; a refused request leaves no row."""
    idem = idempotency_key(user, nonce)
    # Looked up before the cap check: the first click's reservation must not refuse the second.
    existing = Generation.objects.filter(key=key, idempotency_key=idem).first()
    if existing is not None:
        return existing
    estimate = estimate_credits(model, params)
    sent_params = dict(params)
    if reference_file_ids:
        sent_params["referenceMediaItems"] = reference_items(key, list(reference_file_ids))
    try:
        with transaction.atomic():
            generation = Generation.objects.create(
                member=user,
                member_name=user.get_username(),
                key=key,
                key_label=key.label,
                model_id=model["id"],
                category=str(model.get("category") or "")[:32],
                prompt=prompt,
                params=sent_params,
                reference_file_ids=[str(pk) for pk in reference_file_ids],
                idempotency_key=idem,
                estimate_credits=estimate,
                batch=batch,
            )
    except IntegrityError:
        return Generation.objects.get(key=key, idempotency_key=idem)
    try:
        client = key.client()
        remote = _create_remote(user, key, client, generation)
    except (RivyaError, GrantRefused, DecryptionError):
        # The grant is checked (once, under the lock that reserves the spend) as the ledger row
        # opens: a refused or failed call must not leave a row that catches every retry.
        generation.delete()
        raise
    if generation.status == Status.SUBMITTING:
        generation.status = Status.QUEUED
    follow(generation, remote)
    _ensure_housekeeping()
    return generation


def follow(generation: Generation, remote: dict) -> None:
    """Take one remote state (the create's answer or a poll's): finish the job when it ended,
    else save what changed and schedule the next poll."""
    if remote.get("status") in END_STATUSES:
        finish(generation, remote)
        return
    apply_progress(generation, remote)
    _schedule(generation)


def looks_like_generation(remote: object) -> bool:
    """Whether an answer is a generation object (contract §6), whichever call returned it."""
    return (
        isinstance(remote, dict)
        and isinstance(remote.get("id"), str)
        and isinstance(remote.get("model"), str)
        and remote.get("status") in RUNNING_STATUSES | END_STATUSES
        and "reserved_credits" in remote
    )


def catalogue_category(model_id: str) -> str:
    """A model's category, read once when a job is adopted (the generate form has the model)."""
    categories = CatalogueModel.objects.filter(model_id=model_id).values_list("category", flat=True)
    return categories.first() or ""


def do_adopt(
    user: User, key: ApiKey, remote: dict, *, idempotency_key: str, request: dict, request_id: str
) -> Generation:
    """Track a job created outside the generate page (the workbench explorer) like one of its own:
    it appears on History and is polled to the end. Adopting the same job twice finds the row."""
    idem = (idempotency_key or f"adopted-{remote['id']}")[:100]
    params = request.get("params") if isinstance(request.get("params"), dict) else {}
    generation, created = Generation.objects.get_or_create(
        key=key,
        idempotency_key=idem,
        defaults={
            "member": user,
            "member_name": user.get_username(),
            "key_label": key.label,
            "model_id": remote["model"][:100],
            "category": catalogue_category(remote["model"]),
            "prompt": str(request.get("prompt") or ""),
            "params": params,
            "client_request_id": str(request.get("client_request_id") or "")[:100],
            "request_id": request_id[:64],
        },
    )
    if not created:
        return generation
    apply_progress(generation, remote)
    generation.estimate_credits = generation.reserved_credits or Decimal(0)
    if generation.status == Status.SUBMITTING:
        generation.status = Status.QUEUED
    follow(generation, remote)
    _ensure_housekeeping()
    return generation


def _credits(value: object) -> Decimal | None:
    return Decimal(str(value)) if isinstance(value, int | float) else None


def _create_remote(user: User, key: ApiKey, client: RivyaClient, generation: Generation) -> dict:
    generation.client_request_id = f"console-generation-{generation.pk}"
    with ledger.recording(
        user,
        key,
        "generations.create",
        action=Action.GENERATE,
        client=client,
        model=generation.model_id,
        credits=generation.estimate_credits,
        idempotency_key=generation.idempotency_key,
    ) as entry:
        remote = client.create_generation(
            generation.model_id,
            generation.prompt or None,
            generation.params or None,
            client_request_id=generation.client_request_id,
            idempotency_key=generation.idempotency_key,
        )
        entry.credits_reserved = _credits(remote.get("reserved_credits"))
    generation.request_id = (client.last_request_id or "")[:64]
    return remote


def _schedule(generation: Generation, seconds: float | None = None) -> None:
    """Save the row with its next poll time and enqueue that poll (Retry-After wins if given)."""
    # tasks.py imports this module for the task bodies, so the task objects come in late.
    from rivya_dashboard.console.tasks import poll_generation

    if seconds is None:
        seconds = poll_delay(generation.poll_count, generation.category)
    generation.next_poll_at = timezone.now() + timedelta(seconds=seconds)
    with transaction.atomic():
        # A webhook may have finished the job while this poll was out: its end stays.
        if not _still_running(generation):
            return
        generation.save()
    poll_generation.using(run_after=generation.next_poll_at).enqueue(
        generation.pk, generation.poll_count
    )


def _ensure_housekeeping() -> None:
    from rivya_dashboard.console.tasks import ensure_housekeeping

    ensure_housekeeping()


def _stop_tracking(generation: Generation, message: str) -> None:
    generation.status = Status.LOST
    generation.error_code = "tracking_stopped"
    generation.error_message = message[:500]
    generation.finished_at = timezone.now()
    generation.next_poll_at = None
    generation.save()


def do_poll(generation_id: int, poll_count: int) -> Generation | None:
    """One poll, claimed by poll count: a duplicate task for the same turn does nothing."""
    claimed = (
        Generation.objects.running()
        .filter(pk=generation_id, poll_count=poll_count)
        .update(poll_count=poll_count + 1)
    )
    if not claimed:
        return None
    generation = Generation.objects.select_related("key", "member").get(pk=generation_id)
    limit = timedelta(minutes=settings.RIVYA_POLL_MAX_MINUTES)
    if timezone.now() - generation.created_at > limit:
        _stop_tracking(
            generation,
            _("Stopped checking after %(minutes)s minutes; the job may still finish at Rivya.")
            % {"minutes": settings.RIVYA_POLL_MAX_MINUTES},
        )
        return generation
    if generation.key is None or not generation.key.is_active:
        _stop_tracking(
            generation, _("The key was removed or disabled; re-enable it to follow jobs.")
        )
        return generation
    client = generation.key.client()
    try:
        remote = _fetch_remote(generation, client)
    except (AuthError, NotFound) as exc:
        _stop_tracking(generation, str(exc))
        return generation
    except RateLimited as exc:
        generation.request_id = exc.request_id or ""
        _schedule(generation, exc.retry_after)
        return generation
    except (Unavailable, RivyaError) as exc:
        generation.request_id = exc.request_id or ""
        _schedule(generation)
        return generation
    follow(generation, remote)
    return generation


def _fetch_remote(generation: Generation, client: RivyaClient) -> dict:
    with ledger.recording(
        generation.member,
        generation.key,
        "generations.get",
        client=client,
        model=generation.model_id,
    ):
        return client.get_generation(generation.remote_id)


def settle_charge(generation: Generation) -> None:
    """The accepted create call's ledger row takes the final charge; its retries take none.

    A retried submit (same idempotency key after a 503 or a lost answer) leaves several rows for
    one job that Rivya charged once, so caps and usage must count the charge once.
    """
    if generation.final_credits is None:
        return
    attempts = LedgerEntry.objects.filter(
        key=generation.key,
        operation="generations.create",
        idempotency_key=generation.idempotency_key,
    )
    accepted = attempts.filter(http_status__gte=200, http_status__lt=300).order_by("at", "pk")
    paid = accepted.first()
    attempts.exclude(pk=paid.pk if paid else None).update(credits_final=0)
    if paid is not None:
        attempts.filter(pk=paid.pk).update(credits_final=generation.final_credits)


def do_resume_stalled(now: Any = None) -> int:
    """Enqueue a poll for every running job whose poll is overdue: a worker died mid-poll."""
    now = now or timezone.now()
    grace = timedelta(seconds=60 / settings.RIVYA_POLL_SPEED)
    stalled = (
        Generation.objects.running()
        .exclude(remote_id="")
        .filter(Q(next_poll_at__lt=now - grace) | Q(next_poll_at__isnull=True))
    )
    count = 0
    for generation in stalled:
        _schedule(generation)
        count += 1
    return count


@transaction.atomic
def do_delete(generation: Generation) -> None:
    """Remove a job from the console's history with its cached files; Rivya keeps its own copy."""
    media_cache.do_remove_cached(list(generation.outputs.all()))
    generation.delete()

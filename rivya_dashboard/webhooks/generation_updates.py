"""Tracked generation jobs updated the moment a verified generation event arrives.

Polling stays the fallback: a job the webhook finishes is no longer running, so its pending poll
finds nothing to claim. The stored request keeps the link, which the job page shows as the path
that updated it.
"""

import json

from django.db import transaction
from django.utils import timezone

from rivya_dashboard.console import generations
from rivya_dashboard.console.models import Generation
from rivya_dashboard.webhooks.models import InboxRequest, Verdict

TERMINAL_EVENTS = {"generation.succeeded", "generation.failed"}


def event_generation(row: InboxRequest) -> dict | None:
    """The generation object of a real (non-test) verified generation event, else None."""
    if row.verdict != Verdict.VERIFIED or row.event_type not in TERMINAL_EVENTS:
        return None
    try:
        payload = json.loads(row.body_bytes)
    except ValueError:
        return None
    data = payload.get("data") if isinstance(payload, dict) else None
    if payload.get("test") or not isinstance(data, dict) or not data.get("id"):
        return None
    return data


def do_apply_event(request_pk: int) -> Generation | None:
    row = InboxRequest.objects.select_related("inbox").filter(pk=request_pk).first()
    data = event_generation(row) if row else None
    if data is None or row.inbox.key_id is None:
        return None
    with transaction.atomic():
        generation = (
            Generation.objects.select_for_update()
            .filter(key_id=row.inbox.key_id, remote_id=str(data["id"]))
            .first()
        )
        if generation is None:
            return None
        row.generation = generation
        if not generation.is_terminal:
            generations.apply_remote_state(generation, data)
            if generation.is_terminal:
                generation.next_poll_at = None
                row.generation_applied_at = timezone.now()
            generation.save()
        row.save(update_fields=["generation", "generation_applied_at"])
    if row.generation_applied_at is not None:
        generations.settle_charge(generation)
        if generation.status == "succeeded":
            generations.do_cache_outputs(generation)
    return generation


def update_path(generation: Generation) -> InboxRequest | None:
    """The webhook request that finished this job, or None when polling did."""
    return (
        InboxRequest.objects.filter(generation=generation, generation_applied_at__isnull=False)
        .select_related("inbox")
        .first()
    )

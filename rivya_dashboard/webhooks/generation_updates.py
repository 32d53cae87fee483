"""Tracked generation jobs ended the moment a verified generation event arrives.

The receiver hands over the event's generation object as it parsed it; the job ends through the
console's one `finish`, exactly as a poll would end it. Polling stays the fallback: a job the
webhook finishes is no longer running, so its pending poll finds nothing to claim. The stored
request keeps the link, which the job page shows as the path that updated it.
"""

from django.utils import timezone

from rivya_dashboard.console import generations
from rivya_dashboard.console.models import Generation
from rivya_dashboard.webhooks.models import InboxRequest

TERMINAL_EVENTS = {"generation.succeeded", "generation.failed"}


def event_generation(payload: dict) -> dict | None:
    """The generation object of a real (non-test) generation event that ends a job, else None."""
    data = payload.get("data")
    if payload.get("type") not in TERMINAL_EVENTS or payload.get("test"):
        return None
    if not isinstance(data, dict) or not data.get("id"):
        return None
    return data


def do_apply_event(request_pk: int, data: dict) -> Generation | None:
    """End the inbox key's job that `data` (a verified event's generation object) names."""
    row = InboxRequest.objects.select_related("inbox").filter(pk=request_pk).first()
    if row is None or row.inbox.key_id is None:
        return None
    generation = (
        Generation.objects.select_related("key")
        .filter(key_id=row.inbox.key_id, remote_id=str(data.get("id")))
        .first()
    )
    if generation is None:
        return None
    row.generation = generation
    if generations.finish(generation, data):
        row.generation_applied_at = timezone.now()
    row.save(update_fields=["generation", "generation_applied_at"])
    return generation

"""Taking in one webhook request: verify, store, de-duplicate, and decide the answer.

Every request is stored with its verdict, including the ones refused, so the inbox page shows
what a sender really sent. Only an acknowledged (2xx) copy of an event claims its id: the unique
constraint on (inbox, acked_event_id) turns a concurrent second copy into an IntegrityError,
which is answered 200 as a duplicate and only counted on the stored copy. A copy answered with a
rehearsal status (say 500) claims nothing, so the sender's retries are stored too.
"""

import json
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from rivya_dashboard.rivya import signing
from rivya_dashboard.webhooks.models import Inbox, InboxRequest, SecretState, Verdict

# Headers that say something about the delivery; hop-by-hop noise from proxies is left out.
SKIPPED_HEADERS = {"Cookie", "Authorization", "Proxy-Authorization"}
HEADER_STATUS = {
    signing.WebhookVerificationError.MISSING_HEADER: 400,
    signing.WebhookVerificationError.MALFORMED_HEADER: 400,
}
SEARCH_TEXT_LIMIT = 64 * 1024

# SQLite has one writer at a time. Threads of this process queue on this lock, which hands over
# at once, rather than in SQLite's busy handler, which sleeps in steps of up to 100 ms and turns
# a burst of deliveries into a convoy (measured: p99 1.6 s without it, see bench/inbox_ingest.py).
_sqlite_writer = threading.Lock()


def one_writer() -> AbstractContextManager:
    return _sqlite_writer if connection.vendor == "sqlite" else nullcontext()


@dataclass(frozen=True)
class Outcome:
    status: int
    payload: dict
    stored: InboxRequest | None


def max_body_bytes() -> int:
    return settings.RIVYA_INBOX_MAX_BODY_KB * 1024


def kept_headers(meta_headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in meta_headers.items() if name not in SKIPPED_HEADERS}


def event_fields(body: bytes) -> tuple[dict | None, str]:
    """The JSON object of the body (None when it is not one) and why not."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None, "The body is not JSON."
    if not isinstance(payload, dict):
        return None, "The body is JSON but not an object."
    return payload, ""


def verification(inbox: Inbox, headers: dict[str, str], body: bytes) -> tuple[str, str, str, str]:
    """(verdict, reason code, reason, which secret matched) for a body within the cap."""
    if not inbox.has_secrets:
        return Verdict.UNVERIFIED, "", "", ""
    try:
        verified = signing.verify(inbox.accepted_secrets(), headers, body)
    except signing.WebhookVerificationError as error:
        return Verdict.REJECTED, error.reason, error.message, ""
    accepted = [m for m in inbox.secret_meta if m["state"] != SecretState.RETIRED]
    return Verdict.VERIFIED, "", "", accepted[verified.secret_index]["state"]


def ingest(
    inbox: Inbox,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    size: int,
    source_ip: str | None,
) -> Outcome:
    """Store one request; `body` is None when it was over the cap and left unread."""
    row = InboxRequest(
        inbox=inbox,
        method=method[:10],
        headers=kept_headers(headers),
        body_size=size,
        source_ip=source_ip,
        received_at=timezone.now(),
    )
    lowered = {name.lower(): value for name, value in headers.items()}
    row.event_id = lowered.get(signing.ID_HEADER.lower(), "")[:100]
    if body is None:
        return refuse(row, Verdict.TOO_LARGE, 413, "too_large", too_large_text())
    row.body = body
    row.body_text = body[:SEARCH_TEXT_LIMIT].decode("utf-8", "replace")
    if method != "POST":
        return refuse(row, Verdict.MALFORMED, 405, "method_not_allowed", "Send webhooks as POST.")
    verdict, code, reason, secret_state = verification(inbox, headers, body)
    if verdict == Verdict.REJECTED:
        return refuse(row, verdict, HEADER_STATUS.get(code, 401), code, reason)
    payload, problem = event_fields(body)
    if payload is None:
        return refuse(row, Verdict.MALFORMED, 400, "not_json", problem)
    row.event_id = str(row.event_id or payload.get("id") or "")[:100]
    row.event_type = str(payload.get("type") or "")[:64]
    row.verdict, row.secret_state = verdict, secret_state
    row.response_status = inbox.response_status
    if inbox.answers_success and row.event_id:
        row.acked_event_id = row.event_id
    try:
        with one_writer(), transaction.atomic():
            row.save()
    except IntegrityError:
        return duplicate(inbox, row.event_id)
    after_store(inbox, row, payload)
    return Outcome(row.response_status, {"received": True, "id": row.event_id}, row)


def refuse(row: InboxRequest, verdict: str, status: int, code: str, reason: str) -> Outcome:
    row.verdict, row.reason_code, row.reason = verdict, code, reason[:400]
    row.response_status = status
    with one_writer():
        row.save()
    return Outcome(status, {"error": code, "message": reason}, row)


def too_large_text() -> str:
    return f"The body is over the inbox's {settings.RIVYA_INBOX_MAX_BODY_KB} KB limit."


def duplicate(inbox: Inbox, event_id: str) -> Outcome:
    with one_writer():
        InboxRequest.objects.filter(inbox=inbox, acked_event_id=event_id).update(
            duplicate_count=F("duplicate_count") + 1, last_duplicate_at=timezone.now()
        )
    return Outcome(200, {"received": True, "id": event_id, "duplicate": True}, None)


def after_store(inbox: Inbox, row: InboxRequest, payload: dict) -> None:
    """Work that must not slow the answer goes to the background worker."""
    from rivya_dashboard.webhooks import tasks

    if inbox.forward_enabled and inbox.forward_url:
        transaction.on_commit(lambda: tasks.forward_request.enqueue(row.pk))
    if (
        row.verdict == Verdict.VERIFIED
        and inbox.key_id is not None
        and row.event_type.startswith("generation.")
    ):
        transaction.on_commit(lambda: tasks.apply_generation_event.enqueue(row.pk))

"""Taking in one webhook request: verify, store, de-duplicate, and decide the answer.

Every request is stored with its verdict, including the ones refused, so the inbox page shows
what a sender really sent. Only an acknowledged (2xx) copy of an event claims its id: the unique
constraint on (inbox, acked_event_id) turns a concurrent second copy into an IntegrityError,
which is answered 200 as a duplicate and only counted on the stored copy. A copy answered with a
rehearsal status (say 500) claims nothing, so the sender's retries are stored too.
"""

import fcntl
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from rivya_dashboard import metrics
from rivya_dashboard.rivya import signing
from rivya_dashboard.vault.crypto import DecryptionError
from rivya_dashboard.webhooks import inbox_limits
from rivya_dashboard.webhooks.generation_updates import event_generation
from rivya_dashboard.webhooks.models import Inbox, InboxRequest, SecretState, Verdict

# Credentials a sender attaches are not kept: secrets never reach the database in clear.
SKIPPED_HEADERS = {"Cookie", "Authorization", "Proxy-Authorization"}
SECRETS_UNREADABLE = "secrets_unreadable"
HEADER_STATUS = {
    signing.WebhookVerificationError.MISSING_HEADER: 400,
    signing.WebhookVerificationError.MALFORMED_HEADER: 400,
    SECRETS_UNREADABLE: 503,
}
SEARCH_TEXT_LIMIT = 64 * 1024
# The largest size a PositiveIntegerField holds on every database: a sender may claim more.
LARGEST_RECORDED_SIZE = 2**31 - 1

# SQLite has one writer at a time. Deliveries queue for it on a thread lock and a file lock,
# which both hand over the moment the holder is done, instead of in SQLite's busy handler, which
# sleeps in steps of up to 100 ms and turns a burst of deliveries into a convoy (measured with
# bench/inbox_ingest.py: p99 1.6 s without the locks).
_thread_lock = threading.Lock()
_lock_file: int | None = None


@contextmanager
def sqlite_writer() -> Iterator[None]:
    global _lock_file
    with _thread_lock:
        if _lock_file is None:
            path = Path(settings.DATA_DIR) / "inbox-writer.lock"
            _lock_file = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(_lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(_lock_file, fcntl.LOCK_UN)


def one_writer() -> AbstractContextManager:
    return sqlite_writer() if connection.vendor == "sqlite" else nullcontext()


# Inboxes by token, re-read at most every INBOX_CACHE_SECONDS: the lookup is a third of a
# delivery's cost, and a settings or secret change may take that long to apply.
INBOX_CACHE_SECONDS = 1.0
_inboxes: dict[str, tuple[float, Inbox | None]] = {}


def find_inbox(token: str) -> Inbox | None:
    now = time.monotonic()
    cached = _inboxes.get(token)
    if cached is not None and now - cached[0] < INBOX_CACHE_SECONDS:
        return cached[1]
    inbox = Inbox.objects.filter(token=token).first()
    if len(_inboxes) > 1000:
        _inboxes.clear()  # unknown tokens must not grow the cache without bound
    _inboxes[token] = (now, inbox)
    return inbox


def forget_inbox(token: str) -> None:
    """Drop this process's cached copy after a change, so the change applies here at once."""
    _inboxes.pop(token, None)


# Per process, by inbox token: when a full rate window reopens, so a flood is answered 429
# without touching the database; refusals are counted there at most once a second.
_full_until: dict[str, float] = {}
_refused: dict[str, tuple[int, float]] = {}
_rate_lock = threading.Lock()


def admit(inbox: Inbox) -> "Outcome | None":
    """A 429 when this process already knows the inbox's rate window is full, before the body
    is read; None otherwise. The window itself is counted where the request is stored."""
    now = time.time()
    reopens_at = _full_until.get(inbox.token, 0.0)
    return rate_limited(inbox, reopens_at, now) if reopens_at > now else None


def rate_limited(inbox: Inbox, reopens_at: float, now: float) -> "Outcome":
    _full_until[inbox.token] = reopens_at
    count_refusal(inbox, now)
    wait = max(1, math.ceil(reopens_at - now))
    message = _(
        "This inbox takes at most %(limit)s requests a minute; send again in %(seconds)s s."
    ) % {"limit": inbox_limits.limits_of(inbox).rate_per_minute, "seconds": wait}
    return Outcome(429, {"error": "rate_limited", "message": message}, retry_after=wait)


def count_refusal(inbox: Inbox, now: float) -> None:
    with _rate_lock:
        pending, flushed_at = _refused.get(inbox.token, (0, 0.0))
        pending += 1
        due = now - flushed_at >= 1
        _refused[inbox.token] = (0, now) if due else (pending, flushed_at)
    if due:
        with one_writer():
            Inbox.objects.filter(pk=inbox.pk).update(
                rate_refused=F("rate_refused") + pending, rate_refused_at=timezone.now()
            )


@dataclass(frozen=True)
class Outcome:
    status: int
    payload: dict
    retry_after: int | None = None


def max_body_bytes() -> int:
    return settings.RIVYA_INBOX_MAX_BODY_KB * 1024


def kept_headers(meta_headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in meta_headers.items() if name not in SKIPPED_HEADERS}


def event_fields(body: bytes) -> tuple[dict | None, str]:
    """The JSON object of the body (None when it is not one) and why not."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None, _("The body is not JSON.")
    if not isinstance(payload, dict):
        return None, _("The body is JSON but not an object.")
    return payload, ""


def verification(inbox: Inbox, headers: dict[str, str], body: bytes) -> tuple[str, str, str, str]:
    """(verdict, reason code, reason, which secret matched) for a body within the cap."""
    if not inbox.has_secrets:
        return Verdict.UNVERIFIED, "", "", ""
    try:
        verified = signing.verify(inbox.accepted_secrets(), headers, body)
    except signing.WebhookVerificationError as error:
        return Verdict.REJECTED, error.reason, error.message, ""
    except DecryptionError:
        # The keyring that sealed the secrets is gone: a server fault, so the sender retries.
        reason = _("The inbox's secrets cannot be decrypted; restore the keyring.")
        return Verdict.REJECTED, SECRETS_UNREADABLE, reason, ""
    accepted = [m for m in inbox.secret_meta if m["state"] != SecretState.RETIRED]
    return Verdict.VERIFIED, "", "", accepted[verified.secret_index]["state"]


def ingest(
    inbox: Inbox,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    size: int | None,
    source_ip: str | None,
) -> Outcome:
    """Store one request; `body` is None when it was left unread: over the cap, or `size` is
    None because the declared Content-Length was not a number."""
    row = InboxRequest(
        inbox=inbox,
        method=method[:10],
        headers=kept_headers(headers),
        body_size=min(size or 0, LARGEST_RECORDED_SIZE),
        source_ip=source_ip,
        received_at=timezone.now(),
    )
    lowered = {name.lower(): value for name, value in headers.items()}
    row.event_id = lowered.get(signing.ID_HEADER.lower(), "")[:100]
    if size is None:
        reason = _("Content-Length is not a number of bytes; send the body's exact length.")
        return refuse(row, Verdict.MALFORMED, 400, "bad_content_length", reason)
    if body is None:
        return refuse(row, Verdict.TOO_LARGE, 413, "too_large", too_large_text())
    row.body = body
    row.body_text = body[:SEARCH_TEXT_LIMIT].decode("utf-8", "replace")
    if method != "POST":
        return refuse(
            row, Verdict.MALFORMED, 405, "method_not_allowed", _("Send webhooks as POST.")
        )
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
        # BEGIN IMMEDIATE on SQLite: the write lock is taken up front, never upgraded mid-way.
        with one_writer(), transaction.atomic():
            inbox_limits.do_store(row, time.time())
    except IntegrityError:
        return duplicate(inbox, row.event_id)
    except inbox_limits.RateLimited as full:
        return rate_limited(inbox, full.reopens_at, time.time())
    metrics.WEBHOOK_VERDICTS.labels(str(inbox.pk), row.verdict).inc()
    after_store(inbox, row, payload)
    return Outcome(row.response_status, {"received": True, "id": row.event_id})


def refuse(row: InboxRequest, verdict: str, status: int, code: str, reason: str) -> Outcome:
    row.verdict, row.reason_code, row.reason = verdict, code, reason[:400]
    row.response_status = status
    # Anyone with the URL can send refused requests: keep only the start of each body.
    cap = settings.RIVYA_INBOX_REFUSED_BODY_KB * 1024
    if len(row.body) > cap:
        row.body = bytes(row.body)[:cap]
        row.body_text = row.body[:SEARCH_TEXT_LIMIT].decode("utf-8", "replace")
    try:
        with one_writer(), transaction.atomic():
            inbox_limits.do_store(row, time.time())
    except inbox_limits.RateLimited as full:
        return rate_limited(row.inbox, full.reopens_at, time.time())
    metrics.WEBHOOK_VERDICTS.labels(str(row.inbox_id), verdict).inc()
    return Outcome(status, {"error": code, "message": reason})


def too_large_text() -> str:
    return _("The body is over the inbox's %(kb)s KB limit.") % {
        "kb": settings.RIVYA_INBOX_MAX_BODY_KB
    }


def duplicate(inbox: Inbox, event_id: str) -> Outcome:
    with one_writer():
        counted = InboxRequest.objects.filter(inbox=inbox, acked_event_id=event_id).update(
            duplicate_count=F("duplicate_count") + 1, last_duplicate_at=timezone.now()
        )
    if not counted:
        # No stored copy to count on: the inbox was deleted after this request looked it up.
        return Outcome(404, {"error": "not_found"})
    metrics.WEBHOOK_VERDICTS.labels(str(inbox.pk), "duplicate").inc()
    return Outcome(200, {"received": True, "id": event_id, "duplicate": True})


def after_store(inbox: Inbox, row: InboxRequest, payload: dict) -> None:
    """Work that must not slow the answer goes to the background worker."""
    from rivya_dashboard.webhooks import tasks

    if inbox.forward_enabled and inbox.forward_url:
        transaction.on_commit(lambda: tasks.forward_request.enqueue(row.pk))
    ended = event_generation(payload) if row.verdict == Verdict.VERIFIED else None
    if ended is not None and inbox.key_id is not None:
        # The generation object as parsed here: the task does not read the body again.
        transaction.on_commit(lambda: tasks.apply_generation_event.enqueue(row.pk, ended))

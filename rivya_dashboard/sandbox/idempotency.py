"""Idempotency-Key handling exactly as contract §5.1 proposes.

Scope is (account, method, path, key); records live 24 h. The same key with the same canonical
JSON body replays the stored response with `Idempotent-Replayed: true`; a different body, or a
request while the first is still running, gets 409 idempotency_conflict.
"""

import hashlib
import json
import re
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.errors import ApiError, validation_failed
from rivya_dashboard.sandbox.models import IdempotencyRecord

PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]+$")


def body_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_key(headers: Any) -> str | None:
    key = headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key or len(key) > choices.MAX_IDEMPOTENCY_KEY_LENGTH or not PRINTABLE_ASCII.match(key):
        raise validation_failed(
            "Idempotency-Key: must be 1 to "
            f"{choices.MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters"
        )
    return key


def begin(account: Any, method: str, path: str, key: str, body: Any) -> IdempotencyRecord:
    """Claim the key (returns an in-flight record) or return the finished record to replay."""
    digest = body_hash(body)
    expired_before = timezone.now() - timedelta(seconds=choices.IDEMPOTENCY_TTL_SECONDS)
    scope = {"account": account, "method": method, "path": path, "key": key}
    IdempotencyRecord.objects.filter(**scope, created_at__lt=expired_before).delete()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(**scope, body_hash=digest)
    except IntegrityError:
        existing = IdempotencyRecord.objects.filter(**scope).first()
    if existing is None:
        # The other request released the key between our insert and our read: claim it again.
        return begin(account, method, path, key, body)
    if existing.body_hash != digest:
        raise ApiError(
            409,
            "idempotency_conflict",
            "This Idempotency-Key was already used with a different request body.",
        )
    if existing.in_flight:
        raise ApiError(
            409,
            "idempotency_conflict",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        )
    return existing


def store(record: IdempotencyRecord, status: int, body: str) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        response_status=status, response_body=body
    )


def release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, response_status__isnull=True).delete()

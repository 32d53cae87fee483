"""The API's OpenAPI document, read through a team key and cached per base URL.

Like the model catalogue, the copy in the database is what the explorer reads: it keeps working
while the API is down, and a failed refresh records the error next to the copy's age. Refreshed
on demand and by the housekeeping task when older than RIVYA_OPENAPI_REFRESH_MINUTES.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rivya_dashboard.accounts.models import User
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.models import Action, ApiKey, KeyStatus
from rivya_dashboard.workbench.models import ApiDocument
from rivya_dashboard.workbench.operations import Catalogue, read_catalogue


def document_for(base_url: str) -> ApiDocument:
    document, _created = ApiDocument.objects.get_or_create(base_url=base_url.rstrip("/"))
    return document


def catalogue_for(base_url: str) -> tuple[ApiDocument, Catalogue]:
    document = document_for(base_url)
    return document, read_catalogue(document.document) if document.fetched_at else Catalogue()


def do_refresh(key: ApiKey, user: User | None = None) -> ApiDocument:
    """Fetch `GET /openapi.json` through the key; on failure keep the copy and record the error."""
    document = document_for(key.base_url)
    client = key.client()
    action = Action.BROWSE if user is not None else None
    try:
        with ledger.recording(user, key, "openapi.get", action=action, client=client):
            payload = client.get_openapi()
    except RivyaError as exc:
        ApiDocument.objects.filter(pk=document.pk).update(
            attempted_at=timezone.now(),
            error=exc.message[:500],
            error_request_id=(exc.request_id or "")[:64],
        )
        raise
    with transaction.atomic():
        now = timezone.now()
        document.document, document.fetched_at, document.attempted_at = payload, now, now
        document.error = document.error_request_id = ""
        document.save()
    return document


def is_stale(document: ApiDocument) -> bool:
    if document.fetched_at is None:
        return True
    limit = timedelta(minutes=settings.RIVYA_OPENAPI_REFRESH_MINUTES)
    return timezone.now() - document.fetched_at > limit


def do_refresh_stale() -> int:
    """Housekeeping: refresh each base URL's document through its oldest active key."""
    refreshed = 0
    keys = ApiKey.objects.filter(status=KeyStatus.ACTIVE).order_by("added_at", "pk")
    for base_url in dict.fromkeys(key.base_url.rstrip("/") for key in keys):
        if not is_stale(document_for(base_url)):
            continue
        key = next(key for key in keys if key.base_url.rstrip("/") == base_url)
        try:
            do_refresh(key)
        except RivyaError:
            continue
        refreshed += 1
    return refreshed

"""Uploads relayed to the Files API, streamed end to end, never held in memory.

When the browser states the file's size (the Files page's script does), the body is relayed to
the API while it arrives (do_relay, upload_relay.py). Otherwise it goes to a temporary file
through CappedUploadHandler, which stops reading once the kind's limit is passed, and the client
then streams that file on; Django deletes the temporary file when the request ends.
"""

import re
from datetime import datetime

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile as DjangoUpload
from django.core.files.uploadhandler import (
    FileUploadHandler,
    StopUpload,
    TemporaryFileUploadHandler,
)
from django.http import HttpRequest, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.console.models import UploadedFile
from rivya_dashboard.console.schema_form import MEDIA_KINDS, reference_rules
from rivya_dashboard.console.upload_relay import BrokenRelay, RelayUploadHandler
from rivya_dashboard.rivya.errors import AuthError, RateLimited, RivyaError, Unavailable
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.models import Action, ApiKey
from rivya_dashboard.visibility import visible_files

MB = 1024 * 1024
# "file: …", "params.referenceMediaItems[0].url: …": the field a Rivya message starts with.
FIELD_PREFIX = re.compile(r"^[\w.\[\]]+:\s*")
# Contract §8.1 default limits; a model may set its own in reference_media.limits.
DEFAULT_LIMITS = {"image": 10 * MB, "video": 50 * MB, "audio": 10 * MB}
# Multipart boundaries and the small form fields ride on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def kind_limit(kind: str, model: dict | None = None) -> int:
    limit = DEFAULT_LIMITS.get(kind, max(DEFAULT_LIMITS.values()))
    if model is not None:
        own = reference_rules(model)["limits"].get(kind) or {}
        if isinstance(own.get("max_bytes"), int):
            limit = own["max_bytes"]
    return min(limit, settings.RIVYA_UPLOAD_MAX_MB * MB)


def largest_limit() -> int:
    return min(max(DEFAULT_LIMITS.values()), settings.RIVYA_UPLOAD_MAX_MB * MB)


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    def __str__(self) -> str:
        return _("This file is larger than %(size)s; pick a smaller one or compress it.") % {
            "size": human_size(self.limit)
        }


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Writes the upload to a temporary file and stops as soon as it passes `limit` bytes."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.too_large = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large = True
            raise StopUpload(connection_reset=True)
        return super().receive_data_chunk(raw_data, start)


def prepare_upload(request: HttpRequest, limit: int) -> CappedUploadHandler:
    """Refuse an oversized body before reading it, and stream the rest to a capped temp file."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise UploadTooLarge(limit)
    handler = CappedUploadHandler(request, limit)
    request.upload_handlers = [handler]
    return handler


def read_body(request: HttpRequest, handler: FileUploadHandler) -> bool:
    """Parse the body now, through the capped handler. False when the browser went away or the
    body is not valid multipart; the partial temporary file is removed then, not left to chance."""
    try:
        request.POST  # noqa: B018 - reading the body is the point
    except (UnreadablePostError, MultiPartParserError):
        handler.upload_interrupted()
        return False
    return True


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _expiry(remote: dict) -> datetime | None:
    return parse_datetime(str(remote.get("expires_at") or ""))


def refusal_text(exc: Exception) -> str:
    """Why an upload was refused, as a sentence that says what to do next.

    Rivya's own messages name the field first ("file: content is an unrecognised format; …");
    the member picked a file, not a field, so the sentence leads with what happened to it."""
    if not isinstance(exc, RivyaError):
        return str(exc)
    if isinstance(exc, AuthError):
        text = _("Rivya refused the key for this upload. Ask an admin to check the key.")
    elif isinstance(exc, Unavailable):
        text = _("Rivya could not take the file just now. Try the upload again in a moment.")
    elif isinstance(exc, RateLimited):
        text = _("Rivya is limiting requests on this key. Wait a moment, then upload again.")
    else:
        detail = FIELD_PREFIX.sub("", exc.message).strip().rstrip(".")
        text = _("Rivya did not accept this file: %(reason)s. Pick another file.") % {
            "reason": detail[:1].lower() + detail[1:]
        }
    if exc.request_id:
        text += " " + _("(request id: %(id)s)") % {"id": exc.request_id}
    return text


def do_upload(
    user: User,
    key: ApiKey,
    upload: DjangoUpload,
    *,
    kind: str,
    model: dict | None = None,
) -> UploadedFile:
    """Send one received file to the Files API and remember it. Raises GrantRefused, RivyaError."""
    if kind not in MEDIA_KINDS:
        raise ValueError(kind)
    limit = kind_limit(kind, model)
    if upload.size > limit:
        raise UploadTooLarge(limit)
    # The grant is checked once, as the ledger row opens under its lock, before any byte is sent.
    client = key.client()
    model_id = model["id"] if model else None
    with ledger.recording(
        user, key, "files.create", action=Action.UPLOAD, client=client, model=model_id or ""
    ):
        upload.seek(0)
        remote = client.upload_file(upload, kind=kind, filename=upload.name, model=model_id)
    return remember_upload(user, key, remote, kind=kind, model_id=model_id, fallback=upload)


def do_relay(
    request: HttpRequest,
    key: ApiKey,
    *,
    kind: str,
    size: int,
    model: dict | None = None,
) -> UploadedFile:
    """Relay the body's "upload" file to the Files API while it arrives (see upload_relay).

    Raises UploadTooLarge before reading, GrantRefused, RivyaError, or BrokenRelay."""
    limit = kind_limit(kind, model)
    if size > limit:
        raise UploadTooLarge(limit)
    # The grant is checked once, as the ledger row opens under its lock, before the body is read.
    client = key.client()
    model_id = model["id"] if model else None
    handler = RelayUploadHandler(
        request, client=client, size=size, field="upload", kind=kind, model=model_id
    )
    request.upload_handlers = [handler]
    with ledger.recording(
        request.user, key, "files.create", action=Action.UPLOAD, client=client, model=model_id or ""
    ):
        if not read_body(request, handler):
            raise BrokenRelay("the browser stopped sending")
        remote = handler.result()
    return remember_upload(request.user, key, remote, kind=kind, model_id=model_id)


def remember_upload(
    user: User,
    key: ApiKey,
    remote: dict,
    *,
    kind: str,
    model_id: str | None,
    fallback: DjangoUpload | None = None,
) -> UploadedFile:
    return UploadedFile.objects.create(
        remote_id=str(remote.get("id") or "")[:100],
        key=key,
        key_label=key.label,
        uploader=user,
        uploader_name=user.get_username(),
        kind=str(remote.get("kind") or kind)[:16],
        name=str(remote.get("name") or (fallback.name if fallback else "upload"))[:255],
        mime_type=str(remote.get("mime_type") or (fallback.content_type if fallback else "") or "")[
            :100
        ],
        size_bytes=int(remote.get("size_bytes") or (fallback.size if fallback else 0)),
        model_id=model_id or "",
        url=str(remote.get("url") or ""),
        duration_seconds=remote.get("duration_seconds"),
        duration_token=str(remote.get("duration_token") or "")[:500],
        expires_at=_expiry(remote),
    )


def pickable_files(member: User, key: ApiKey, kinds: list[str]) -> list[UploadedFile]:
    """Earlier uploads a generation form may reuse: ones the member sees (visibility), on the
    same key (so the same account), of the kind, unexpired."""
    files = visible_files(member).filter(key=key, kind__in=kinds).order_by("-created_at")[:50]
    return [upload for upload in files if not upload.is_expired]

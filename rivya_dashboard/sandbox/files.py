"""Files API (§8): multipart uploads streamed to disk, type from magic bytes, GET /files/{id}.

The body is never held in memory: a temporary-file upload handler writes it to disk chunk by
chunk and gives up as soon as a file passes the largest limit any kind or model allows. The
declared Content-Length is checked before a byte of the body is read.
"""

import shutil
import struct
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core import signing
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.api import MULTIPART, Call, component, endpoint, timestamp
from rivya_dashboard.sandbox.catalogue import catalogue, find_model
from rivya_dashboard.sandbox.errors import ApiError, not_found, validation_failed
from rivya_dashboard.sandbox.ids import public_id
from rivya_dashboard.sandbox.media import uploads_dir
from rivya_dashboard.sandbox.models import UploadedFile

KINDS = tuple(choices.FILE_LIMITS)
EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/wav": ".wav",
    "audio/aac": ".aac",
    "audio/ogg": ".ogg",
}
DURATION_SALT = "sandbox-duration"
# Multipart framing and the small text fields on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def largest_limit() -> int:
    limits = [rule["max_bytes"] for rule in choices.FILE_LIMITS.values()]
    for row in catalogue().values():
        limits += [limit["max_bytes"] for limit in (row["reference_media"] or {}).get("limits", [])]
    return max(limits)


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Streams each file to a temporary file; stops reading once one passes `max_bytes`."""

    def __init__(self, request: HttpRequest, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.too_large = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > self.max_bytes:
            self.too_large = True
            raise StopUpload(connection_reset=True)
        return super().receive_data_chunk(raw_data, start)


def too_large(limit: int, what: str) -> ApiError:
    megabytes = limit / (1024 * 1024)
    return ApiError(
        413, choices.FILE_TOO_LARGE_CODE, f"file: {what} is limited to {megabytes:g} MB"
    )


PUBLIC_API_FILE = component(
    "PublicApiFile",
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "file"},
            "kind": {"type": "string", "enum": list(KINDS)},
            "name": {"type": "string"},
            "mime_type": {"type": "string"},
            "size_bytes": {"type": "integer"},
            "model": {"type": ["string", "null"]},
            "url": {"type": "string"},
            "duration_seconds": {"type": ["number", "null"]},
            "duration_token": {"type": ["string", "null"]},
            "client_request_id": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
        },
        "required": ["id", "object", "kind", "name", "mime_type", "size_bytes", "url"],
    },
)
UPLOAD_REQUEST = component(
    "FileUpload",
    {
        "type": "object",
        "properties": {
            "file": {"type": "string", "contentMediaType": "application/octet-stream"},
            "kind": {"type": "string", "enum": list(KINDS)},
            "model": {"type": "string", "maxLength": 100},
            "client_request_id": {
                "type": "string",
                "maxLength": choices.MAX_CLIENT_REQUEST_ID_LENGTH,
            },
        },
        "required": ["file", "kind"],
    },
)


@endpoint(
    "POST",
    "/files",
    operation_id="uploadFile",
    summary="Upload a reference file (multipart); returns its url and duration_token",
    scope="files:create",
    body=UPLOAD_REQUEST,
    body_content=MULTIPART,
    success=201,
    response=PUBLIC_API_FILE,
    errors=(400, 413),
)
def upload_file(call: Call) -> dict:
    request = call.request
    limit = largest_limit()
    declared = request.headers.get("Content-Length") or ""
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise too_large(limit, "any upload")
    if not (request.content_type or "").startswith(MULTIPART):
        raise validation_failed(f"Send the upload as {MULTIPART} with file and kind fields.")
    handler = LimitedUploadHandler(request, limit)
    request.upload_handlers = [handler]
    try:
        fields, files = request.POST, request.FILES
    except MultiPartParserError as exc:
        raise validation_failed(f"The multipart body could not be read: {exc}") from None
    if handler.too_large:
        raise too_large(limit, "any upload")
    upload = files.get("file")
    if upload is None:
        raise validation_failed("file: is required (a multipart file field)")
    return serialize(do_store(call, fields, upload), call.request)


def kind_rules(fields: Any) -> tuple[str, str, dict]:
    kind = fields.get("kind", "")
    if kind not in KINDS:
        raise validation_failed(f"kind: must be one of {', '.join(KINDS)}")
    model_id = fields.get("model", "")
    rules = choices.FILE_LIMITS[kind]
    if model_id:
        row = find_model(model_id)
        media = row["reference_media"] or {"file_kinds": [], "limits": []}
        if kind not in media["file_kinds"]:
            raise validation_failed(f"kind: model {model_id} does not accept {kind} files")
        rules = next((limit for limit in media["limits"] if limit["kind"] == kind), rules)
    return kind, model_id, rules


def do_store(call: Call, fields: Any, upload: Any) -> UploadedFile:
    kind, model_id, rules = kind_rules(fields)
    client_request_id = fields.get("client_request_id", "")
    if "\x00" in client_request_id:
        raise validation_failed("client_request_id: must not contain NUL characters")
    if len(client_request_id) > choices.MAX_CLIENT_REQUEST_ID_LENGTH:
        limit = choices.MAX_CLIENT_REQUEST_ID_LENGTH
        raise validation_failed(f"client_request_id: must be at most {limit} characters")
    if upload.size > rules["max_bytes"]:
        target = f"a {kind} file for {model_id}" if model_id else f"a {kind} file"
        raise too_large(rules["max_bytes"], target)
    path = Path(upload.temporary_file_path())
    mime = checked_mime(path, kind, rules)
    file_id = public_id(choices.FILE_PREFIX)
    duration, token = None, ""
    if kind != "image":
        duration = media_duration(path, mime)
        token = signing.dumps({"file": file_id, "seconds": duration}, salt=DURATION_SALT)
    # Moved only once everything is read and checked, so a refusal leaves no stored file.
    storage_name = file_id + EXTENSIONS[mime]
    uploads_dir().mkdir(parents=True, exist_ok=True)
    shutil.move(path, uploads_dir() / storage_name)
    now = timezone.now()
    return UploadedFile.objects.create(
        public_id=file_id,
        account=call.account,
        kind=kind,
        name=(upload.name or storage_name).replace("\x00", "")[:255],
        mime_type=mime,
        size_bytes=upload.size,
        model=model_id,
        storage_name=storage_name,
        duration_seconds=duration,
        duration_token=token,
        client_request_id=client_request_id,
        created_at=now,
        expires_at=now + timedelta(seconds=choices.FILE_TTL_SECONDS),
    )


def checked_mime(path: Path, kind: str, rules: dict) -> str:
    with path.open("rb") as handle:
        mime = detect_mime(handle.read(4096))
    if mime not in rules["mime_types"]:
        accepted = ", ".join(rules["mime_types"])
        found = mime or "an unrecognised format"
        raise validation_failed(f"file: content is {found}; {kind} files must be {accepted}")
    return mime


def detect_mime(head: bytes) -> str | None:
    """The media type from the file signature; the name and the client's type are ignored."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        return "audio/mp4" if brand in (b"M4A ", b"M4B ") else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head[:2] in (b"\xff\xf1", b"\xff\xf9"):
        return "audio/aac"
    return None


def media_duration(path: Path, mime: str) -> float | None:
    """Best-effort duration in seconds from the container header (WAV and MP4/QuickTime)."""
    with path.open("rb") as handle:
        head = handle.read(1024 * 1024)
    if mime == "audio/wav":
        return wav_duration(head, path.stat().st_size)
    if mime in ("video/mp4", "video/quicktime", "audio/mp4"):
        return mp4_duration(head)
    return None


def wav_duration(head: bytes, size: int) -> float | None:
    index = head.find(b"fmt ")
    if index < 0 or len(head) < index + 20:
        return None
    byte_rate = struct.unpack_from("<I", head, index + 16)[0]
    data = head.find(b"data")
    if not byte_rate or data < 0:
        return None
    return round((size - data - 8) / byte_rate, 3)


def mp4_duration(head: bytes) -> float | None:
    index = head.find(b"mvhd")
    if index < 0 or len(head) < index + 36:
        return None
    version = head[index + 4]
    if version == 1:
        scale, length = struct.unpack_from(">IQ", head, index + 24)
    else:
        scale, length = struct.unpack_from(">II", head, index + 16)
    return round(length / scale, 3) if scale else None


def serialize(upload: UploadedFile, request: HttpRequest) -> dict:
    url = request.build_absolute_uri(reverse("sandbox-api:media", args=[upload.storage_name]))
    return {
        "id": upload.public_id,
        "object": "file",
        "kind": upload.kind,
        "name": upload.name,
        "mime_type": upload.mime_type,
        "size_bytes": upload.size_bytes,
        "model": upload.model or None,
        "url": url,
        "duration_seconds": upload.duration_seconds,
        "duration_token": upload.duration_token or None,
        "client_request_id": upload.client_request_id or None,
        "created_at": timestamp(upload.created_at),
        "expires_at": timestamp(upload.expires_at),
    }


@endpoint(
    "GET",
    "/files/{fileId}",
    operation_id="getFile",
    summary="Metadata of an upload owned by the key's account",
    scope="files:read",
    response=PUBLIC_API_FILE,
    errors=(404,),
)
def get_file(call: Call, fileId: str) -> dict:
    upload = UploadedFile.objects.filter(
        account=call.account, public_id=fileId, expires_at__gt=timezone.now()
    ).first()
    if upload is None:
        raise not_found("file", fileId)
    return serialize(upload, call.request)

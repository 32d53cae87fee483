"""Keeps every exchange the console has with Rivya, for the inspector.

`record_exchange` is the outbound module's exchange listener: it runs when an answer's headers
arrive, before anyone reads the body. It notes who is calling (the ledger row of the call, set by
`ledger.recording`) and taps the response's raw reads, so the body is kept as the caller reads it
— never read twice, never held beyond RIVYA_INSPECTOR_BODY_KB — and the row is written once, when
the body ends or the response is closed. Credentials are in display form before anything is kept.
"""

import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from rivya_dashboard import outbound
from rivya_dashboard.vault import ledger
from rivya_dashboard.workbench.models import ApiCall
from rivya_dashboard.workbench.redaction import redact_headers, redact_text

logger = logging.getLogger(__name__)
TEXT_TYPES = ("json", "text", "xml", "javascript", "event-stream", "x-www-form-urlencoded")


def body_limit() -> int:
    return settings.RIVYA_INSPECTOR_BODY_KB * 1024


def stored_text(data: bytes, size: int, content_type: str) -> str:
    """Any bytes as text a page can show and any database can hold (no NUL characters)."""
    if data and not any(kind in content_type for kind in TEXT_TYPES) and b"\x00" in data[:1024]:
        return f"[{content_type or 'binary'} body, {size} bytes, not shown]"
    text = data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return redact_text(text)


def request_body(request: outbound.PreparedRequest) -> tuple[str, int]:
    body = request.body
    content_type = request.headers.get("Content-Type", "")
    if body is None:
        return "", 0
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes):
        # A streamed upload (MultipartEncoder): its bytes are read once, by the upload itself.
        size = int(getattr(body, "len", 0) or 0)
        return f"[{content_type.split(';')[0] or 'streamed'} body, {size} bytes, not kept]", size
    limit = body_limit()
    return stored_text(body[:limit], len(body), content_type), len(body)


def subject_of(body: str) -> str:
    if not body.startswith("{"):
        return ""
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    subject = answer.get("id") if isinstance(answer, dict) else None
    return subject[:100] if isinstance(subject, str) else ""


class Tap:
    """Collects what the caller reads from one response, and writes the call when it ends."""

    def __init__(self, call: ApiCall, content_type: str) -> None:
        self.call = call
        self.content_type = content_type
        self.kept = bytearray()
        self.size = 0
        self.written = False

    def feed(self, data: bytes) -> None:
        if not data:
            self.finish()
            return
        self.size += len(data)
        room = body_limit() - len(self.kept)
        if room > 0:
            self.kept.extend(data[:room])

    def finish(self) -> None:
        if self.written:
            return
        self.written = True
        call = self.call
        call.response_body = stored_text(bytes(self.kept), self.size, self.content_type)
        call.response_size = self.size
        call.response_truncated = self.size > len(self.kept)
        call.stored_bytes = len(call.request_body) + len(call.response_body) + len(call.url)
        call.subject_id = subject_of(call.response_body) if not call.response_truncated else ""
        try:
            call.save(force_insert=True)
        except Exception:
            # The inspector must never break the call it watches.
            logger.exception("Could not keep the API call %s %s", call.method, call.path)


def _tapped(method: Any, tap: Tap) -> Any:
    def read(*args: Any, **kwargs: Any) -> bytes:
        data = method(*args, **kwargs)
        tap.feed(data)
        return data

    return read


def _tapped_chunks(method: Any, tap: Tap) -> Any:
    def read_chunked(*args: Any, **kwargs: Any) -> Any:
        for chunk in method(*args, **kwargs):
            tap.feed(chunk)
            yield chunk
        tap.finish()

    return read_chunked


def _closing(method: Any, tap: Tap) -> Any:
    def close(*args: Any, **kwargs: Any) -> Any:
        tap.finish()
        return method(*args, **kwargs)

    return close


def _ending(method: Any, tap: Tap) -> Any:
    def iter_content(*args: Any, **kwargs: Any) -> Any:
        yield from method(*args, **kwargs)
        tap.finish()

    return iter_content


def new_call(
    request: outbound.PreparedRequest, response: outbound.Response, elapsed: float
) -> ApiCall:
    entry = ledger.current_entry.get()
    url = redact_text(request.url or "")
    parts = urlsplit(url)
    body, size = request_body(request)
    call = ApiCall(
        at=timezone.now() - timedelta(seconds=elapsed),
        method=(request.method or "")[:10],
        url=url,
        path=parts.path[:500],
        status=response.status_code,
        elapsed_ms=round(elapsed * 1000),
        request_id=response.headers.get("X-Request-Id", "")[:100],
        request_headers=redact_headers(request.headers.items()),
        request_body=body,
        request_size=size,
        response_headers=redact_headers(response.headers.items()),
        idempotency_key=request.headers.get("Idempotency-Key", "")[:255],
        operation=f"{request.method} {parts.path}"[:64],
    )
    if entry is not None:
        call.ledger_entry_id = entry.pk
        call.member_id, call.member_name = entry.member_id, entry.member_name
        call.key_id, call.key_label = entry.key_id, entry.key_label
        call.operation, call.model = entry.operation, entry.model
    return call


def record_exchange(
    request: outbound.PreparedRequest, response: outbound.Response, elapsed: float
) -> None:
    """The exchange listener: note the call, keep its body as it is read, write it at the end."""
    if not settings.RIVYA_INSPECTOR_ENABLED:
        return
    tap = Tap(new_call(request, response, elapsed), response.headers.get("Content-Type", ""))
    raw = response.raw
    for name, wrap in (("read", _tapped), ("read1", _tapped), ("read_chunked", _tapped_chunks)):
        if hasattr(raw, name):
            setattr(raw, name, wrap(getattr(raw, name), tap))
    response.close = _closing(response.close, tap)
    response.iter_content = _ending(response.iter_content, tap)

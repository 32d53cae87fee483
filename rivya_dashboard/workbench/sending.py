"""Sending one explorer request with a team key, under the member's grant and caps, and the
exchange as the page shows it: method, URL, status, timing, request id, headers, bodies.

Every send goes through the ledger (`ledger.recording`), which checks the grant again under the
lock that reserves the spend, so the explorer is capped exactly like the generate and chat pages.
A generation created here is adopted by History and followed to the end like any other.
"""

import json
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from requests_toolbelt.multipart.encoder import MultipartEncoder

from rivya_dashboard import outbound
from rivya_dashboard.accounts.models import User
from rivya_dashboard.console import generations
from rivya_dashboard.console.models import CatalogueModel
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.models import ApiKey, LedgerEntry
from rivya_dashboard.workbench.explorer_form import PreparedRequest
from rivya_dashboard.workbench.models import ShownExchange
from rivya_dashboard.workbench.operations import Operation
from rivya_dashboard.workbench.redaction import redact_headers, redact_text

# The page shows this much of a response body; the rest is counted, not kept.
DISPLAY_LIMIT = 2 * 1024 * 1024
GENERATION_CREATE = "generations.create"


@dataclass
class Exchange(ShownExchange):
    """One request and its answer, credentials already in display form."""

    method: str
    url: str
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    request_body: str = ""
    status: int | None = None
    elapsed_ms: int | None = None
    request_id: str = ""
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: str = ""
    response_size: int = 0
    truncated: bool = False
    error: str = ""
    generation_id: int | None = None


def read_body(response: outbound.Response, limit: int) -> tuple[bytes, int, bool]:
    """Up to limit bytes of the body, the whole size, and whether it was cut."""
    kept, size = bytearray(), 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if len(kept) < limit:
            kept.extend(chunk[: limit - len(kept)])
    return bytes(kept), size, size > len(kept)


def body_text(data: bytes) -> str:
    """Any bytes as text the page can show: a stored call never breaks its page."""
    return redact_text(data.decode("utf-8", errors="replace"))


def reservation(method: str, body: Any) -> tuple[str, Decimal | None]:
    """(model, credits to reserve): a write naming a catalogue model reserves that model's price,
    as the generate page does, so a cap stops it before Rivya is asked."""
    model_id = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model_id, str) or method in ("GET", "HEAD"):
        return "", None
    model = CatalogueModel.objects.filter(model_id=model_id).first()
    params = body.get("params") if isinstance(body.get("params"), dict) else {}
    credits = generations.estimate_credits(model.data, params) if model else None
    return model_id[:128], credits


def start_exchange(prepared: PreparedRequest, key: ApiKey) -> Exchange:
    shape = prepared.shape
    headers = [("Authorization", f"Bearer {key.display}"), *shape.headers.items()]
    body = ""
    if shape.has_json:
        body = json.dumps(shape.json_body, ensure_ascii=False)
        headers.append(("Content-Type", "application/json"))
    elif shape.form_fields or shape.file_fields:
        parts = {
            **shape.form_fields,
            **{name: f"@{path}" for name, path in shape.file_fields.items()},
        }
        body = json.dumps(parts, ensure_ascii=False)
        headers.append(("Content-Type", "multipart/form-data"))
    return Exchange(
        method=shape.method,
        url=redact_text(shape.full_url),
        request_headers=redact_headers(headers),
        request_body=redact_text(body),
    )


def transport_arguments(prepared: PreparedRequest) -> dict[str, Any]:
    shape = prepared.shape
    arguments: dict[str, Any] = {
        "params": shape.query or None,
        "headers": dict(shape.headers),
    }
    if shape.has_json:
        arguments["json"] = shape.json_body
    elif shape.form_fields or prepared.files:
        files = [
            (name, (upload.name, upload.file, upload.content_type or "application/octet-stream"))
            for name, upload in prepared.files.items()
        ]
        encoder = MultipartEncoder([*shape.form_fields.items(), *files])
        arguments["data"] = encoder
        arguments["headers"]["Content-Type"] = encoder.content_type
    return arguments


def settle(entry: LedgerEntry, status: int, answer: Any) -> None:
    entry.http_status = status
    if status >= 400:
        error = answer.get("error") if isinstance(answer, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        entry.error_code = str(code or f"http_{status}")[:64]
        if status < 500:
            # Rivya refused the call, so it charged nothing.
            entry.credits_final = Decimal(0)
        return
    if not isinstance(answer, dict):
        return
    for name, target in (
        ("reserved_credits", "credits_reserved"),
        ("final_credits", "credits_final"),
    ):
        if isinstance(answer.get(name), int | float):
            setattr(entry, target, Decimal(str(answer[name])))
    spent = answer.get("credits")
    if isinstance(spent, dict):
        # A chat completion says {"reserved": n, "final": n} (contract §10.4).
        for name, target in (("reserved", "credits_reserved"), ("final", "credits_final")):
            if isinstance(spent.get(name), int | float):
                setattr(entry, target, Decimal(str(spent[name])))
    elif isinstance(spent, int | float):
        entry.credits_final = Decimal(str(spent))


def idempotency_header(headers: dict[str, str]) -> str:
    return next((value for name, value in headers.items() if name.lower() == "idempotency-key"), "")


def recorded_call(
    user: User,
    key: ApiKey,
    client: Any,
    operation_id: str,
    method: str,
    headers: dict[str, str],
    body: Any,
    action: str | None,
) -> AbstractContextManager[LedgerEntry]:
    """The ledger row of one explorer call: the grant and caps checked again under the grant's
    lock, the named model's price reserved, the Idempotency-Key kept for the ledger's search."""
    model, credits = reservation(method, body)
    return ledger.recording(
        user,
        key,
        operation_id[:64],
        action=action,
        client=client,
        model=model,
        credits=credits,
        idempotency_key=idempotency_header(headers),
    )


def do_send(
    user: User, key: ApiKey, operation: Operation, prepared: PreparedRequest, action: str | None
) -> Exchange:
    """Send once; raises GrantRefused (nothing sent) or RivyaError (the API was not reached)."""
    exchange = start_exchange(prepared, key)
    shape = prepared.shape
    client = key.client()
    with recorded_call(
        user,
        key,
        client,
        operation.operation_id,
        shape.method,
        shape.headers,
        shape.json_body,
        action,
    ) as entry:
        started = time.perf_counter()
        response = client.send(
            operation.method, prepared.path, stream=True, **transport_arguments(prepared)
        )
        try:
            data, size, truncated = read_body(response, DISPLAY_LIMIT)
        finally:
            response.close()
        exchange.elapsed_ms = round((time.perf_counter() - started) * 1000)
        exchange.status = response.status_code
        exchange.request_id = response.headers.get("X-Request-Id", "")
        exchange.request_headers = redact_headers(response.request.headers.items())
        exchange.response_headers = redact_headers(response.headers.items())
        exchange.response_body, exchange.response_size = body_text(data), size
        exchange.truncated = truncated
        answer = None if truncated else _json_or_none(data)
        settle(entry, response.status_code, answer)
        if response.ok and operation.method == "POST" and generations.looks_like_generation(answer):
            entry.operation = GENERATION_CREATE
            request = prepared.shape.json_body if isinstance(prepared.shape.json_body, dict) else {}
            generation = generations.do_adopt(
                user,
                key,
                answer,
                idempotency_key=idempotency_header(shape.headers),
                request=request,
                request_id=exchange.request_id,
            )
            exchange.generation_id = generation.pk
    return exchange


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None

"""Streamed operations in the explorer: the page posts the request, then reads the exchange event
by event from an EventSource; Stop closes it, which closes the upstream connection.

The prepared request waits in the member's session under a one-time token (never the key: only
its id), so the GET that opens the stream carries nothing but that token.
"""

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

from django.contrib.sessions.backends.base import SessionBase

from rivya_dashboard.accounts.models import User
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.rivya.sse import SSEParser
from rivya_dashboard.vault.grants import GrantRefused
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.workbench.explorer_form import PreparedRequest
from rivya_dashboard.workbench.models import pretty_json
from rivya_dashboard.workbench.operations import Operation
from rivya_dashboard.workbench.redaction import redact_headers, redact_text
from rivya_dashboard.workbench.sending import (
    DISPLAY_LIMIT,
    body_text,
    read_body,
    recorded_call,
    settle,
)

SESSION_KEY = "workbench_streams"
# A page left open with many unsent streams keeps only the latest few.
MAX_PENDING = 5
READ_SIZE = 16 * 1024


def do_park(
    session: SessionBase,
    key: ApiKey,
    operation: Operation,
    prepared: PreparedRequest,
    action: str | None,
) -> str:
    token = secrets.token_urlsafe(16)
    shape = prepared.shape
    pending = dict(session.get(SESSION_KEY) or {})
    pending[token] = {
        "key": key.pk,
        "operation": operation.operation_id[:64],
        "method": operation.method,
        "path": prepared.path,
        "query": shape.query,
        "headers": shape.headers,
        "json": shape.json_body,
        "action": action,
    }
    session[SESSION_KEY] = dict(list(pending.items())[-MAX_PENDING:])
    return token


def take(session: SessionBase, token: str) -> dict | None:
    pending = dict(session.get(SESSION_KEY) or {})
    run = pending.pop(token, None)
    session[SESSION_KEY] = pending
    return run


def sse(event: str, payload: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def relay(user: User, key: ApiKey, run: dict) -> Iterator[bytes]:
    """The exchange as browser events: head, then upstream events (or body), then end."""
    yield b"retry: 3000\n\n"
    try:
        yield from _relay(user, key, run)
    except (GrantRefused, RivyaError) as exc:
        yield sse("failed", {"message": str(exc)})


def _relay(user: User, key: ApiKey, run: dict) -> Iterator[bytes]:
    client = key.client()
    stopped = False
    with recorded_call(
        user,
        key,
        client,
        run["operation"],
        run["method"],
        run["headers"],
        run["json"],
        run["action"],
    ) as entry:
        started = time.perf_counter()
        response = client.send(
            run["method"],
            run["path"],
            params=run["query"] or None,
            json=run["json"],
            headers={**run["headers"], "Accept": "text/event-stream"},
            stream=True,
        )
        entry.http_status = response.status_code
        try:
            yield sse("head", _head(response, started))
            if response.ok and "event-stream" in response.headers.get("Content-Type", ""):
                yield from _events(entry, response)
            else:
                data, size, truncated = read_body(response, DISPLAY_LIMIT)
                text = body_text(data)
                settle(entry, response.status_code, None if truncated else _json(text))
                yield sse("body", {"text": text, "pretty": pretty_json(text), "size": size})
        except GeneratorExit:
            # Stop: the browser closed the stream. The ledger keeps what was spent so far.
            entry.error_code = "stopped"
            stopped = True
        finally:
            response.close()
    if not stopped:
        yield sse("end", {"elapsed_ms": round((time.perf_counter() - started) * 1000)})


def _head(response: Any, started: float) -> dict:
    return {
        "status": response.status_code,
        "request_id": response.headers.get("X-Request-Id", ""),
        "elapsed_ms": round((time.perf_counter() - started) * 1000),
        "request_headers": redact_headers(response.request.headers.items()),
        "response_headers": redact_headers(response.headers.items()),
    }


def _events(entry: Any, response: Any) -> Iterator[bytes]:
    parser = SSEParser()
    while True:
        chunk = response.raw.read1(READ_SIZE, decode_content=True)
        if not chunk:
            return
        for event in parser.feed(chunk):
            data = redact_text(event.data)
            yield sse("upstream", {"event": event.event or "message", "id": event.id, "data": data})
            if event.event == "done":
                settle(entry, response.status_code, _json(data))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None

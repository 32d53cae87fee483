"""RivyaClient: the console's only way to talk to a Rivya API v1 (rivya.ai or the sandbox).

One method per operation of the contract (../shared/rivya-api-v1.md, section named in each
method). Answers are the API's JSON objects as plain dicts, unknown fields included, because the
API may add fields at any time. Failures raise the RivyaError family of errors.py.

The client sends on the session it is given: the console's sessions come from
rivya_dashboard.outbound, which owns pooling, the address guard, cookies, redirects and the
User-Agent. This package imports nothing of the project, so it imports requests and urllib3
only to name their exceptions and types, never to make a session of its own.
"""

import json
import mimetypes
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, TypedDict, Unpack
from urllib.parse import quote

import requests
import urllib3
from requests_toolbelt.multipart.encoder import MultipartEncoder, MultipartEncoderMonitor

from rivya_dashboard.rivya.errors import (
    RivyaError,
    Unavailable,
    error_from_response,
    make_error,
    parse_retry_after,
)
from rivya_dashboard.rivya.sse import SSEParser

# (connect, read): connecting should take milliseconds; a read waits for a slow model at most 30 s.
DEFAULT_TIMEOUT = (3.05, 30.0)
MAX_RETRIES = 2
BACKOFF_BASE = 0.5
# A longer Retry-After is not slept through inside a page request: the caller shows it instead.
MAX_RETRY_WAIT = 10.0
STREAM_READ_SIZE = 64 * 1024
TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class RateLimit:
    limit: int | None
    remaining: int | None
    reset: int | None


@dataclass(frozen=True)
class StreamEvent:
    """One event of a streamed chat turn; ``data`` is the event's JSON object as sent."""

    data: dict
    event_id: str | None


@dataclass(frozen=True)
class SessionEvent(StreamEvent):
    @property
    def session_id(self) -> str | None:
        return self.data.get("session_id")


@dataclass(frozen=True)
class DeltaEvent(StreamEvent):
    @property
    def text(self) -> str:
        return self.data.get("delta") or ""


@dataclass(frozen=True)
class ThinkingEvent(StreamEvent):
    """Reasoning text, shown apart from the answer (models with thoughts enabled only)."""

    @property
    def text(self) -> str:
        return self.data.get("delta") or ""


@dataclass(frozen=True)
class DoneEvent(StreamEvent):
    """The last event of a finished turn; ``data`` is the whole non-streaming completion."""


@dataclass(frozen=True)
class ErrorEvent(StreamEvent):
    """The last event of a failed or broken turn."""

    error: RivyaError


STREAM_EVENTS: dict[str, type[StreamEvent]] = {
    "session": SessionEvent,
    "delta": DeltaEvent,
    "thinking": ThinkingEvent,
    "done": DoneEvent,
}


def _header_int(headers: Any, name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


class ChatTurnOptions(TypedDict, total=False):
    """The optional fields of a chat turn (contract §10.3); None leaves a field out.
    enable_thoughts is the contract's PROPOSED name for thought mode."""

    session_id: str | None
    attachments: list[dict] | None
    enable_web_search: bool | None
    reasoning_effort: str | None
    enable_thoughts: bool | None
    client_request_id: str | None


class RivyaClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        session: requests.Session,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = MAX_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.session = session
        self.timeout = timeout
        self.max_retries = max_retries
        self._sleep = sleep
        self.rate_limit: RateLimit | None = None
        self.last_request_id: str | None = None

    def __repr__(self) -> str:
        return f"RivyaClient({self.base_url!r})"

    # --- Models and contract -----------------------------------------------------------------

    def list_models(self, *, category: str | None = None, api_status: str | None = None) -> dict:
        # Contract §4: GET /models (public, one unpaginated list).
        return self._get("/models", params={"category": category, "api_status": api_status})

    def get_openapi(self) -> dict:
        # Contract §12: GET /openapi.json.
        return self._get("/openapi.json")

    # --- Generations -------------------------------------------------------------------------

    def create_generation(
        self,
        model: str,
        prompt: str | None = None,
        params: dict | None = None,
        *,
        client_request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        # Contract §5, §5.1: POST /generations with an Idempotency-Key: a retry never pays twice.
        body = _without_none(
            {"model": model, "prompt": prompt, "params": params},
            client_request_id=client_request_id,
        )
        return self._json(
            self._request("POST", "/generations", json=body, idempotency_key=_key(idempotency_key))
        )

    def get_generation(self, task_id: str) -> dict:
        # Contract §6: GET /generations/{taskId}.
        return self._get(f"/generations/{_segment(task_id)}")

    # --- Files -------------------------------------------------------------------------------

    def upload_file(
        self,
        fileobj: IO[bytes],
        *,
        kind: str,
        filename: str,
        model: str | None = None,
        client_request_id: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict:
        # Contract §8.1: POST /files as multipart, streamed from fileobj in small reads so memory
        # stays flat whatever the size. fileobj must have a known size (a real file, a Django
        # upload, BytesIO, or anything with read() and len). Never retried: a stream is read once.
        fields = _without_none({"kind": kind, "model": model}, client_request_id=client_request_id)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        encoder = MultipartEncoder([*fields.items(), ("file", (filename, fileobj, content_type))])
        body: MultipartEncoder | MultipartEncoderMonitor = encoder
        if progress is not None:
            body = MultipartEncoderMonitor(encoder, lambda m: progress(m.bytes_read, m.len))
        response = self._request(
            "POST", "/files", data=body, headers={"Content-Type": encoder.content_type}
        )
        return self._json(response)

    def get_file(self, file_id: str) -> dict:
        # Contract §8.2: GET /files/{fileId}.
        return self._get(f"/files/{_segment(file_id)}")

    # --- Chat --------------------------------------------------------------------------------

    def create_chat_completion(
        self,
        model: str,
        message: str,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[ChatTurnOptions],
    ) -> dict:
        # Contract §10.3, §10.4: POST /chat/completions, one whole assistant turn.
        body = _chat_turn_body(model, message, options)
        response = self._request(
            "POST", "/chat/completions", json=body, idempotency_key=_key(idempotency_key)
        )
        return self._json(response)

    def stream_chat_completion(
        self,
        model: str,
        message: str,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[ChatTurnOptions],
    ) -> Iterator[StreamEvent]:
        # Contract §10.5: POST /chat/completions/stream. Errors found before the stream starts
        # raise on the first next(); afterwards the turn ends with exactly one DoneEvent or
        # ErrorEvent. Closing the generator closes the connection, which stops the turn upstream.
        body = _chat_turn_body(model, message, options)
        response = self._request(
            "POST",
            "/chat/completions/stream",
            json=body,
            idempotency_key=_key(idempotency_key),
            headers={"Accept": "text/event-stream"},
            stream=True,
        )
        try:
            yield from self._read_stream(response)
        finally:
            response.close()

    def list_chat_sessions(
        self, *, limit: int | None = None, cursor: str | None = None, model: str | None = None
    ) -> dict:
        # Contract §10.6: GET /chat/sessions, one page.
        params = {"limit": limit, "cursor": cursor, "model": model}
        return self._get("/chat/sessions", params=params)

    def get_chat_session(self, session_id: str) -> dict:
        # Contract §10.6: GET /chat/sessions/{sessionId}, with its messages.
        return self._get(f"/chat/sessions/{_segment(session_id)}")

    # --- Credits -----------------------------------------------------------------------------

    def get_credits(self) -> dict:
        # Contract §7: GET /credits; also the cheapest way to test a key.
        return self._get("/credits")

    # --- The console's own sandbox ------------------------------------------------------------

    def create_sandbox_key(
        self, *, name: str = "", credits: int | None = None, scopes: list[str] | None = None
    ) -> dict:
        # Not the Rivya API: the sandbox's control API (base URL …/sandbox/api/control, the
        # console's control token as the Bearer key). POST /keys answers {"key": "rvya_sk_…"}.
        # Never retried: each call mints a new key and account.
        body = _without_none({"name": name, "credits": credits, "scopes": scopes})
        return self._json(self._request("POST", "/keys", json=body))

    # --- Webhooks ----------------------------------------------------------------------------

    def list_webhooks(self, *, limit: int | None = None, cursor: str | None = None) -> dict:
        # Contract §9.7: GET /webhooks, one page.
        return self._get("/webhooks", params={"limit": limit, "cursor": cursor})

    def create_webhook(self, name: str, url: str, event_types: list[str]) -> dict:
        # Contract §9.7: POST /webhooks; the answer holds signing_secret, shown this once only.
        body = {"name": name, "url": url, "event_types": event_types}
        return self._json(self._request("POST", "/webhooks", json=body))

    def get_webhook(self, endpoint_id: str) -> dict:
        # Contract §9.7: GET /webhooks/{endpointId}.
        return self._get(f"/webhooks/{_segment(endpoint_id)}")

    def update_webhook(self, endpoint_id: str, **fields: Any) -> dict:
        # Contract §9.7: PATCH /webhooks/{endpointId} with name, url, event_types and/or status.
        path = f"/webhooks/{_segment(endpoint_id)}"
        return self._json(self._request("PATCH", path, json=fields))

    def delete_webhook(self, endpoint_id: str) -> dict:
        # Contract §9.7: DELETE /webhooks/{endpointId}; answers the revoked endpoint.
        return self._json(self._request("DELETE", f"/webhooks/{_segment(endpoint_id)}"))

    def rotate_webhook_secret(self, endpoint_id: str) -> dict:
        # Contract §9.7: POST /webhooks/{endpointId}/rotate-secret; the new secret is shown once.
        path = f"/webhooks/{_segment(endpoint_id)}/rotate-secret"
        return self._json(self._request("POST", path))

    def send_test_webhook(self, endpoint_id: str) -> dict:
        # Contract §9.7: POST /webhooks/{endpointId}/test; answers the queued delivery.
        return self._json(self._request("POST", f"/webhooks/{_segment(endpoint_id)}/test"))

    def list_webhook_deliveries(
        self,
        endpoint_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        status: str | None = None,
    ) -> dict:
        # Contract §9.7: GET /webhooks/{endpointId}/deliveries, one page.
        return self._get(
            f"/webhooks/{_segment(endpoint_id)}/deliveries",
            params={"limit": limit, "cursor": cursor, "status": status},
        )

    def list_webhook_events(
        self, *, limit: int | None = None, cursor: str | None = None, event_type: str | None = None
    ) -> dict:
        # Contract §9.7: GET /webhook-events, one page; event_type is sent as the "type" filter.
        return self._get(
            "/webhook-events", params={"limit": limit, "cursor": cursor, "type": event_type}
        )

    # --- Any declared operation ----------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict | None = None,
        stream: bool = False,
    ) -> requests.Response:
        # Contract §12: an operation as the API's own OpenAPI document declares it (the workbench
        # explorer). Sent once, never retried, and answered as it came, error statuses included:
        # the member sees exactly what was exchanged. Only a failure to reach the API raises.
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                params=params,
                json=json,
                data=data,
                headers=self._headers(headers or {}),
                timeout=self.timeout,
                stream=stream,
                allow_redirects=False,
            )
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(f"Could not reach Rivya at {self.base_url}: {exc}") from exc
        except requests.RequestException as exc:
            raise RivyaError(f"Could not send the request to {self.base_url}: {exc}") from exc
        self._remember(response)
        return response

    # --- Pagination --------------------------------------------------------------------------

    def iterate(
        self, list_method: Callable[..., dict], /, *args: Any, **kwargs: Any
    ) -> Iterator[dict]:
        """Every item of a paginated list, page after page, e.g. iterate(c.list_webhooks)."""
        # Contract §1.4: {"data": [...], "has_more": bool, "next_cursor": str | null}.
        seen: set[str] = set()
        cursor = kwargs.pop("cursor", None)
        while True:
            page = list_method(*args, cursor=cursor, **kwargs)
            yield from page.get("data") or []
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return
            if cursor in seen:
                raise RivyaError(
                    "Rivya returned the same page cursor twice; stopped to avoid a loop.",
                    request_id=self.last_request_id,
                )
            seen.add(cursor)

    # --- Transport ---------------------------------------------------------------------------

    def _get(self, path: str, params: dict | None = None) -> dict:
        return self._json(self._request("GET", path, params=_without_none(params or {})))

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: dict | None = None,
        data: Any = None,
        headers: dict | None = None,
        idempotency_key: str | None = None,
        stream: bool = False,
    ) -> requests.Response:
        # Only requests that cannot act twice are retried: GETs, and creates that carry an
        # Idempotency-Key (the server replays the first answer instead of creating again).
        retryable = method == "GET" or idempotency_key is not None
        extra = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        all_headers = self._headers({**extra, **(headers or {})})
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=all_headers,
                    timeout=self.timeout,
                    stream=stream,
                    allow_redirects=False,
                )
            except TRANSIENT_ERRORS as exc:
                if retryable and attempt < self.max_retries:
                    self._sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise Unavailable(f"Could not reach Rivya at {self.base_url}: {exc}") from exc
            except requests.RequestException as exc:
                raise RivyaError(f"Could not send the request to {self.base_url}: {exc}") from exc
            self._remember(response)
            if response.status_code < 300:
                return response
            if response.status_code < 400:
                # The API never redirects; following one could turn a POST into a GET or carry
                # the key elsewhere. It almost always means a wrong base URL (http vs https).
                response.close()
                location = response.headers.get("Location", "nowhere")
                raise RivyaError(
                    f"Rivya answered HTTP {response.status_code}, a redirect to {location}: "
                    "check the base URL.",
                    status=response.status_code,
                    request_id=self.last_request_id,
                )
            wait = self._retry_wait(response, attempt) if retryable else None
            if wait is None:
                error = error_from_response(response)
                response.close()
                raise error
            response.close()
            self._sleep(wait)
            attempt += 1

    def _headers(self, extra: dict) -> dict:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        headers.update(extra)
        return headers

    def _retry_wait(self, response: requests.Response, attempt: int) -> float | None:
        transient = response.status_code == 429 or response.status_code >= 500
        if not transient or attempt >= self.max_retries:
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            return self._backoff(attempt)
        return retry_after if retry_after <= MAX_RETRY_WAIT else None

    def _backoff(self, attempt: int) -> float:
        # Full jitter: many console processes retrying at once spread out instead of in step.
        return random.uniform(0, BACKOFF_BASE * 2**attempt)

    def _remember(self, response: requests.Response) -> None:
        headers = response.headers
        self.last_request_id = headers.get("X-Request-Id")
        if "X-RateLimit-Limit" in headers or "X-RateLimit-Remaining" in headers:
            self.rate_limit = RateLimit(
                limit=_header_int(headers, "X-RateLimit-Limit"),
                remaining=_header_int(headers, "X-RateLimit-Remaining"),
                reset=_header_int(headers, "X-RateLimit-Reset"),
            )

    def _json(self, response: requests.Response) -> dict:
        request_id = response.headers.get("X-Request-Id")
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RivyaError(
                f"Rivya answered HTTP {response.status_code} with a body that is not JSON.",
                status=response.status_code,
                request_id=request_id,
            )
        return body

    def _read_stream(self, response: requests.Response) -> Iterator[StreamEvent]:
        parser = SSEParser()
        request_id = response.headers.get("X-Request-Id")
        while True:
            try:
                chunk = response.raw.read1(STREAM_READ_SIZE, decode_content=True)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                yield _broken_stream(f"The reply stream broke: {exc}", request_id)
                return
            if not chunk:
                reason = "mid-event" if parser.mid_event else "before its final event"
                yield _broken_stream(f"The reply stream ended {reason}.", request_id)
                return
            for sse in parser.feed(chunk):
                event = _stream_event(sse.event, sse.data, sse.id, request_id)
                if event is None:
                    continue
                yield event
                if isinstance(event, DoneEvent | ErrorEvent):
                    return


def _stream_event(
    name: str, data: str, event_id: str | None, request_id: str | None
) -> StreamEvent | None:
    if name != "error" and name not in STREAM_EVENTS:
        # The contract lets the API add event types; ones this client does not know are skipped.
        return None
    try:
        payload = json.loads(data)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        message = f"The reply stream sent a {name!r} event that is not JSON."
        return _broken_stream(message, request_id)
    if name == "error":
        error = payload.get("error")
        error = error if isinstance(error, dict) else {}
        rivya_error = make_error(
            error.get("message") or "The reply failed.",
            status=None,
            code=error.get("code"),
            request_id=error.get("requestId") or request_id,
        )
        return ErrorEvent(payload, event_id, rivya_error)
    return STREAM_EVENTS[name](payload, event_id)


def _broken_stream(message: str, request_id: str | None) -> ErrorEvent:
    error = Unavailable(message, code="stream_interrupted", request_id=request_id)
    return ErrorEvent({"error": {"code": error.code, "message": message}}, None, error)


def _chat_turn_body(model: str, message: str, options: ChatTurnOptions) -> dict:
    """The JSON body of a chat turn, whole or streamed."""
    unknown = options.keys() - ChatTurnOptions.__annotations__.keys()
    if unknown:
        raise TypeError(f"unexpected chat turn options: {', '.join(sorted(unknown))}")
    return _without_none({"model": model, "message": message}, **options)


def _without_none(fields: dict, **optional: Any) -> dict:
    return {name: value for name, value in {**fields, **optional}.items() if value is not None}


def _key(idempotency_key: str | None) -> str:
    return idempotency_key or str(uuid.uuid4())


def _segment(value: str) -> str:
    # Ids come from users and pages: quoting keeps "../credits" from reaching another route.
    return quote(str(value), safe="")

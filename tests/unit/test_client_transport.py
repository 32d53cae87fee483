"""The client's transport rules against scripted servers: errors, retries, state, streaming.

A scripted WSGI app answers exactly what each test needs (bodies the sandbox would never send:
HTML error pages, cut-off JSON, broken streams), through the same in-process adapter.
"""

import json
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import pytest
import requests

from rivya_dashboard.rivya.client import (
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    RateLimit,
    RivyaClient,
    SessionEvent,
    ThinkingEvent,
)
from rivya_dashboard.rivya.errors import (
    AuthError,
    Conflict,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    RateLimited,
    RivyaError,
    Unavailable,
    parse_retry_after,
)
from tests.inprocess import in_process_session

BASE = "https://rivya.example/api/v1"


class ScriptedApp:
    """Answers each request with the next scripted (status, headers, body chunks)."""

    def __init__(self, *answers: tuple[int, dict, Any]) -> None:
        self.answers = list(answers)
        self.requests: list[dict] = []
        self.closed = 0

    def __call__(self, environ: dict, start_response: Any) -> Iterator[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.requests.append({**environ, "body": body})
        status, headers, chunks = self.answers.pop(0)
        start_response(f"{status} X", list(headers.items()))
        if isinstance(chunks, bytes | str):
            chunks = [chunks]
        return self._body(chunks)

    def _body(self, chunks: Any) -> Iterator[bytes]:
        try:
            for chunk in chunks:
                if isinstance(chunk, Exception):
                    raise chunk
                yield chunk.encode() if isinstance(chunk, str) else chunk
        finally:
            self.closed += 1


def json_answer(status: int, body: Any, **headers: str) -> tuple[int, dict, bytes]:
    headers = {"Content-Type": "application/json", **headers}
    return status, {k.replace("_", "-"): v for k, v in headers.items()}, json.dumps(body).encode()


def error_answer(status: int, code: str, **headers: str) -> tuple[int, dict, bytes]:
    envelope = {"error": {"code": code, "message": f"{code} happened", "requestId": "req_body"}}
    return json_answer(status, envelope, **headers)


def make_client(app: ScriptedApp, **kwargs: Any) -> tuple[RivyaClient, list[float]]:
    sleeps: list[float] = []
    client = RivyaClient(
        BASE, "rvya_sk_test", session=in_process_session(app), sleep=sleeps.append, **kwargs
    )
    return client, sleeps


# --- Error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "api_key_missing", AuthError),
        (401, "api_key_invalid", AuthError),
        (401, "api_key_revoked", AuthError),
        (401, "api_key_expired", AuthError),
        (403, "api_scope_denied", AuthError),
        (402, "insufficient_credits", InsufficientCredits),
        (400, "validation_failed", InvalidRequest),
        (400, "webhook_url_rejected", InvalidRequest),
        (400, "chat_model_not_supported", InvalidRequest),
        (400, "chat_attachment_not_supported", InvalidRequest),
        (409, "idempotency_conflict", Conflict),
        (409, "chat_session_conflict", Conflict),
        (404, "not_found", NotFound),
        (503, "public_api_disabled", Unavailable),
        # Unknown codes fall back on the HTTP status.
        (400, "brand_new_code", InvalidRequest),
        (402, "payment_needed_v2", InsufficientCredits),
        (403, "forbidden_v2", AuthError),
        (409, "other_conflict", Conflict),
        (413, "file_too_large", InvalidRequest),
        (418, "teapot", RivyaError),
        (502, "bad_gateway", Unavailable),
    ],
)
def test_it_maps_each_error_to_what_the_ui_does_next(
    status: int, code: str, expected: type
) -> None:
    client, _ = make_client(ScriptedApp(error_answer(status, code)))
    with pytest.raises(RivyaError) as caught:
        client.create_webhook("n", "https://example.com/hook", ["generation.succeeded"])
    assert type(caught.value) is expected
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.message == f"{code} happened"
    assert str(caught.value) == f"{code} happened (request id: req_body)"


def test_a_known_code_wins_over_an_unusual_status() -> None:
    client, _ = make_client(ScriptedApp(error_answer(400, "not_found")))
    with pytest.raises(NotFound):
        client.get_webhook("whend_1")


def test_invalid_request_carries_the_param_and_rate_limited_the_wait() -> None:
    envelope = {"error": {"code": "validation_failed", "message": "bad", "param": "prompt"}}
    app = ScriptedApp(
        json_answer(400, envelope, X_Request_Id="req_hdr"),
        error_answer(429, "rate_limited", Retry_After="60"),
    )
    client, sleeps = make_client(app)
    with pytest.raises(InvalidRequest) as invalid:
        client.create_webhook("n", "https://example.com", ["generation.failed"])
    assert invalid.value.param == "prompt"
    assert invalid.value.request_id == "req_hdr"
    with pytest.raises(RateLimited) as limited:
        client.get_credits()
    assert limited.value.retry_after == 60
    assert sleeps == []  # a minute is shown to the user, not slept through


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"error": {"code": "validation_fai',
        b'["not", "an", "envelope"]',
        b'{"error": "just a string"}',
        b"",
    ],
)
def test_an_unreadable_error_body_still_gives_a_clear_error(body: bytes) -> None:
    app = ScriptedApp((502, {"X-Request-Id": "req_proxy"}, body))
    client, _ = make_client(app)
    with pytest.raises(Unavailable) as caught:
        client.create_webhook("n", "https://example.com", ["generation.failed"])
    assert caught.value.status == 502
    assert caught.value.code is None
    assert "not its JSON error envelope" in str(caught.value)
    assert "req_proxy" in str(caught.value)


def test_an_error_without_any_request_id_says_so() -> None:
    app = ScriptedApp(json_answer(400, {"error": {"code": "validation_failed"}}))
    client, _ = make_client(app)
    with pytest.raises(InvalidRequest) as caught:
        client.get_credits()
    assert str(caught.value) == "Rivya answered HTTP 400 (validation_failed). (request id: none)"


def test_a_success_body_that_is_not_a_json_object_is_an_error() -> None:
    app = ScriptedApp((200, {"X-Request-Id": "req_1"}, b"<html>"), json_answer(200, [1, 2]))
    client, _ = make_client(app)
    for _ in range(2):
        with pytest.raises(RivyaError, match="not JSON"):
            client.get_credits()


def test_a_redirect_is_not_followed_but_explained() -> None:
    moved = (301, {"Location": "https://rivya.example/api/v1/webhooks", "X-Request-Id": "r"}, b"")
    app = ScriptedApp(moved, json_answer(200, {}))
    client, _ = make_client(app)
    with pytest.raises(RivyaError, match=r"redirect to https://rivya\.example/api/v1/") as e:
        client.create_webhook("n", "https://example.com", ["generation.failed"])
    assert type(e.value) is RivyaError
    assert (e.value.status, e.value.request_id) == (301, "r")
    assert len(app.requests) == 1


def test_an_empty_success_body_is_an_empty_dict() -> None:
    client, _ = make_client(ScriptedApp((204, {}, b"")))
    assert client.delete_webhook("whend_1") == {}


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after(" 3 ") == 3
    assert parse_retry_after("soon") is None
    assert parse_retry_after("²") is None
    now = 1_800_000_000
    assert parse_retry_after(formatdate(now + 5, usegmt=True), now=now) == 5
    assert parse_retry_after(formatdate(now - 5, usegmt=True), now=now) == 0
    assert 0 <= parse_retry_after(formatdate(usegmt=True)) <= 1


# --- Retries ---------------------------------------------------------------------------------


def test_a_get_is_retried_twice_on_5xx_then_gives_up() -> None:
    app = ScriptedApp(*[error_answer(500, "internal_error")] * 3)
    client, sleeps = make_client(app)
    with pytest.raises(Unavailable):
        client.get_credits()
    assert len(app.requests) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0
    assert app.closed == 3  # every failed answer released its connection


def test_a_get_retry_that_succeeds_returns_the_answer() -> None:
    app = ScriptedApp(
        error_answer(503, "public_api_disabled", Retry_After="2"),
        json_answer(200, {"current_credits": 5}),
    )
    client, sleeps = make_client(app)
    assert client.get_credits() == {"current_credits": 5}
    assert sleeps == [2]


def test_a_create_with_an_idempotency_key_is_retried_with_the_same_key() -> None:
    app = ScriptedApp(error_answer(429, "rate_limited"), json_answer(202, {"id": "task_1"}))
    client, sleeps = make_client(app)
    assert client.create_generation("z-image", "a cat") == {"id": "task_1"}
    keys = [request["HTTP_IDEMPOTENCY_KEY"] for request in app.requests]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert app.requests[0]["body"] == app.requests[1]["body"]
    assert len(sleeps) == 1


def test_a_post_without_an_idempotency_key_is_never_retried() -> None:
    app = ScriptedApp(error_answer(503, "public_api_disabled"), json_answer(201, {}))
    client, sleeps = make_client(app)
    with pytest.raises(Unavailable):
        client.create_webhook("n", "https://example.com", ["generation.failed"])
    assert len(app.requests) == 1
    assert sleeps == []


def test_a_client_error_is_never_retried() -> None:
    app = ScriptedApp(error_answer(404, "not_found"), json_answer(200, {}))
    client, _ = make_client(app)
    with pytest.raises(NotFound):
        client.get_generation("task_x")
    assert len(app.requests) == 1


class FlakyAdapter(requests.adapters.BaseAdapter):
    """Fails the first `failures` sends with `error`, then answers 200 {}; records kwargs."""

    def __init__(self, failures: int, error: Exception) -> None:
        super().__init__()
        self.failures = failures
        self.error = error
        self.sends: list[tuple[requests.PreparedRequest, dict]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sends.append((request, kwargs))
        if len(self.sends) <= self.failures:
            raise self.error
        response = requests.Response()
        response.status_code = 200
        response._content = b'{"ok": true}'
        return response

    def close(self) -> None:
        """Nothing to release."""


def flaky_client(adapter: FlakyAdapter) -> tuple[RivyaClient, list[float]]:
    session = requests.Session()
    session.mount("https://", adapter)
    sleeps: list[float] = []
    return RivyaClient(BASE, "rvya_sk_test", session=session, sleep=sleeps.append), sleeps


def test_connection_errors_are_retried_for_gets() -> None:
    adapter = FlakyAdapter(2, requests.ConnectionError("refused"))
    client, sleeps = flaky_client(adapter)
    assert client.list_models() == {"ok": True}
    assert len(adapter.sends) == 3
    assert len(sleeps) == 2


def test_connection_errors_end_as_unavailable() -> None:
    adapter = FlakyAdapter(9, requests.ReadTimeout("slow"))
    client, _ = flaky_client(adapter)
    with pytest.raises(Unavailable, match=r"Could not reach Rivya at https://rivya\.example"):
        client.get_openapi()
    assert len(adapter.sends) == 3


def test_a_plain_post_is_not_resent_after_a_connection_error() -> None:
    adapter = FlakyAdapter(1, requests.ConnectionError("reset"))
    client, _ = flaky_client(adapter)
    with pytest.raises(Unavailable):
        client.send_test_webhook("whend_1")
    assert len(adapter.sends) == 1


def test_a_request_that_cannot_be_sent_is_a_rivya_error() -> None:
    client, _ = flaky_client(FlakyAdapter(1, requests.exceptions.InvalidURL("bad url")))
    with pytest.raises(RivyaError, match="Could not send the request") as caught:
        client.get_credits()
    assert type(caught.value) is RivyaError


def test_every_call_has_timeouts_and_the_key() -> None:
    adapter = FlakyAdapter(0, RuntimeError())
    client, _ = flaky_client(adapter)
    client.get_credits()
    request, kwargs = adapter.sends[0]
    assert kwargs["timeout"] == (3.05, 30.0)
    assert request.headers["Authorization"] == "Bearer rvya_sk_test"
    assert "Idempotency-Key" not in request.headers


def test_a_client_without_a_key_sends_no_authorization() -> None:
    adapter = FlakyAdapter(0, RuntimeError())
    session = requests.Session()
    session.mount("https://", adapter)
    RivyaClient(BASE + "/", None, session=session).list_models(category="image")
    request = adapter.sends[0][0]
    assert "Authorization" not in request.headers
    assert request.url == BASE + "/models?category=image"


# --- Shared session, state -------------------------------------------------------------------


def test_it_remembers_rate_limits_and_the_last_request_id() -> None:
    app = ScriptedApp(
        json_answer(
            200,
            {},
            X_RateLimit_Limit="60",
            X_RateLimit_Remaining="59",
            X_RateLimit_Reset="x",
            X_Request_Id="req_a",
        ),
        json_answer(200, {}),
    )
    client, _ = make_client(app)
    assert client.rate_limit is None
    client.get_credits()
    assert client.rate_limit == RateLimit(limit=60, remaining=59, reset=None)
    assert client.last_request_id == "req_a"
    client.get_credits()
    assert client.rate_limit == RateLimit(limit=60, remaining=59, reset=None)
    assert client.last_request_id is None
    assert repr(client) == f"RivyaClient('{BASE}')"


def test_ids_are_quoted_into_one_path_segment() -> None:
    app = ScriptedApp(json_answer(200, {}))
    client, _ = make_client(app)
    client.get_file("../credits?x=1")
    assert app.requests[0]["PATH_INFO"] == "/api/v1/files/../credits?x=1"
    assert app.requests[0]["QUERY_STRING"] == ""


def test_iterate_stops_when_a_server_repeats_a_cursor() -> None:
    page = {"object": "list", "data": [{"id": 1}], "has_more": True, "next_cursor": "c1"}
    app = ScriptedApp(json_answer(200, page), json_answer(200, page), json_answer(200, page))
    client, _ = make_client(app)
    items = []
    with pytest.raises(RivyaError, match="same page cursor twice"):
        items.extend(client.iterate(client.list_webhooks, limit=1))
    assert items == [{"id": 1}, {"id": 1}]


# --- Streaming -------------------------------------------------------------------------------

SSE = {"Content-Type": "text/event-stream", "X-Request-Id": "req_stream"}


def stream_client(*chunks: Any) -> tuple[RivyaClient, ScriptedApp]:
    app = ScriptedApp((200, SSE, list(chunks)))
    return make_client(app)[0], app


def test_it_streams_typed_events_until_done() -> None:
    client, app = stream_client(
        'event: session\ndata: {"session_id": "chs_1"}\n\n',
        ': ping\n\nevent: thinking\ndata: {"delta": "hm"}\n\n',
        'event: brand_new\ndata: {}\n\nevent: delta\nid: 3\ndata: {"delta": "Hi"}\n\n',
        "event: delta\ndata: {}\n\n",
        'event: done\ndata: {"usage": {"total_tokens": 3}}\n\n',
        'event: delta\ndata: {"delta": "after the end"}\n\n',
    )
    events = list(client.stream_chat_completion("gpt-5-2-chat", "hello"))
    assert [type(event) for event in events] == [
        SessionEvent,
        ThinkingEvent,
        DeltaEvent,
        DeltaEvent,
        DoneEvent,
    ]
    assert events[0].session_id == "chs_1"
    assert events[1].text == "hm"
    assert (events[2].text, events[2].event_id) == ("Hi", "3")
    assert events[3].text == ""
    assert events[4].data == {"usage": {"total_tokens": 3}}
    assert app.requests[0]["HTTP_ACCEPT"] == "text/event-stream"
    assert app.closed == 1


def test_a_stream_error_event_becomes_a_mapped_error() -> None:
    client, _ = stream_client(
        'event: error\ndata: {"error": {"code": "insufficient_credits", "message": "Top up"}}\n\n'
    )
    (event,) = client.stream_chat_completion("m", "x")
    assert isinstance(event, ErrorEvent)
    assert isinstance(event.error, InsufficientCredits)
    assert str(event.error) == "Top up (request id: req_stream)"


def test_a_stream_error_event_without_details_is_still_an_error() -> None:
    client, _ = stream_client("event: error\ndata: {}\n\n")
    (event,) = client.stream_chat_completion("m", "x")
    assert type(event.error) is RivyaError
    assert event.error.message == "The reply failed."


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        (['event: delta\ndata: {"delta": "Hel'], "ended mid-event"),
        (['event: delta\ndata: {"delta": "Hi"}\n\n'], "ended before its final event"),
        (["event: delta\ndata: not json\n\n"], "'delta' event that is not JSON"),
        (['event: delta\ndata: {"delta": "Hi"}\n\n', ConnectionError("boom")], "broke"),
    ],
)
def test_a_broken_stream_ends_with_one_error_event(chunks: list, message: str) -> None:
    client, app = stream_client(*chunks)
    events = list(client.stream_chat_completion("m", "x"))
    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, Unavailable)
    assert events[-1].error.code == "stream_interrupted"
    assert message in events[-1].error.message
    assert events[-1].error.request_id == "req_stream"
    assert all(not isinstance(event, ErrorEvent) for event in events[:-1])
    assert app.closed == 1


def test_closing_the_generator_closes_the_response_at_once() -> None:
    endless = ('event: delta\ndata: {"delta": "."}\n\n' for _ in iter(int, 1))
    app = ScriptedApp((200, SSE, endless))
    client, _ = make_client(app)
    stream = client.stream_chat_completion("m", "x")
    assert isinstance(next(stream), DeltaEvent)
    assert app.closed == 0
    stream.close()
    assert app.closed == 1


def test_errors_before_the_stream_starts_raise_on_first_next() -> None:
    app = ScriptedApp(error_answer(409, "chat_session_conflict"))
    client, _ = make_client(app)
    stream = client.stream_chat_completion("m", "x", session_id="chs_other")
    assert app.requests == []
    with pytest.raises(Conflict):
        next(stream)
    assert json.loads(app.requests[0]["body"]) == {
        "model": "m",
        "message": "x",
        "session_id": "chs_other",
    }


# --- Any declared operation (the workbench explorer) -------------------------------------------


def test_send_answers_error_statuses_as_they_came_without_retrying() -> None:
    app = ScriptedApp(error_answer(503, "public_api_disabled", X_Request_Id="req_send"))
    client, sleeps = make_client(app)
    response = client.send("POST", "/things", json={"a": 1}, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 503
    assert client.last_request_id == "req_send"
    assert len(app.requests) == 1 and not sleeps
    sent = app.requests[0]
    assert sent["HTTP_AUTHORIZATION"] == "Bearer rvya_sk_test"
    assert sent["HTTP_IDEMPOTENCY_KEY"] == "k1"
    assert json.loads(sent["body"]) == {"a": 1}


def test_send_that_cannot_reach_the_api_is_unavailable_and_not_resent() -> None:
    adapter = FlakyAdapter(1, requests.ConnectionError("refused"))
    client, _ = flaky_client(adapter)
    with pytest.raises(Unavailable):
        client.send("GET", "/credits")
    assert len(adapter.sends) == 1


def test_send_that_cannot_be_built_is_a_rivya_error() -> None:
    client, _ = flaky_client(FlakyAdapter(1, requests.exceptions.InvalidURL("bad url")))
    with pytest.raises(RivyaError, match="Could not send the request"):
        client.send("GET", "/credits")

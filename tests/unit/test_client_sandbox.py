"""Every RivyaClient method against the sandbox, in-process: answers, errors, retries, pages."""

import io
from typing import Any

import pytest
import requests

from rivya_dashboard.rivya.client import (
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
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
    Unavailable,
)
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import SandboxKey, SandboxSettings
from tests.conftest import SANDBOX_BASE_URL
from tests.inprocess import in_process_session
from tests.png import png_bytes

PUBLIC_HOOK = "https://93.184.216.34/rivya/webhook"
EVENTS = ["generation.succeeded", "generation.failed"]


class Recorder:
    """A client on the sandbox that counts the HTTP answers it got and the sleeps it took."""

    def __init__(self, key: str, fault: str | None = None) -> None:
        self.answers: list[requests.Response] = []
        self.sleeps: list[float] = []
        session = in_process_session()
        session.hooks["response"].append(lambda response, **kwargs: self.answers.append(response))
        if fault:
            session.headers["X-Sandbox-Fault"] = fault
        self.client = RivyaClient(SANDBOX_BASE_URL, key, session=session, sleep=self.sleeps.append)


@pytest.fixture(autouse=True)
def fast_sandbox(db, settings) -> None:
    settings.RIVYA_SANDBOX_TOKEN_DELAY_MS = 0
    settings.RIVYA_SANDBOX_RATE_LIMIT = 10_000
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


# --- Models, contract, credits ---------------------------------------------------------------


def test_it_lists_models_with_and_without_a_key(sandbox_client: RivyaClient) -> None:
    models = sandbox_client.list_models()
    ids = {model["id"] for model in models["data"]}
    assert {"z-image", "gpt-5-2-chat"} <= ids
    anonymous = RivyaClient(SANDBOX_BASE_URL, None, session=in_process_session())
    chat = anonymous.list_models(category="chat")["data"]
    assert chat
    assert {model["category"] for model in chat} == {"chat"}


def test_it_reads_the_openapi_document(sandbox_client: RivyaClient) -> None:
    document = sandbox_client.get_openapi()
    assert document["openapi"].startswith("3.1")
    assert "/generations" in document["paths"]


def test_it_reads_credits_and_remembers_limits_and_request_id(
    sandbox_client: RivyaClient,
) -> None:
    assert sandbox_client.get_credits() == {"current_credits": 1000}
    assert sandbox_client.last_request_id.startswith("req_")
    assert sandbox_client.rate_limit.limit == 10_000
    assert sandbox_client.rate_limit.remaining < 10_000
    assert sandbox_client.rate_limit.reset > 0


# --- Generations and idempotency -------------------------------------------------------------


def test_it_creates_and_reads_a_generation(sandbox_client: RivyaClient) -> None:
    created = sandbox_client.create_generation(
        "z-image", "a red fox", {"aspect_ratio": "16:9"}, client_request_id="order-1"
    )
    assert created["status"] == "queued"
    assert created["model"] == "z-image"
    assert sandbox_client.get_generation(created["id"])["id"] == created["id"]
    assert sandbox_client.get_credits()["current_credits"] == 1000 - created["reserved_credits"]


def test_the_same_idempotency_key_replays_instead_of_paying_twice(
    sandbox_client: RivyaClient,
) -> None:
    first = sandbox_client.create_generation("z-image", "a fox", idempotency_key="form-nonce-1")
    again = sandbox_client.create_generation("z-image", "a fox", idempotency_key="form-nonce-1")
    assert again["id"] == first["id"]
    assert sandbox_client.get_credits()["current_credits"] == 1000 - first["reserved_credits"]
    with pytest.raises(Conflict) as caught:
        sandbox_client.create_generation("z-image", "a wolf", idempotency_key="form-nonce-1")
    assert caught.value.code == "idempotency_conflict"


def test_without_a_key_each_create_gets_its_own_idempotency_key(
    sandbox_client: RivyaClient,
) -> None:
    first = sandbox_client.create_generation("z-image", "a fox")
    second = sandbox_client.create_generation("z-image", "a fox")
    assert first["id"] != second["id"]


def test_invalid_generations_name_what_to_fix(sandbox_client: RivyaClient) -> None:
    with pytest.raises(InvalidRequest) as caught:
        sandbox_client.create_generation("z-image", "fox", {"aspect_ratio": "7:3"})
    assert caught.value.code == "validation_failed"
    assert "aspect_ratio" in caught.value.message
    assert caught.value.request_id.startswith("req_")
    with pytest.raises(NotFound):
        sandbox_client.get_generation("task_doesnotexist")


def test_a_poor_account_gets_insufficient_credits(db) -> None:
    client = Recorder(issue_key(credits=0)).client
    with pytest.raises(InsufficientCredits) as caught:
        client.create_generation("z-image", "a fox")
    assert caught.value.status == 402


# --- Files -----------------------------------------------------------------------------------


def test_it_streams_an_upload_with_progress_and_reads_it_back(
    sandbox_client: RivyaClient,
) -> None:
    data = png_bytes()
    seen: list[tuple[int, int]] = []
    uploaded = sandbox_client.upload_file(
        io.BytesIO(data),
        kind="image",
        filename="dot.png",
        model="nano-banana-2",
        client_request_id="upload-1",
        progress=lambda sent, total: seen.append((sent, total)),
    )
    assert uploaded["kind"] == "image"
    assert uploaded["size_bytes"] == len(data)
    assert uploaded["mime_type"] == "image/png"
    assert seen[-1][0] == seen[-1][1] > len(data)
    assert sandbox_client.get_file(uploaded["id"])["id"] == uploaded["id"]


def test_an_upload_the_sandbox_refuses_is_an_invalid_request(
    sandbox_client: RivyaClient, tmp_path: Any
) -> None:
    path = tmp_path / "notes.bin"
    path.write_bytes(b"plain text, not an image")
    with path.open("rb") as fileobj, pytest.raises(InvalidRequest):
        sandbox_client.upload_file(fileobj, kind="image", filename="notes.bin")
    with pytest.raises(NotFound):
        sandbox_client.get_file("file_doesnotexist")


# --- Chat ------------------------------------------------------------------------------------


def test_a_chat_turn_then_a_second_one_in_the_same_session(sandbox_client: RivyaClient) -> None:
    first = sandbox_client.create_chat_completion(
        "gpt-5-2-chat",
        "Plan a launch",
        enable_web_search=True,
        reasoning_effort="low",
        client_request_id="chat-1",
    )
    assert first["object"] == "chat.completion"
    assert first["message"]["content"]
    second = sandbox_client.create_chat_completion(
        "gpt-5-2-chat", "Shorter", session_id=first["session_id"]
    )
    assert second["session_id"] == first["session_id"]
    session = sandbox_client.get_chat_session(first["session_id"])
    assert [message["role"] for message in session["messages"]] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]


def test_chat_errors_map_to_conflict_and_invalid_request(sandbox_client: RivyaClient) -> None:
    turn = sandbox_client.create_chat_completion("gpt-5-2-chat", "hi")
    with pytest.raises(Conflict) as conflict:
        sandbox_client.create_chat_completion(
            "gemini-2-5-flash-chat", "hi", session_id=turn["session_id"]
        )
    assert conflict.value.code == "chat_session_conflict"
    with pytest.raises(InvalidRequest) as unsupported:
        sandbox_client.create_chat_completion("z-image", "hi")
    assert unsupported.value.code == "chat_model_not_supported"
    with pytest.raises(InvalidRequest) as attachment:
        sandbox_client.create_chat_completion(
            "claude-sonnet-4-6-chat", "look", attachments=[{"file_id": "file_x"}]
        )
    assert attachment.value.code == "chat_attachment_not_supported"


def test_it_streams_a_chat_turn(sandbox_client: RivyaClient) -> None:
    events = list(sandbox_client.stream_chat_completion("gpt-5-2-chat", "Tell me a story"))
    assert isinstance(events[0], SessionEvent)
    assert events[0].session_id.startswith("chs_")
    deltas = [event for event in events if isinstance(event, DeltaEvent)]
    assert deltas
    assert isinstance(events[-1], DoneEvent)
    streamed = "".join(event.text for event in deltas)
    assert events[-1].data["message"]["content"].strip() == streamed.strip()


@pytest.mark.parametrize("fault", ["reset-after-delta", "reset-before-delta", "malformed-sse"])
def test_a_broken_sandbox_stream_ends_with_an_error_event(db, fault: str) -> None:
    client = Recorder(issue_key(), fault).client
    events = list(client.stream_chat_completion("gpt-5-2-chat", "Tell me a story"))
    assert isinstance(events[-1], ErrorEvent)
    assert not any(isinstance(event, DoneEvent) for event in events)


def test_a_repeated_stream_with_the_same_key_replays_the_turn(
    sandbox_client: RivyaClient,
) -> None:
    first = list(sandbox_client.stream_chat_completion("gpt-5-2-chat", "hi", idempotency_key="t1"))
    again = list(sandbox_client.stream_chat_completion("gpt-5-2-chat", "hi", idempotency_key="t1"))
    assert isinstance(again[-1], DoneEvent)
    assert again[-1].data["id"] == first[-1].data["id"]
    assert len(sandbox_client.get_chat_session(first[0].session_id)["messages"]) == 2


def test_thoughts_arrive_as_thinking_events(sandbox_client: RivyaClient) -> None:
    stream = sandbox_client.stream_chat_completion(
        "claude-sonnet-4-6-chat", "Why is the sky blue?", enable_thoughts=True
    )
    events = list(stream)
    thoughts = [event for event in events if isinstance(event, ThinkingEvent)]
    assert thoughts
    assert thoughts[0].text
    assert isinstance(events[-1], DoneEvent)


def test_closing_a_stream_early_stops_the_turn_upstream(sandbox_client: RivyaClient) -> None:
    stream = sandbox_client.stream_chat_completion("gpt-5-2-chat", "A long story please")
    started = next(stream)
    first = next(stream)
    assert isinstance(started, SessionEvent)
    assert isinstance(first, DeltaEvent)
    stream.close()
    session = sandbox_client.get_chat_session(started.session_id)
    reply = session["messages"][-1]
    assert reply["role"] == "assistant"
    assert reply["content"] == first.text.rstrip()


def test_chat_sessions_page_and_iterate(sandbox_client: RivyaClient) -> None:
    for number in range(3):
        sandbox_client.create_chat_completion("gpt-5-2-chat", f"question {number}")
    page = sandbox_client.list_chat_sessions(limit=2)
    assert len(page["data"]) == 2
    assert page["has_more"]
    rest = sandbox_client.list_chat_sessions(limit=2, cursor=page["next_cursor"])
    assert len(rest["data"]) == 1
    assert not rest["has_more"]
    every = list(sandbox_client.iterate(sandbox_client.list_chat_sessions, limit=1))
    assert [s["id"] for s in every] == [s["id"] for s in page["data"] + rest["data"]]
    filtered = sandbox_client.list_chat_sessions(model="gemini-2-5-flash-chat")
    assert filtered["data"] == []


# --- Webhooks --------------------------------------------------------------------------------


def test_the_webhook_endpoint_lifecycle(sandbox_client: RivyaClient) -> None:
    created = sandbox_client.create_webhook("Production", PUBLIC_HOOK, EVENTS)
    endpoint_id = created["id"]
    assert created["signing_secret"].startswith("whsec_")
    assert "signing_secret" not in sandbox_client.get_webhook(endpoint_id)
    updated = sandbox_client.update_webhook(endpoint_id, name="Renamed", status="disabled")
    assert (updated["name"], updated["status"]) == ("Renamed", "disabled")
    sandbox_client.update_webhook(endpoint_id, status="active")
    rotated = sandbox_client.rotate_webhook_secret(endpoint_id)
    assert rotated["signing_secret"] != created["signing_secret"]
    delivery = sandbox_client.send_test_webhook(endpoint_id)
    assert delivery["endpoint_id"] == endpoint_id
    deliveries = sandbox_client.list_webhook_deliveries(endpoint_id, limit=10)
    assert [d["id"] for d in deliveries["data"]] == [delivery["id"]]
    events = sandbox_client.list_webhook_events(limit=10, event_type="generation.succeeded")
    assert events["data"][0]["id"] == delivery["event_id"]
    assert sandbox_client.list_webhooks()["data"][0]["id"] == endpoint_id
    assert sandbox_client.delete_webhook(endpoint_id)["status"] == "revoked"


def test_webhook_errors_map_to_invalid_request_and_not_found(
    sandbox_client: RivyaClient,
) -> None:
    with pytest.raises(InvalidRequest) as rejected:
        sandbox_client.create_webhook("Local", "https://127.0.0.1/hook", EVENTS)
    assert rejected.value.code == "webhook_url_rejected"
    with pytest.raises(NotFound):
        sandbox_client.get_webhook("whend_doesnotexist")


def test_webhook_lists_page_and_iterate(sandbox_client: RivyaClient) -> None:
    ids = [sandbox_client.create_webhook(f"hook {n}", PUBLIC_HOOK, EVENTS)["id"] for n in range(3)]
    walked = list(sandbox_client.iterate(sandbox_client.list_webhooks, limit=2))
    assert [endpoint["id"] for endpoint in walked] == ids[::-1]


# --- Authentication errors -------------------------------------------------------------------


def test_a_wrong_key_is_an_auth_error(db) -> None:
    client = Recorder("rvya_sk_" + "x" * 40).client
    with pytest.raises(AuthError) as caught:
        client.get_credits()
    assert (caught.value.status, caught.value.code) == (401, "api_key_invalid")
    assert caught.value.request_id in str(caught.value)
    with pytest.raises(AuthError) as missing:
        RivyaClient(SANDBOX_BASE_URL, None, session=in_process_session()).get_credits()
    assert missing.value.code == "api_key_missing"


def test_a_revoked_or_expired_key_is_an_auth_error(db) -> None:
    for status in ("revoked", "expired"):
        key = issue_key()
        SandboxKey.objects.filter(prefix=key[:12]).update(status=status)
        with pytest.raises(AuthError) as caught:
            Recorder(key).client.get_credits()
        assert caught.value.code == f"api_key_{status}"


def test_a_key_without_the_scope_is_an_auth_error(db) -> None:
    client = Recorder(issue_key(scopes=["credits:read"])).client
    assert client.get_credits()["current_credits"] == 1000
    with pytest.raises(AuthError) as caught:
        client.list_webhooks()
    assert (caught.value.status, caught.value.code) == (403, "api_scope_denied")


def test_the_kill_switch_is_unavailable(db) -> None:
    sandbox = SandboxSettings.load()
    sandbox.public_api_disabled = True
    sandbox.save()
    with pytest.raises(Unavailable) as caught:
        Recorder(issue_key()).client.get_credits()
    assert caught.value.code == "public_api_disabled"


# --- Retries through the sandbox's fault switch ----------------------------------------------


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_a_get_is_tried_three_times_on_server_errors(db, status: str) -> None:
    recorder = Recorder(issue_key(), f"status={status}")
    with pytest.raises(Unavailable) as caught:
        recorder.client.get_credits()
    assert caught.value.status == int(status)
    assert [answer.status_code for answer in recorder.answers] == [int(status)] * 3
    assert len(recorder.sleeps) == 2


def test_a_rate_limited_create_waits_retry_after_then_gives_up(db) -> None:
    recorder = Recorder(issue_key(), "status=429")
    with pytest.raises(RateLimited) as caught:
        recorder.client.create_generation("z-image", "a fox")
    assert caught.value.retry_after == 1
    assert recorder.sleeps == [1, 1]
    assert len(recorder.answers) == 3
    keys = {answer.request.headers["Idempotency-Key"] for answer in recorder.answers}
    assert len(keys) == 1


def test_plain_posts_are_not_retried(db) -> None:
    recorder = Recorder(issue_key(), "status=503")
    with pytest.raises(Unavailable):
        recorder.client.create_webhook("hook", PUBLIC_HOOK, EVENTS)
    assert len(recorder.answers) == 1
    assert recorder.sleeps == []


def test_the_client_mints_a_sandbox_key_through_the_control_api(db, settings):
    control = "http://testserver/sandbox/api/control"
    client = RivyaClient(
        control, settings.RIVYA_SANDBOX_CONTROL_TOKEN, session=in_process_session()
    )
    minted = client.create_sandbox_key(name="Console", credits=5, scopes=["generations:create"])
    key = SandboxKey.objects.get(prefix=minted["key"][:12])
    assert key.account.credits == 5 and key.scopes == ["generations:create"]


def test_an_unknown_chat_option_is_refused_before_sending(sandbox_client: RivyaClient) -> None:
    with pytest.raises(TypeError, match="unexpected chat turn options: temperature"):
        sandbox_client.create_chat_completion("gpt-5-2-chat", "hi", temperature=0.2)

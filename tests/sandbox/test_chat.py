"""Chat completions, SSE streaming, faults mid-stream, sessions (§10)."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from rivya_dashboard.sandbox import chat
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.media import prompt_png, prompt_wav
from rivya_dashboard.sandbox.models import Account, ChatMessage, ChatSession
from tests.sandbox.conftest import Api, error_code

TURN = {"model": "gpt-5-2-chat", "message": "Write a concise launch plan"}


@pytest.fixture(autouse=True)
def no_token_delay(sandbox_settings):
    sandbox_settings.token_delay_ms = 0
    sandbox_settings.save()


def events(response) -> list[tuple[str, object]]:
    """Parse an SSE body into (event, data) pairs; comments come back as ('comment', text)."""
    found = []
    for block in b"".join(response.streaming_content).decode().split("\n\n"):
        if not block:
            continue
        if block.startswith(":"):
            found.append(("comment", block[1:].strip()))
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_a_turn_returns_the_documented_shape_and_settles_credits(api):
    response = api.post("/chat/completions", TURN)
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"chatcmpl_[0-9a-z]{24}", body["id"])
    assert body["object"] == "chat.completion"
    assert re.fullmatch(r"chs_[0-9a-z]{24}", body["session_id"])
    assert body["model"] == "gpt-5-2-chat"
    assert body["message"]["role"] == "assistant"
    assert "Write a concise launch plan" in body["message"]["content"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert body["credits"] == {"reserved": 3, "final": 1}
    assert Account.objects.get().credits == 999


def test_the_reply_is_deterministic(api):
    first = api.post("/chat/completions", TURN).json()["message"]["content"]
    second = Api(issue_key()).post("/chat/completions", TURN).json()["message"]["content"]
    assert first == second


def test_a_session_continues_and_is_listed_with_its_messages(api):
    first = api.post("/chat/completions", TURN).json()
    second = api.post(
        "/chat/completions", {**TURN, "message": "And a budget?", "session_id": first["session_id"]}
    ).json()
    assert second["session_id"] == first["session_id"]
    assert "turn 2" in second["message"]["content"]
    detail = api.get(f"/chat/sessions/{first['session_id']}").json()
    assert detail["object"] == "chat.session"
    assert detail["message_count"] == 4
    assert detail["title"] == "Write a concise launch plan"
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant", "user", "assistant"]
    assert detail["messages"][1]["credits"] == first["credits"]
    assert "usage" not in detail["messages"][0]
    listed = api.get("/chat/sessions").json()
    assert [s["id"] for s in listed["data"]] == [first["session_id"]]
    assert listed["has_more"] is False and listed["next_cursor"] is None


def test_sessions_of_other_accounts_are_hidden(api):
    session_id = api.post("/chat/completions", TURN).json()["session_id"]
    other = Api(issue_key())
    assert other.get("/chat/sessions").json()["data"] == []
    response = other.get(f"/chat/sessions/{session_id}")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_continuing_a_session_of_another_model_or_account_is_a_conflict(api):
    session_id = api.post("/chat/completions", TURN).json()["session_id"]
    response = api.post(
        "/chat/completions", {**TURN, "model": "gemini-2-5-flash-chat", "session_id": session_id}
    )
    assert response.status_code == 409
    assert error_code(response) == "chat_session_conflict"
    response = Api(issue_key()).post("/chat/completions", {**TURN, "session_id": session_id})
    assert response.status_code == 409
    response = api.post("/chat/completions", {**TURN, "session_id": "chs_unknown"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (
            {"model": "z-image", "message": "hi"},
            400,
            "chat_model_not_supported",
            "not a chat model",
        ),
        ({"model": "nope", "message": "hi"}, 400, "chat_model_not_supported", "'nope'"),
        ({"model": "gpt-5-2-chat"}, 400, "validation_failed", "message: is required"),
        (
            {"model": "gpt-5-2-chat", "message": ""},
            400,
            "validation_failed",
            "message: must be at least 1",
        ),
        (
            {"model": "gpt-5-2-chat", "message": "x" * 20001},
            400,
            "validation_failed",
            "at most 20000",
        ),
        (
            {"model": "gpt-5-2-chat", "messages": [{"role": "user"}], "message": "x"},
            400,
            "validation_failed",
            "messages: is not a known field",
        ),
        (
            {**TURN, "reasoning_effort": "extreme"},
            400,
            "validation_failed",
            "reasoning_effort: must be one of",
        ),
        (
            {**TURN, "enable_web_search": "yes"},
            400,
            "validation_failed",
            "enable_web_search: must be of type boolean",
        ),
        (
            {**TURN, "attachments": [{"url": "https://x/y.png"}]},
            400,
            "validation_failed",
            "attachments[0].file_id: is required",
        ),
        (
            {**TURN, "attachments": [{"file_id": "file_nothing"}]},
            400,
            "validation_failed",
            "no current upload",
        ),
        (
            {**TURN, "model": "claude-sonnet-4-6-chat", "attachments": [{"file_id": "file_x"}]},
            400,
            "chat_attachment_not_supported",
            "does not take attachments",
        ),
    ],
)
def test_invalid_turns_are_refused_before_anything_is_stored(api, body, status, code, message):
    response = api.post("/chat/completions", body)
    assert response.status_code == status, response.content
    assert error_code(response) == code
    assert message in response.json()["error"]["message"]
    assert ChatSession.objects.count() == 0
    assert Account.objects.get().credits == 1000


def test_attachments_must_be_image_uploads(api):
    image = api.upload(
        {"file": SimpleUploadedFile("a.png", prompt_png("x")), "kind": "image"}
    ).json()
    audio = api.upload(
        {"file": SimpleUploadedFile("a.wav", prompt_wav("x")), "kind": "audio"}
    ).json()
    response = api.post("/chat/completions", {**TURN, "attachments": [{"file_id": audio["id"]}]})
    assert response.status_code == 400
    assert error_code(response) == "chat_attachment_not_supported"
    response = api.post("/chat/completions", {**TURN, "attachments": [{"file_id": image["id"]}]})
    assert response.status_code == 200
    assert "1 image attachment" in response.json()["message"]["content"]


def test_a_turn_that_fails_after_reserving_leaves_nothing_behind(api, raw_key, monkeypatch):
    def broken(self, content):
        raise RuntimeError("boom")

    monkeypatch.setattr(chat.Turn, "complete", broken)
    response = api.post("/chat/completions", TURN)
    assert response.status_code == 500
    assert Api(raw_key).get("/credits").json() == {"current_credits": 1000}
    assert not ChatSession.objects.exists()
    assert not ChatMessage.objects.exists()


def test_a_short_wallet_gets_402(db):
    response = Api(issue_key(credits=2)).post("/chat/completions", TURN)
    assert response.status_code == 402
    assert error_code(response) == "insufficient_credits"
    assert ChatSession.objects.count() == 0


def test_the_stream_sends_session_deltas_and_done(api):
    response = api.post("/chat/completions/stream", TURN)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    found = events(response)
    names = [name for name, _ in found]
    assert names[0] == "session" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"} and len(names) > 5
    start, done = found[0][1], found[-1][1]
    assert start["object"] == "chat.completion.start"
    assert start["id"] == done["id"] and start["session_id"] == done["session_id"]
    text = "".join(data["delta"] for name, data in found if name == "delta")
    assert text.rstrip() == done["message"]["content"]
    assert done["object"] == "chat.completion"
    assert ChatMessage.objects.filter(role="assistant").get().content == done["message"]["content"]


def test_the_stream_sends_thinking_when_thoughts_are_enabled_and_supported(api):
    body = {**TURN, "model": "claude-sonnet-4-6-chat", "enable_thoughts": True}
    names = [name for name, _ in events(api.post("/chat/completions/stream", body))]
    assert names[:2] == ["session", "thinking"]
    ignored = [
        name
        for name, _ in events(
            api.post("/chat/completions/stream", {**TURN, "enable_thoughts": True})
        )
    ]
    assert "thinking" not in ignored


def test_errors_before_the_stream_starts_are_json(api):
    response = api.post("/chat/completions/stream", {**TURN, "model": "z-image"})
    assert response.status_code == 400
    assert error_code(response) == "chat_model_not_supported"


# Transactional: closing a response fires request_finished, which (as under a real server) may
# close the database connection; the test then reads committed rows on a fresh one.
@pytest.mark.django_db(transaction=True)
def test_a_client_that_disconnects_stops_the_generator(api):
    response = api.post("/chat/completions/stream", TURN)
    chunks = iter(response.streaming_content)
    next(chunks)
    next(chunks)
    next(chunks)
    response.close()
    with pytest.raises(StopIteration):
        next(chunks)
    reply = ChatMessage.objects.get(role="assistant")
    assert 0 < len(reply.content) < len(chat.reply_text(chat.catalogue()["gpt-5-2-chat"], TURN, 1))
    assert reply.credits == {"reserved": 3, "final": 1}
    assert Account.objects.get().credits == 999


@pytest.mark.django_db(transaction=True)  # see the disconnect test above
def test_a_client_that_leaves_before_the_first_event_still_settles(api):
    response = api.post("/chat/completions/stream", TURN)
    response.close()
    reply = ChatMessage.objects.get(role="assistant")
    assert reply.content == ""
    assert reply.credits == {"reserved": 3, "final": 1}
    assert Account.objects.get().credits == 999


def test_heartbeats_keep_a_slow_stream_alive(api, monkeypatch):
    monkeypatch.setattr(chat.choices, "HEARTBEAT_SECONDS", 0.01)
    response = api.post(
        "/chat/completions/stream", TURN, headers={"X-Sandbox-Fault": "slow-drip=25"}
    )
    found = events(response)
    assert ("comment", "ping") in found
    assert found[-1][0] == "done"


@pytest.mark.parametrize(("fault", "deltas"), [("reset-before-delta", 0), ("reset-after-delta", 1)])
def test_a_reset_fault_drops_the_stream(api, fault, deltas):
    response = api.post("/chat/completions/stream", TURN, headers={"X-Sandbox-Fault": fault})
    received = []
    with pytest.raises(ConnectionResetError):
        for chunk in response.streaming_content:
            received.append(chunk)
    assert sum(chunk.startswith(b"event: delta") for chunk in received) == deltas
    assert not any(chunk.startswith(b"event: done") for chunk in received)


def test_a_malformed_frame_fault_sends_one_bad_frame(api):
    response = api.post(
        "/chat/completions/stream", TURN, headers={"X-Sandbox-Fault": "malformed-sse"}
    )
    blocks = b"".join(response.streaming_content).decode().split("\n\n")
    bad = [
        block for block in blocks if block.startswith("event: delta") and not block.endswith("}")
    ]
    assert len(bad) == 1
    assert blocks[-2].startswith("event: done")


def test_an_unexpected_failure_mid_stream_ends_with_an_error_event(api, monkeypatch):
    def broken(text):
        yield "first "
        raise RuntimeError("boom")

    monkeypatch.setattr(chat, "deltas", broken)
    found = events(api.post("/chat/completions/stream", TURN))
    assert [name for name, _ in found] == ["session", "delta", "error"]
    assert found[-1][1]["error"]["code"] == "internal_error"

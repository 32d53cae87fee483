"""Chat API (§10): one turn per request, non-streaming or SSE; sessions list and detail.

Everything that can be refused (auth, validation, credits) is checked before a stream starts, so
those errors are plain JSON responses. Once streaming, the turn ends with exactly one `done` or
`error` event, or stops when the client goes away: the generator's close() (GeneratorExit)
keeps the partial reply and settles credits for what was produced.
"""

import json
import logging
import math
import time
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

from rivya_dashboard.sandbox import choices, credits, idempotency
from rivya_dashboard.sandbox.api import (
    EVENT_STREAM,
    LIST_QUERY,
    Call,
    closed_object,
    component,
    endpoint,
    paginate,
    timestamp,
)
from rivya_dashboard.sandbox.catalogue import catalogue
from rivya_dashboard.sandbox.errors import ApiError, not_found, validation_failed
from rivya_dashboard.sandbox.ids import public_id
from rivya_dashboard.sandbox.models import ChatMessage, ChatSession, SandboxSettings, UploadedFile

logger = logging.getLogger(__name__)

REASONING_EFFORTS = ["default", "minimal", "low", "medium", "high", "xhigh"]
WORDS_PER_DELTA = 3

CHAT_REQUEST = component(
    "ChatCompletionRequest",
    {
        "type": "object",
        "properties": {
            "model": {"type": "string", "minLength": 1, "maxLength": 100},
            "session_id": {"type": "string", "minLength": 1, "maxLength": 100},
            "message": {
                "type": "string",
                "minLength": 1,
                "maxLength": choices.MAX_CHAT_MESSAGE_LENGTH,
            },
            "attachments": {
                "type": "array",
                "maxItems": 10,
                "items": {
                    "type": "object",
                    "properties": {"file_id": {"type": "string", "minLength": 1}},
                    "required": ["file_id"],
                    "additionalProperties": False,
                },
            },
            "enable_web_search": {"type": "boolean"},
            "enable_thoughts": {"type": "boolean"},
            "reasoning_effort": {"type": "string", "enum": REASONING_EFFORTS},
            "client_request_id": {
                "type": "string",
                "maxLength": choices.MAX_CLIENT_REQUEST_ID_LENGTH,
            },
        },
        "required": ["model", "message"],
        "additionalProperties": False,
        "examples": [{"model": "gpt-5-2-chat", "message": "Name three lighthouses."}],
    },
)
# One Server-Sent Event of the stream, as OpenAPI 3.1 describes each event of text/event-stream.
STREAM_EVENT = component(
    "ChatStreamEvent",
    {
        "type": "object",
        "properties": {
            "event": {"type": "string", "enum": ["session", "thinking", "delta", "done", "error"]},
            "data": {"type": "string", "contentMediaType": "application/json"},
        },
        "required": ["event", "data"],
    },
)
USAGE = {
    "type": "object",
    "properties": {
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
    },
    "required": ["input_tokens", "output_tokens", "total_tokens"],
}
CREDITS = {
    "type": "object",
    "properties": {"reserved": {"type": "integer"}, "final": {"type": "integer"}},
    "required": ["reserved", "final"],
}
COMPLETION = component(
    "ChatCompletion",
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "chat.completion"},
            "session_id": {"type": "string"},
            "model": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "message": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "role": {"const": "assistant"},
                    "content": {"type": "string"},
                },
                "required": ["id", "role", "content"],
            },
            "usage": USAGE,
            "credits": CREDITS,
        },
        "required": ["id", "object", "session_id", "model", "message", "usage", "credits"],
    },
)
SESSION_PROPERTIES = {
    "id": {"type": "string"},
    "object": {"const": "chat.session"},
    "model": {"type": "string"},
    "title": {"type": "string"},
    "message_count": {"type": "integer"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
}
SESSION = closed_object("ChatSession", SESSION_PROPERTIES)
MESSAGE = component(
    "ChatMessage",
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "role": {"type": "string", "enum": ["user", "assistant"]},
            "content": {"type": "string"},
            "attachments": {"type": "array", "items": {"type": "object"}},
            "created_at": {"type": "string", "format": "date-time"},
            "usage": USAGE,
            "credits": CREDITS,
        },
        "required": ["id", "role", "content", "attachments", "created_at"],
    },
)
SESSION_DETAIL = component(
    "ChatSessionDetail",
    {
        "type": "object",
        "properties": {**SESSION_PROPERTIES, "messages": {"type": "array", "items": MESSAGE}},
        "required": [*SESSION_PROPERTIES, "messages"],
    },
)
SESSION_LIST = component(
    "ChatSessionList",
    {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": SESSION},
            "has_more": {"type": "boolean"},
            "next_cursor": {"type": ["string", "null"]},
        },
        "required": ["object", "data", "has_more", "next_cursor"],
    },
)


class SimulatedReset(ConnectionResetError):
    """Raised inside the stream to make the server drop the connection (fault injection)."""


def chat_model(body: dict) -> dict:
    row = catalogue().get(body["model"])
    if row is None or row["category"] != "chat":
        raise ApiError(
            400,
            "chat_model_not_supported",
            f"model: {body['model']!r} is not a chat model; see GET /models?category=chat",
        )
    if row["api_status"] != "available":
        raise ApiError(400, "chat_model_not_supported", f"model: {row['id']} is not available")
    return row


def find_session(call: Call, row: dict, session_id: str | None) -> ChatSession | None:
    if session_id is None:
        return None
    session = ChatSession.objects.filter(public_id=session_id).first()
    if session is None:
        raise not_found("chat session", session_id)
    if session.account_id != call.account.pk or session.model != row["id"]:
        raise ApiError(
            409,
            "chat_session_conflict",
            "session_id: this session belongs to another account or model; "
            "omit session_id to start a new session.",
        )
    return session


def check_attachments(call: Call, row: dict, attachments: list[dict]) -> None:
    if attachments and not row["chat_capabilities"]["image_attachments"]:
        raise ApiError(
            400,
            "chat_attachment_not_supported",
            f"attachments: {row['id']} does not take attachments.",
        )
    for index, attachment in enumerate(attachments):
        upload = UploadedFile.objects.filter(
            account=call.account, public_id=attachment["file_id"], expires_at__gt=timezone.now()
        ).first()
        if upload is None:
            raise validation_failed(f"attachments[{index}].file_id: no current upload has this id")
        if upload.kind != "image":
            raise ApiError(
                400,
                "chat_attachment_not_supported",
                f"attachments[{index}]: only images can be attached; upload one via POST /files.",
            )


def reply_text(row: dict, body: dict, turn: int) -> str:
    """A deterministic, readable answer, so tests and demos can predict it."""
    message = " ".join(body["message"].split())
    quoted = message if len(message) <= 80 else message[:77] + "..."
    parts = [
        f"This is the Rivya sandbox answering as {row['display_name']} (turn {turn}).",
        f'You wrote: "{quoted}", {len(message.split())} words in all.',
        "A real model would reply here; the sandbox streams this text a few words at a time",
        "so that streaming, stopping and credit settlement can be tried without an account.",
    ]
    if body.get("attachments"):
        parts.append(f"It received {len(body['attachments'])} image attachment(s).")
    if body.get("enable_web_search") and row["chat_capabilities"]["web_search"]:
        parts.append("Web search was enabled for this turn.")
    return " ".join(parts)


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / choices.CHARS_PER_TOKEN))


def settle(reserved: int, total_tokens: int) -> int:
    return min(reserved, max(1, math.ceil(total_tokens / choices.TOKENS_PER_CREDIT)))


class Turn:
    """One user message and its assistant reply, from reservation to settlement."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.row = chat_model(call.body)
        self.session = find_session(call, self.row, call.body.get("session_id"))
        self.attachments = call.body.get("attachments", [])
        check_attachments(call, self.row, self.attachments)
        self.reserved = self.row["base_credits"]
        self.completion_id = public_id(choices.COMPLETION_PREFIX)
        self.created_at = timezone.now()
        self.message_id = public_id(choices.MESSAGE_PREFIX)

    def begin(self) -> None:
        """Reserve credits and store the user's message (402 leaves nothing behind)."""
        body = self.call.body
        with transaction.atomic():
            credits.reserve(self.call.account, self.reserved)
            if self.session is None:
                self.session = ChatSession.objects.create(
                    public_id=public_id(choices.SESSION_PREFIX),
                    account=self.call.account,
                    model=self.row["id"],
                    title=" ".join(body["message"].split())[: choices.CHAT_TITLE_LENGTH],
                )
            ChatMessage.objects.create(
                public_id=public_id(choices.MESSAGE_PREFIX),
                session=self.session,
                role=ChatMessage.Role.USER,
                content=body["message"],
                attachments=self.attachments,
            )
        self.history_chars = sum(len(m.content) for m in self.session.messages.all())
        turn = self.session.messages.filter(role=ChatMessage.Role.USER).count()
        self.reply = reply_text(self.row, body, turn)

    def complete(self, content: str) -> dict:
        """Store the (possibly partial) reply, settle credits and return the §10.4 object."""
        usage = {
            "input_tokens": max(1, math.ceil(self.history_chars / choices.CHARS_PER_TOKEN)),
            "output_tokens": tokens(content),
        }
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        final = settle(self.reserved, usage["total_tokens"])
        spent = {"reserved": self.reserved, "final": final}
        with transaction.atomic():
            credits.refund(self.call.account.pk, self.reserved - final)
            ChatMessage.objects.create(
                public_id=self.message_id,
                session=self.session,
                role=ChatMessage.Role.ASSISTANT,
                content=content,
                usage=usage,
                credits=spent,
            )
            ChatSession.objects.filter(pk=self.session.pk).update(updated_at=timezone.now())
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "session_id": self.session.public_id,
            "model": self.row["id"],
            "created_at": timestamp(self.created_at),
            "message": {"id": self.message_id, "role": "assistant", "content": content},
            "usage": usage,
            "credits": spent,
        }

    def end_early(self, content: str) -> None:
        """Keep what was produced, settle for it, and free the Idempotency-Key for a retry."""
        self.complete(content)
        if self.call.idempotency is not None:
            idempotency.release(self.call.idempotency)

    def start_event(self) -> dict:
        return {
            "id": self.completion_id,
            "object": "chat.completion.start",
            "session_id": self.session.public_id,
            "model": self.row["id"],
            "created_at": timestamp(self.created_at),
        }


@endpoint(
    "POST",
    "/chat/completions",
    operation_id="createChatCompletion",
    summary="One complete (non-streaming) assistant turn",
    scope="chat:create",
    body=CHAT_REQUEST,
    response=COMPLETION,
    errors=(400, 402, 404, 409),
    idempotent=True,
)
def create_completion(call: Call) -> dict:
    turn = Turn(call)
    # One transaction: a failure after the reservation leaves neither a charge nor a lone message.
    with transaction.atomic():
        turn.begin()
        return turn.complete(turn.reply)


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def deltas(text: str) -> list[str]:
    words = text.split(" ")
    return [
        " ".join(words[index : index + WORDS_PER_DELTA]) + " "
        for index in range(0, len(words), WORDS_PER_DELTA)
    ]


def pause(seconds: float) -> Iterator[bytes]:
    """Wait, sending `: ping` heartbeats so proxies keep a slow stream open."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, choices.HEARTBEAT_SECONDS))
        if deadline - time.monotonic() > 0:
            yield b": ping\n\n"


def stream_events(turn: Turn, faults: dict, delay: float) -> Iterator[bytes]:
    produced: list[str] = []
    finished = False
    try:
        yield sse("session", turn.start_event())
        if turn.call.body.get("enable_thoughts") and turn.row["chat_capabilities"]["thoughts"]:
            yield sse("thinking", {"id": turn.completion_id, "delta": "Planning a short answer. "})
        if faults.get("reset-before-delta"):
            raise SimulatedReset("sandbox fault: reset before the first delta")
        for index, piece in enumerate(deltas(turn.reply)):
            yield from pause(delay)
            produced.append(piece)
            yield sse("delta", {"id": turn.completion_id, "delta": piece})
            if index == 0 and faults.get("reset-after-delta"):
                raise SimulatedReset("sandbox fault: reset after the first delta")
            if index == 0 and faults.get("malformed-sse"):
                yield b'event: delta\ndata: {"id": "' + turn.completion_id.encode() + b'", "del\n\n'
        done = turn.complete("".join(produced).rstrip())
        finished = True
        if turn.call.idempotency is not None:
            idempotency.store(turn.call.idempotency, 200, json.dumps(done))
        yield sse("done", done)
    except SimulatedReset:
        raise
    except Exception:
        logger.exception("Sandbox chat stream %s failed", turn.call.request_id)
        error = {"code": "internal_error", "message": "The sandbox failed mid-stream."}
        yield sse("error", {"error": {**error, "requestId": turn.call.request_id}})
    finally:
        if not finished:
            turn.end_early("".join(produced).rstrip())


class TurnStream:
    """The events of one streamed turn. A generator closed before its first step runs no code,
    so closing this before the first event (the client left at once) still settles the turn."""

    def __init__(self, turn: Turn, events: Iterator[bytes]) -> None:
        self.turn = turn
        self.events = events
        self.started = False

    def __iter__(self) -> "TurnStream":
        return self

    def __next__(self) -> bytes:
        self.started = True
        return next(self.events)

    def close(self) -> None:
        if not self.started:
            self.started = True
            self.turn.end_early("")
        self.events.close()


def replay_stream(call: Call, record: Any) -> HttpResponse:
    done = json.loads(record.response_body)
    start = {key: done[key] for key in ("id", "session_id", "model", "created_at")}

    def events() -> Iterator[bytes]:
        yield sse("session", {**start, "object": "chat.completion.start"})
        yield sse("delta", {"id": done["id"], "delta": done["message"]["content"]})
        yield sse("done", done)

    return event_stream(events())


def event_stream(events: Iterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type=EVENT_STREAM)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@endpoint(
    "POST",
    "/chat/completions/stream",
    operation_id="streamChatCompletion",
    summary="The same turn streamed as Server-Sent Events (session, delta..., done | error)",
    scope="chat:create",
    body=CHAT_REQUEST,
    response=STREAM_EVENT,
    response_content=EVENT_STREAM,
    errors=(400, 402, 404, 409),
    idempotent=True,
    replay=replay_stream,
)
def stream_completion(call: Call) -> HttpResponse:
    turn = Turn(call)
    turn.begin()
    faults = call.faults
    delay_ms = faults.get("slow-drip", SandboxSettings.load().token_delay_ms)
    return event_stream(TurnStream(turn, stream_events(turn, faults, delay_ms / 1000)))


def serialize_session(session: ChatSession, message_count: int) -> dict:
    return {
        "id": session.public_id,
        "object": "chat.session",
        "model": session.model,
        "title": session.title,
        "message_count": message_count,
        "created_at": timestamp(session.created_at),
        "updated_at": timestamp(session.updated_at),
    }


def serialize_message(message: ChatMessage) -> dict:
    found = {
        "id": message.public_id,
        "role": message.role,
        "content": message.content,
        "attachments": message.attachments,
        "created_at": timestamp(message.created_at),
    }
    if message.role == ChatMessage.Role.ASSISTANT:
        found.update(usage=message.usage, credits=message.credits)
    return found


SESSIONS_QUERY = (
    *LIST_QUERY,
    {"name": "model", "in": "query", "required": False, "schema": {"type": "string"}},
)


@endpoint(
    "GET",
    "/chat/sessions",
    operation_id="listChatSessions",
    summary="API-created chat sessions of the key's account, newest first",
    scope="chat:read",
    query=SESSIONS_QUERY,
    response=SESSION_LIST,
)
def list_sessions(call: Call) -> dict:
    sessions = ChatSession.objects.filter(account=call.account).annotate(count=Count("messages"))
    if call.query.get("model"):
        sessions = sessions.filter(model=call.query["model"])
    return paginate(call, sessions, lambda session: serialize_session(session, session.count))


@endpoint(
    "GET",
    "/chat/sessions/{sessionId}",
    operation_id="getChatSession",
    summary="A chat session with its messages in order",
    scope="chat:read",
    response=SESSION_DETAIL,
    errors=(404,),
)
def get_session(call: Call, sessionId: str) -> dict:
    session = ChatSession.objects.filter(account=call.account, public_id=sessionId).first()
    if session is None:
        raise not_found("chat session", sessionId)
    messages = list(session.messages.all())
    return {
        **serialize_session(session, len(messages)),
        "messages": [serialize_message(message) for message in messages],
    }

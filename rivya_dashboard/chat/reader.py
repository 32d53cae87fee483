"""The background read of one reply from Rivya, started by the turn's POST and tied to no browser.

It ends only at the upstream's final event, an error, or Stop. Every event goes to the turn's
LiveTurn (relay.py), which shows it to streams in this process at once and saves it for the rest.
"""

import logging
import threading
import time
from decimal import Decimal

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from rivya_dashboard import outbound
from rivya_dashboard.chat.models import ChatEvent, ChatSession, ChatTurn
from rivya_dashboard.chat.relay import LIVE, Frame, LiveTurn, hand_back_connection
from rivya_dashboard.rivya.client import (
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    RivyaClient,
    SessionEvent,
    StreamEvent,
    ThinkingEvent,
)
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.models import LedgerEntry

log = logging.getLogger(__name__)
Status = ChatTurn.Status
Kind = ChatEvent.Kind

# How long a stopped reply's charge is looked for in its session before the reservation stands.
SETTLE_WAIT_SECONDS = 3.0
SETTLE_POLL_SECONDS = 0.1

_reading = threading.local()


def _remember_upstream(response: outbound.Response, *args: object, **kwargs: object) -> None:
    """Response hook: hands the reply's upstream response to its LiveTurn, so Stop can cut it."""
    live = getattr(_reading, "live", None)
    if live is not None:
        live.upstream = response


def watch_responses(session: outbound.Session) -> None:
    hooks = session.hooks["response"]
    if _remember_upstream not in hooks:
        hooks.append(_remember_upstream)


def start_reading(turn: ChatTurn, reserve: int | None, entry: LedgerEntry) -> LiveTurn:
    """`turn` comes with its session, key and member loaded, and `entry` is its open ledger row
    (the grant was checked when it was written); the reader only reads them."""
    live = LIVE.add(turn.pk)
    thread = threading.Thread(
        target=read_reply,
        args=(turn, live, reserve, entry),
        name=f"chat-turn-{turn.pk}",
        daemon=True,
    )
    thread.start()
    return live


def read_reply(turn: ChatTurn, live: LiveTurn, reserve: int | None, entry: LedgerEntry) -> None:
    _reading.live = live
    reader = ReplyReader(turn, live, reserve, entry)
    try:
        reader.run()
    except Exception:
        log.exception("reading the reply of chat turn %s failed", turn.pk)
        if not live.is_closing:
            message = _("The console failed while reading this reply. The text so far is kept.")
            reader.close(Kind.ERROR, Status.FAILED, message, None, error_message=message)
    finally:
        _reading.live = None
        connection.close()
        live.settled.set()


class ReplyReader:
    def __init__(
        self, turn: ChatTurn, live: LiveTurn, reserve: int | None, entry: LedgerEntry
    ) -> None:
        self.turn = turn
        self.live = live
        self.reserve = reserve
        self.seq = 0
        self.reply: list[str] = []
        self.thinking: list[str] = []
        self.began = time.monotonic()
        self.ttft_ms: int | None = None
        self.entry = entry
        self.remote_session_id = turn.session.remote_id
        self.client: RivyaClient | None = None

    def run(self) -> None:
        key = self.turn.session.api_key
        try:
            with ledger.settling(self.entry, key):
                client = key.client()
                self.client = client
                watch_responses(client.session)
                self.relay(client)
        except RivyaError as error:
            # The client raises only before the stream starts; later errors arrive as events.
            self.refuse(error.message, code=error.code or "", request_id=error.request_id or "")

    def relay(self, client: RivyaClient) -> None:
        turn = self.turn
        stream = client.stream_chat_completion(
            turn.model,
            turn.message,
            session_id=self.remote_session_id or None,
            attachments=[{"file_id": item["file_id"]} for item in turn.attachments] or None,
            enable_web_search=turn.enable_web_search or None,
            reasoning_effort=turn.reasoning_effort or None,
            enable_thoughts=turn.enable_thoughts or None,
            client_request_id=f"console-turn-{turn.pk}",
            idempotency_key=turn.idempotency_key,
        )
        self.live.calling.set()
        try:
            for event in stream:
                if self.live.stop.is_set() and isinstance(event, ErrorEvent):
                    break  # the error is our own cut
                self.handle(event)
                if self.live.is_closing or self.live.stop.is_set():
                    break
        finally:
            stream.close()
        if not self.live.is_closing:
            self.stopped(client)

    def handle(self, event: StreamEvent) -> None:
        if isinstance(event, SessionEvent):
            self.opened(event)
        elif isinstance(event, DeltaEvent) and event.text:
            self.reply.append(event.text)
            if self.ttft_ms is None:
                self.ttft_ms = self.elapsed_ms()
                self.add(Kind.DELTA, event.text, status=Status.STREAMING, ttft_ms=self.ttft_ms)
            else:
                self.add(Kind.DELTA, event.text)
        elif isinstance(event, ThinkingEvent) and event.text:
            self.thinking.append(event.text)
            self.add(Kind.THINKING, event.text, status=Status.STREAMING)
        elif isinstance(event, DoneEvent):
            self.done(event.data)
        elif isinstance(event, ErrorEvent):
            error = event.error
            self.entry.error_code = (error.code or "stream_error")[:64]
            self.close(Kind.ERROR, Status.FAILED, error.message, error)

    def opened(self, event: SessionEvent) -> None:
        remote = event.session_id or ""
        if remote and remote != self.remote_session_id:
            self.remote_session_id = remote
            ChatSession.objects.filter(pk=self.turn.session_id).update(remote_id=remote)
        # Still waiting: the status turns to streaming with the first words, not at acceptance.
        request_id = (self.client.last_request_id or "") if self.client else ""
        self.entry.request_id = request_id[:100]
        self.live.update(
            completion_id=str(event.data.get("id") or "")[:64], request_id=request_id[:64]
        )
        self.live.started.set()
        # The stream may run for minutes and needs the database again only at its end.
        hand_back_connection()

    def add(self, kind: str, text: str, **fields: object) -> None:
        self.seq += 1
        first = self.seq == 1
        self.live.publish(Frame(self.seq, kind, text), **fields)
        if first:
            # Saved at the saver's next tick, like the rest: a write now would take the GIL just
            # as this process's streams relay the first words, which are what a person waits for.
            self.live.started.set()

    def done(self, data: dict) -> None:
        message = data.get("message") if isinstance(data.get("message"), dict) else {}
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        credits = data.get("credits") if isinstance(data.get("credits"), dict) else {}
        if not self.reply and message.get("content"):
            self.reply.append(str(message["content"]))
        fields = {
            "message_id": str(message.get("id") or "")[:64],
            "input_tokens": _count(usage.get("input_tokens")),
            "output_tokens": _count(usage.get("output_tokens")),
            "credits_reserved": _count(credits.get("reserved")),
            "credits_final": _count(credits.get("final")),
        }
        self.entry.credits_reserved = _decimal(credits.get("reserved"), self.reserve)
        self.entry.credits_final = _decimal(credits.get("final"), None)
        self.close(Kind.DONE, Status.DONE, "", None, **fields)

    def stopped(self, client: RivyaClient) -> None:
        """Shown as stopped at once; the charge is read back afterwards, as no final event
        tells it: Rivya settles a stopped reply from the tokens it used."""
        message = _("Stopped. The reply so far is kept.")
        self.close(Kind.STOPPED, Status.STOPPED, message, None, credits_reserved=self.reserve)
        charged = self.charged_after_stop(client)
        self.entry.error_code = "stopped"
        self.entry.credits_final = _decimal(charged, None)
        if charged is not None:
            ChatTurn.objects.filter(pk=self.turn.pk).update(credits_final=charged)

    def charged_after_stop(self, client: RivyaClient) -> int | None:
        """The stopped reply's credits from the session, once Rivya has stored the reply (the
        session's last message is then the assistant's)."""
        if not self.remote_session_id:
            return None
        deadline = time.monotonic() + SETTLE_WAIT_SECONDS
        while True:
            try:
                detail = client.get_chat_session(self.remote_session_id)
            except RivyaError:
                return None
            messages = detail.get("messages") if isinstance(detail.get("messages"), list) else []
            last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
            credits = last.get("credits")
            if last.get("role") == "assistant" and isinstance(credits, dict):
                return _count(credits.get("final"))
            if time.monotonic() >= deadline:
                return None
            time.sleep(SETTLE_POLL_SECONDS)

    def refuse(self, message: str, *, code: str = "", request_id: str = "") -> None:
        """Refused before a reply began: the message goes back to the input area."""
        if self.turn.replaces_id is not None:
            ChatTurn.objects.filter(pk=self.turn.replaces_id).update(superseded=False)
        self.seq += 1
        self.live.close_with(
            Frame(self.seq, Kind.ERROR, message),
            status=Status.REJECTED,
            error_code=code[:64],
            error_message=message,
            request_id=request_id[:64],
            finished_at=timezone.now(),
        )

    def close(
        self, kind: str, status: str, text: str, error: RivyaError | None, **fields: object
    ) -> None:
        self.seq += 1
        if error is not None:
            fields.update(
                error_code=(error.code or "")[:64],
                error_message=error.message,
                request_id=(error.request_id or "")[:64],
            )
        self.live.close_with(
            Frame(self.seq, kind, text),
            status=status,
            reply="".join(self.reply),
            thinking="".join(self.thinking),
            duration_ms=self.elapsed_ms(),
            finished_at=timezone.now(),
            **fields,
        )

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.began) * 1000)


def _count(value: object) -> int | None:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return None


def _decimal(value: object, default: int | None) -> Decimal | None:
    counted = _count(value)
    if counted is None:
        return None if default is None else Decimal(default)
    return Decimal(counted)

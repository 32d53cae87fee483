"""The chat page against the in-process sandbox: send, stream, resume, Stop, errors, export,
the relay between workers, and chat sessions found on Rivya."""

import json
import math
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.chat import relay, turns
from rivya_dashboard.chat.models import ChatEvent, ChatSession, ChatTurn
from rivya_dashboard.console.models_catalog import do_store_catalogue
from rivya_dashboard.sandbox.choices import CHARS_PER_TOKEN
from rivya_dashboard.sandbox.faults import set_global_faults, set_key_faults
from rivya_dashboard.sandbox.keys import find_key
from rivya_dashboard.sandbox.models import Account
from rivya_dashboard.vault.models import KeyGrant, LedgerEntry
from tests.conftest import make_member

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "gpt-5-2-chat"
THINKER = "claude-sonnet-4-6-chat"  # the sandbox's one model with thoughts


@pytest.fixture(autouse=True)
def replies_in_threads(file_backed_db) -> Iterator[None]:
    """Replies are read and saved by background threads, each on its own connection; none may
    outlive its test's database."""
    yield
    wait_for_quiet()
    time.sleep(relay.FLUSH_SECONDS * 3)  # the saver closes its connection once idle


@pytest.fixture
def chat_ready(sandbox_client, vault_key, members):
    do_store_catalogue(sandbox_client.list_models())
    KeyGrant.objects.create(member=members[Role.OPERATOR], key=vault_key, actions=["chat"])
    yield vault_key
    wait_for_quiet()
    set_global_faults({})


def wait_for_quiet(timeout: float = 10) -> None:
    """Every reader finished and saved: no thread may outlive its test's database."""
    deadline = time.monotonic() + timeout
    while (relay.LIVE.snapshot() or readers()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not relay.LIVE.snapshot() and not readers()


def readers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("chat-turn-")]


def start_chat(client, key, message="Hello there, sandbox", **headers):
    data = {"key": key.pk, "model": MODEL, "message": message, "idempotency_key": "idem-1"}
    return client.post(reverse("chat-new"), data, **headers)


def read_stream(client, turn, **headers) -> list[tuple[str, str, dict]]:
    return stream_events(client.get(reverse("chat-turn-stream", args=[turn.pk]), **headers))


def stream_events(response) -> list[tuple[str, str, dict]]:
    """(id, event, data) of each event; the sent turn that opens a send's stream has no id."""
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response.streaming_content).decode()
    events = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
    return events


# What chat.js sends: the reply is read on the send request's own response.
STREAMED = {"HTTP_HX_REQUEST": "true", "HTTP_ACCEPT": "text/event-stream"}


def test_it_streams_a_reply_and_keeps_every_event(clients, chat_ready):
    client = clients[Role.OPERATOR]
    response = start_chat(client, chat_ready)
    session = ChatSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("chat-session", args=[session.pk])
    turn = session.turns.get()

    events = read_stream(client, turn)

    kinds = [kind for _, kind, _ in events]
    assert kinds[-1] == "done" and kinds.count("delta") > 3
    assert [int(seq) for seq, _, _ in events] == list(range(1, len(events) + 1))
    text = "".join(data["text"] for _, kind, data in events if kind == "delta")
    assert "This is the Rivya sandbox answering" in text
    assert 'id="turn-' in events[-1][2]["html"]
    turn.refresh_from_db()
    assert turn.status == ChatTurn.Status.DONE
    assert turn.reply == text
    assert turn.output_tokens and turn.input_tokens
    assert turn.credits_reserved == 3 and turn.credits_final is not None
    assert turn.ttft_ms is not None and turn.duration_ms >= turn.ttft_ms
    assert turn.request_id.startswith("req_")
    assert session.__class__.objects.get().remote_id.startswith("chs_")
    entry = LedgerEntry.objects.get(operation="chat.stream")
    assert entry.credits_final == turn.credits_final and entry.http_status == 200


def test_it_resumes_a_stream_from_the_last_event_id(clients, chat_ready):
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready)
    turn = ChatTurn.objects.get()
    first = read_stream(client, turn)

    resumed = read_stream(client, turn, HTTP_LAST_EVENT_ID="3")

    assert [seq for seq, _, _ in resumed] == [seq for seq, _, _ in first][3:]
    assert resumed[-1][1] == "done"


def test_the_page_shows_the_text_so_far_and_where_to_resume(clients, chat_ready):
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready)
    turn = ChatTurn.objects.get()
    read_stream(client, turn)
    session = turn.session
    streaming = ChatTurn.objects.create(
        session=session, created_by=turn.created_by, message="Second", model=MODEL,
        status=ChatTurn.Status.STREAMING,
    )  # fmt: skip
    ChatEvent.objects.bulk_create(
        ChatEvent(turn=streaming, seq=seq, kind="delta", text=word)
        for seq, word in enumerate(["Half ", "a ", "reply"], start=1)
    )

    page = client.get(reverse("chat-session", args=[session.pk]))

    html = page.content.decode()
    assert "Half a reply" in html
    assert f'data-stream-url="{reverse("chat-turn-stream", args=[streaming.pk])}"' in html
    assert 'data-after="3"' in html
    ChatTurn.objects.filter(pk=streaming.pk).update(status=ChatTurn.Status.DONE)


def start_slow_chat(client, key, raw_key: str, drip_ms: int) -> ChatTurn:
    """A reply dripping a word every `drip_ms`, returned once its first words are saved."""
    set_key_faults(find_key(raw_key), {"slow-drip": drip_ms})
    start_chat(client, key)
    turn = ChatTurn.objects.get()
    deadline = time.monotonic() + 5
    while not ChatEvent.objects.filter(turn=turn, kind="delta").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return turn


def test_stop_ends_the_reply_and_keeps_the_partial_text(clients, chat_ready, sandbox_key):
    client = clients[Role.OPERATOR]
    turn = start_slow_chat(client, chat_ready, sandbox_key, drip_ms=300)

    asked = time.monotonic()
    response = client.post(reverse("chat-turn-stop", args=[turn.pk]), HTTP_HX_REQUEST="true")
    events = read_stream(client, turn)

    assert response.status_code == 204
    assert time.monotonic() - asked < 1
    assert events[-1][1] == "stopped"
    wait_for_quiet()
    turn.refresh_from_db()
    assert turn.status == ChatTurn.Status.STOPPED
    assert turn.reply.startswith("This is the Rivya sandbox")
    assert len(turn.reply) < 150
    assert turn.credits_final == 1
    assert LedgerEntry.objects.get(operation="chat.stream").error_code == "stopped"


def test_a_reset_mid_stream_ends_with_one_error_and_keeps_the_text(clients, chat_ready):
    set_global_faults({"reset-after-delta": True})
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready)
    turn = ChatTurn.objects.get()

    events = read_stream(client, turn)

    kinds = [kind for _, kind, _ in events]
    assert kinds == ["delta", "error"]
    assert "notice-bad" in events[-1][2]["html"]
    turn.refresh_from_db()
    assert turn.status == ChatTurn.Status.FAILED
    assert turn.reply.startswith("This is")
    assert turn.error_message


def test_a_refusal_before_the_stream_reaches_the_input_area_through_the_stream(
    clients, chat_ready, sandbox_key
):
    Account.objects.filter(pk=find_key(sandbox_key).account_id).update(credits=0)
    client = clients[Role.OPERATOR]

    response = start_chat(client, chat_ready, HTTP_HX_REQUEST="true")
    turn = ChatTurn.objects.get()
    events = read_stream(client, turn)

    assert response.status_code == 204
    assert [kind for _, kind, _ in events] == ["error"]
    refusal = events[0][2]
    assert refusal["rejected"] is True
    assert refusal["request_id"].startswith("req_")
    assert refusal["message"] == "Hello there, sandbox"
    assert "credits" in refusal["text"].lower()
    assert LedgerEntry.objects.get(operation="chat.stream").error_code == "insufficient_credits"
    page = client.get(reverse("chat-session", args=[turn.session_id])).content.decode()
    assert f'id="turn-{turn.pk}"' not in page


def test_without_javascript_a_refusal_is_shown_in_the_form(clients, chat_ready, sandbox_key):
    Account.objects.filter(pk=find_key(sandbox_key).account_id).update(credits=0)

    response = start_chat(clients[Role.OPERATOR], chat_ready)

    assert response.status_code == 400
    html = response.content.decode()
    assert "request id req_" in html
    assert "Hello there, sandbox" in html
    assert not ChatSession.objects.exists()


def test_a_refused_regeneration_keeps_the_earlier_reply(clients, chat_ready, sandbox_key):
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready)
    first = ChatTurn.objects.get()
    read_stream(client, first)
    Account.objects.filter(pk=find_key(sandbox_key).account_id).update(credits=0)

    client.post(reverse("chat-turn-regenerate", args=[first.pk]), HTTP_HX_REQUEST="true")
    fresh = ChatTurn.objects.exclude(pk=first.pk).get()
    events = read_stream(client, fresh)

    assert events[-1][2]["rejected"] is True
    wait_for_quiet()
    assert list(first.session.visible_turns()) == [first]


def test_the_same_idempotency_key_sends_once(clients, chat_ready):
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready)
    turn = ChatTurn.objects.get()
    url = reverse("chat-send", args=[turn.session_id])
    data = {"message": "Again", "idempotency_key": "idem-2"}
    read_stream(client, turn)

    client.post(url, data)
    client.post(url, data)

    assert ChatTurn.objects.filter(message="Again").count() == 1


def first_turn_read(client, key) -> ChatTurn:
    """A chat whose first reply has been read to its end."""
    start_chat(client, key)
    first = ChatTurn.objects.get()
    read_stream(client, first)
    return first


def send_next(client, first: ChatTurn, message: str, idempotency_key: str, **headers):
    data = {"message": message, "idempotency_key": idempotency_key}
    return client.post(reverse("chat-send", args=[first.session_id]), data, **headers)


def assert_only_a_fresh_idempotency_key(html: str, used: str) -> None:
    key = re.search(r'<input[^>]*id="id_idempotency_key"[^>]*>', html).group(0)
    assert 'hx-swap-oob="true"' in key and used not in key


def test_htmx_send_appends_the_turn_and_only_a_fresh_idempotency_key(clients, chat_ready):
    client = clients[Role.OPERATOR]
    first = first_turn_read(client, chat_ready)

    response = send_next(client, first, "Next one", "idem-3", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    turn = ChatTurn.objects.get(message="Next one")
    assert f'id="turn-{turn.pk}"' in html
    assert_only_a_fresh_idempotency_key(html, "idem-3")
    # The composer is not rendered again: that render competed with the reader for the GIL.
    assert 'id="composer"' not in html and "<html" not in html
    read_stream(client, turn)


def test_a_send_from_the_page_streams_its_reply_on_the_same_response(clients, chat_ready):
    client = clients[Role.OPERATOR]
    first = first_turn_read(client, chat_ready)

    response = send_next(client, first, "Next one", "idem-3", **STREAMED)

    events = stream_events(response)
    turn = ChatTurn.objects.get(message="Next one")
    (sent_id, sent, opening), *reply = events
    assert (sent_id, sent, opening["turn"]) == ("", "sent", f"turn-{turn.pk}")
    assert f'id="turn-{turn.pk}"' in opening["html"] and "Next one" in opening["html"]
    assert_only_a_fresh_idempotency_key(opening["html"], "idem-3")
    assert [int(seq) for seq, _, _ in reply] == list(range(1, len(reply) + 1))
    assert reply[-1][1] == "done" and f'id="turn-{turn.pk}"' in reply[-1][2]["html"]
    turn.refresh_from_db()
    assert turn.status == ChatTurn.Status.DONE
    assert turn.reply == "".join(data["text"] for _, kind, data in reply if kind == "delta")
    assert response["X-Accel-Buffering"] == "no"


def test_a_streamed_send_that_is_refused_answers_with_the_composer(clients, chat_ready):
    client = clients[Role.OPERATOR]
    first = first_turn_read(client, chat_ready)

    response = send_next(client, first, "", "idem-empty", **STREAMED)

    assert response["Content-Type"].startswith("text/html")
    assert response["HX-Retarget"] == "#composer"
    assert "Write a message first." in response.content.decode()
    assert ChatTurn.objects.count() == 1


def test_a_streamed_regeneration_replaces_the_reply_and_streams_the_new_one(clients, chat_ready):
    client = clients[Role.OPERATOR]
    first = first_turn_read(client, chat_ready)

    response = client.post(reverse("chat-turn-regenerate", args=[first.pk]), **STREAMED)

    events = stream_events(response)
    fresh = ChatTurn.objects.exclude(pk=first.pk).get()
    assert events[0][1] == "sent"
    assert f'id="turn-{first.pk}" hx-swap-oob="delete"' in events[0][2]["html"]
    assert events[-1][1] == "done" and f'id="turn-{fresh.pk}"' in events[-1][2]["html"]
    assert list(first.session.visible_turns()) == [fresh]


def test_regenerate_replaces_the_last_reply(clients, chat_ready):
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready)
    first = ChatTurn.objects.get()
    read_stream(client, first)

    response = client.post(reverse("chat-turn-regenerate", args=[first.pk]), HTTP_HX_REQUEST="true")

    fresh = ChatTurn.objects.exclude(pk=first.pk).get()
    assert fresh.message == first.message
    assert f'id="turn-{first.pk}" hx-swap-oob="delete"' in response.content.decode()
    read_stream(client, fresh)
    assert list(first.session.visible_turns()) == [fresh]


def test_a_second_message_waits_for_the_running_reply(clients, chat_ready, sandbox_key):
    set_key_faults(find_key(sandbox_key), {"slow-drip": 200})
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready)
    turn = ChatTurn.objects.get()

    response = client.post(
        reverse("chat-send", args=[turn.session_id]),
        {"message": "Too soon", "idempotency_key": "idem-4"},
    )

    assert response.status_code == 400
    assert "Wait for the reply to finish" in response.content.decode()
    client.post(reverse("chat-turn-stop", args=[turn.pk]))


def test_export_as_markdown_and_json(clients, chat_ready):
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready)
    turn = ChatTurn.objects.get()
    read_stream(client, turn)
    turn.refresh_from_db()

    markdown = client.get(reverse("chat-export", args=[turn.session_id, "md"]))
    document = client.get(reverse("chat-export", args=[turn.session_id, "json"])).json()

    assert markdown["Content-Disposition"].endswith('.md"')
    assert "## You\n\nHello there, sandbox" in markdown.content.decode()
    assert document["turns"][0]["reply"] == turn.reply
    assert document["turns"][0]["credits"]["final"] == turn.credits_final
    assert document["turns"][0]["request_id"] == turn.request_id


def test_another_member_reads_a_chat_by_the_rule_and_never_continues_it(
    clients, chat_ready, members
):
    start_chat(clients[Role.OPERATOR], chat_ready)
    turn = ChatTurn.objects.get()
    read_stream(clients[Role.OPERATOR], turn)
    session = reverse("chat-session", args=[turn.session_id])
    # The owner sees everything, so reads the chat, but only its author continues it.
    owner = clients[Role.OWNER]
    page = owner.get(session)
    assert page.status_code == 200 and 'data-testid="chat-read-only"' in page.content.decode()
    assert reverse("chat-turn-regenerate", args=[turn.pk]) not in page.content.decode()
    assert owner.post(reverse("chat-turn-stop", args=[turn.pk])).status_code == 404
    assert owner.post(reverse("chat-send", args=[turn.session_id])).status_code == 404
    assert owner.post(reverse("chat-turn-regenerate", args=[turn.pk])).status_code == 404
    # An operator without "Read history" on the key sees none of it.
    stranger = Client()
    stranger.force_login(make_member(Role.OPERATOR, "stranger"))
    assert stranger.get(session).status_code == 404
    assert stranger.get(reverse("chat-turn-stream", args=[turn.pk])).status_code == 404
    assert stranger.get(reverse("chat-export", args=[turn.session_id, "md"])).status_code == 404


def test_a_member_without_a_grant_is_told_whom_to_ask(clients, chat_ready, members):
    KeyGrant.objects.all().delete()
    response = start_chat(clients[Role.OPERATOR], chat_ready)

    assert response.status_code == 400
    assert not ChatSession.objects.exists()


def test_options_follow_the_models_capabilities(clients, chat_ready):
    page = clients[Role.OPERATOR].get(reverse("chat"), {"model": THINKER})
    gpt = clients[Role.OPERATOR].get(reverse("chat"), {"model": MODEL})

    assert 'name="enable_web_search"' not in page.content.decode()
    assert 'name="enable_thoughts"' in page.content.decode()
    assert 'name="enable_web_search"' in gpt.content.decode()
    assert 'name="enable_thoughts"' not in gpt.content.decode()
    assert 'name="reasoning_effort"' in gpt.content.decode()


def start_thinking_chat(client, key, **options: str) -> ChatTurn:
    data = {"key": key.pk, "model": THINKER, "message": "Think first", **options}
    client.post(reverse("chat-new"), {**data, "idempotency_key": "idem-think"})
    return ChatTurn.objects.get()


def thoughts_box(html: str) -> tuple[str, str]:
    """The attributes of the reply's thoughts <details> and the thoughts in it."""
    found = re.search(r'<details class="thinking"([^>]*)>.*?data-thinking>(.*?)</div>', html, re.S)
    assert found, html
    return found[1].strip(), found[2]


def test_shown_thoughts_stream_before_the_reply_and_stay_collapsed(clients, chat_ready):
    client = clients[Role.OPERATOR]
    turn = start_thinking_chat(client, chat_ready, enable_thoughts="on")

    events = read_stream(client, turn)

    kinds = [kind for _, kind, _ in events]
    assert kinds[:2] == ["thinking", "delta"] and kinds[-1] == "done"
    thoughts = events[0][2]["text"]
    assert thoughts.startswith("Planning")
    turn.refresh_from_db()
    assert turn.enable_thoughts and turn.thinking == thoughts
    page = client.get(reverse("chat-session", args=[turn.session_id])).content.decode()
    # Neither hidden nor open: the answer stays what a person reads first.
    assert thoughts_box(events[-1][2]["html"]) == ("", thoughts)
    assert thoughts_box(page) == ("", thoughts)


def test_a_regenerated_reply_keeps_the_thoughts_option(clients, chat_ready):
    client = clients[Role.OPERATOR]
    first = start_thinking_chat(client, chat_ready, enable_thoughts="on")
    read_stream(client, first)

    client.post(reverse("chat-turn-regenerate", args=[first.pk]))
    fresh = ChatTurn.objects.exclude(pk=first.pk).get()

    assert fresh.enable_thoughts
    assert read_stream(client, fresh)[0][1] == "thinking"


def test_without_the_option_a_thinking_model_streams_no_thoughts(clients, chat_ready):
    client = clients[Role.OPERATOR]
    turn = start_thinking_chat(client, chat_ready)

    events = read_stream(client, turn)

    assert "thinking" not in [kind for _, kind, _ in events]
    assert thoughts_box(events[-1][2]["html"]) == ("hidden", "")


def test_the_model_picker_swaps_only_the_composer(clients, chat_ready):
    response = clients[Role.OPERATOR].get(
        reverse("chat"), {"model": MODEL}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="composer"
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<form id="composer"')
    assert "<html" not in html


# The relay between workers: the database tail, heartbeats, a lost reader, Stop by column.


@pytest.fixture
def streaming_turn(members, vault_key) -> ChatTurn:
    """A reply being read by another worker: only its saved rows are visible here."""
    session = ChatSession.objects.create(
        created_by=members[Role.OPERATOR], api_key=vault_key, key_label="k", model="m", title="t"
    )
    return ChatTurn.objects.create(
        session=session,
        created_by=members[Role.OPERATOR],
        message="Hi",
        model="m",
        status=ChatTurn.Status.STREAMING,
    )


def save_events(turn: ChatTurn, *events: tuple[int, str, str]) -> None:
    ChatEvent.objects.bulk_create(
        ChatEvent(turn=turn, seq=seq, kind=kind, text=text) for seq, kind, text in events
    )


def test_another_workers_reply_is_tailed_from_the_database(streaming_turn):
    save_events(streaming_turn, (1, "delta", "Hello "), (2, "delta", "there"))

    def other_worker() -> None:
        time.sleep(0.1)
        save_events(streaming_turn, (3, "delta", "!"), (4, "done", ""))

    threading.Thread(target=other_worker).start()
    frames = list(relay.tail(streaming_turn.pk, after=1))

    assert [(frame.seq, frame.kind, frame.text) for frame in frames] == [
        (2, "delta", "there"),
        (3, "delta", "!"),
        (4, "done", ""),
    ]


def test_a_quiet_reply_gets_heartbeats(streaming_turn, monkeypatch, clients):
    monkeypatch.setattr(relay, "HEARTBEAT_SECONDS", 0.05)
    response = clients[Role.OPERATOR].get(reverse("chat-turn-stream", args=[streaming_turn.pk]))
    threading.Timer(0.5, save_events, args=(streaming_turn, (1, "stopped", "Stopped."))).start()
    body = b"".join(response.streaming_content).decode()

    assert body.startswith("retry: 1000\n\n")
    assert body.count(": ping\n\n") >= 2
    assert body.endswith('"}\n\n') and "event: stopped" in body


def test_a_reply_whose_reader_is_gone_ends_with_its_text_kept(streaming_turn, monkeypatch):
    monkeypatch.setattr(relay, "STALE_CHECK_SECONDS", 0)
    save_events(streaming_turn, (1, "delta", "Half "), (2, "delta", "done"))
    ChatTurn.objects.filter(pk=streaming_turn.pk).update(
        alive_at=timezone.now() - timedelta(seconds=relay.STALE_SECONDS + 1)
    )

    frames = list(relay.tail(streaming_turn.pk, after=2))

    assert [(frame.seq, frame.kind) for frame in frames] == [(3, "error")]
    streaming_turn.refresh_from_db()
    assert streaming_turn.status == ChatTurn.Status.FAILED
    assert streaming_turn.reply == "Half done"
    assert "restarted" in streaming_turn.error_message


def test_a_live_reply_is_not_taken_for_a_lost_one(streaming_turn, monkeypatch):
    monkeypatch.setattr(relay, "STALE_CHECK_SECONDS", 0)

    assert relay.do_abandon_if_stale(streaming_turn.pk) is None
    streaming_turn.refresh_from_db()
    assert streaming_turn.status == ChatTurn.Status.STREAMING


def test_a_reconnect_after_the_end_gets_the_end_again(streaming_turn):
    save_events(streaming_turn, (1, "delta", "All"), (2, "done", ""))

    frames = list(relay.tail(streaming_turn.pk, after=2))

    assert [(frame.seq, frame.kind) for frame in frames] == [(2, "done")]


def test_stop_pressed_on_another_worker_reaches_the_reader(clients, chat_ready, sandbox_key):
    turn = start_slow_chat(clients[Role.OPERATOR], chat_ready, sandbox_key, drip_ms=400)

    # What the stop view does in a worker that does not hold the reader: only the column.
    ChatTurn.objects.filter(pk=turn.pk).update(stop_requested_at=timezone.now())
    asked = time.monotonic()
    while not ChatEvent.objects.filter(turn=turn, kind="stopped").exists():
        assert time.monotonic() - asked < 1, "the reader did not stop within 1 s"
        time.sleep(0.02)

    wait_for_quiet()
    turn.refresh_from_db()
    assert turn.status == ChatTurn.Status.STOPPED
    assert turn.reply


def test_rivya_sessions_are_listed_and_continued_here(clients, chat_ready):
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready, message="From an API script")
    turn = ChatTurn.objects.get()
    read_stream(client, turn)
    remote_id = ChatSession.objects.get().remote_id
    ChatSession.objects.all().delete()

    listing = client.get(reverse("chat-remote"), {"key": chat_ready.pk}, HTTP_HX_REQUEST="true")
    response = client.post(
        reverse("chat-remote-continue"), {"key": chat_ready.pk, "session_id": remote_id}
    )

    assert "From an API script" in listing.content.decode()
    session = ChatSession.objects.get()
    assert response["Location"] == reverse("chat-session", args=[session.pk])
    assert session.remote_id == remote_id
    imported = session.turns.get()
    assert imported.message == "From an API script"
    assert imported.reply.startswith("This is the Rivya sandbox")
    assert imported.credits_final is not None


def test_a_console_failure_while_reading_ends_the_reply_with_an_error(
    clients, chat_ready, monkeypatch
):
    def broken(self, session=None, *, timeout=None):
        raise RuntimeError("keyring unreadable")

    monkeypatch.setattr(type(chat_ready), "client", broken)
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready, HTTP_HX_REQUEST="true")
    turn = ChatTurn.objects.get()

    events = read_stream(client, turn)

    assert [kind for _, kind, _ in events] == ["error"]
    assert "keyring" not in events[0][2]["text"]
    turn.refresh_from_db()
    assert turn.status == ChatTurn.Status.FAILED


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201a5e2e0f90000000049454e44ae426082"
)


def test_an_image_goes_through_the_files_api_and_rides_with_the_turn(clients, chat_ready):
    KeyGrant.objects.update(actions=["chat", "upload"])
    client = clients[Role.OPERATOR]
    image = SimpleUploadedFile("chart.png", PNG, content_type="image/png")
    data = {"key": chat_ready.pk, "model": MODEL, "message": "What is this?", "image": image}

    client.post(reverse("chat-new"), {**data, "idempotency_key": "idem-img"})
    turn = ChatTurn.objects.get()
    events = read_stream(client, turn)

    assert turn.attachments[0]["name"] == "chart.png"
    assert turn.attachments[0]["file_id"]
    assert events[-1][1] == "done"
    assert "1 image attachment" in "".join(data["text"] for _, _, data in events)
    page = client.get(reverse("chat-session", args=[turn.session_id])).content.decode()
    assert "chart.png" in page


def test_models_without_image_support_offer_no_attachment(clients, chat_ready):
    page = clients[Role.OPERATOR].get(reverse("chat"), {"model": "claude-sonnet-4-6-chat"})

    assert 'name="image"' not in page.content.decode()


def test_a_bad_resume_point_streams_from_the_start(clients, streaming_turn):
    save_events(streaming_turn, (1, "delta", "All"), (2, "done", ""))

    events = read_stream(clients[Role.OPERATOR], streaming_turn, HTTP_LAST_EVENT_ID="²")

    assert [(seq, kind) for seq, kind, _ in events] == [("1", "delta"), ("2", "done")]


def test_a_turn_brought_in_from_rivya_ends_its_stream_at_once(clients, streaming_turn):
    ChatTurn.objects.filter(pk=streaming_turn.pk).update(status=ChatTurn.Status.DONE, reply="Hi")

    events = read_stream(clients[Role.OPERATOR], streaming_turn)

    assert [kind for _, kind, _ in events] == ["done"]
    assert f'id="turn-{streaming_turn.pk}"' in events[0][2]["html"]


def test_another_members_rivya_session_is_neither_listed_nor_continued(clients, chat_ready):
    start_chat(clients[Role.OPERATOR], chat_ready, message="Private to the operator")
    read_stream(clients[Role.OPERATOR], ChatTurn.objects.get())
    remote_id = ChatSession.objects.get().remote_id
    admin = clients[Role.ADMIN]

    listing = admin.get(reverse("chat-remote"), {"key": chat_ready.pk}, HTTP_HX_REQUEST="true")
    response = admin.post(
        reverse("chat-remote-continue"), {"key": chat_ready.pk, "session_id": remote_id}
    )

    assert "Private to the operator" not in listing.content.decode()
    assert response["Location"] == reverse("chat")
    assert ChatSession.objects.count() == 1


def test_another_members_idempotency_key_sends_nothing(clients, chat_ready):
    start_chat(clients[Role.OPERATOR], chat_ready)
    wait_for_quiet()

    response = start_chat(clients[Role.ADMIN], chat_ready, message="Reusing the key")

    assert response.status_code == 400
    assert "reload the page" in response.content.decode()
    assert ChatTurn.objects.count() == ChatSession.objects.count() == 1


def test_the_saver_outlives_an_unexpected_error(clients, chat_ready, monkeypatch):
    calls = []
    real = relay.cut_stopped

    def failing_once(turns: list) -> None:
        calls.append(len(turns))
        if len(calls) == 1:
            raise RuntimeError("not a database error")
        real(turns)

    monkeypatch.setattr(relay, "cut_stopped", failing_once)
    start_chat(clients[Role.OPERATOR], chat_ready)
    turn = ChatTurn.objects.get()

    deadline = time.monotonic() + 5
    while not ChatTurn.objects.filter(pk=turn.pk, status=ChatTurn.Status.DONE).exists():
        assert time.monotonic() < deadline, "the saver died with the error"
        time.sleep(0.02)
    assert calls


def test_a_regenerated_reply_says_rivya_keeps_the_replaced_one(clients, chat_ready):
    """The API keeps a session's history server-side and takes no message list (contract §10.2),
    so a regenerated reply is written with the replaced one in its input: its input tokens count
    the first message, the discarded reply and the message again."""
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready)
    first = ChatTurn.objects.get()
    read_stream(client, first)
    client.post(reverse("chat-turn-regenerate", args=[first.pk]), HTTP_HX_REQUEST="true")
    fresh = ChatTurn.objects.exclude(pk=first.pk).get()
    read_stream(client, fresh)

    first.refresh_from_db()
    fresh.refresh_from_db()
    history = len(first.message) + len(first.reply.rstrip()) + len(fresh.message)
    assert fresh.input_tokens == math.ceil(history / CHARS_PER_TOKEN) > first.input_tokens
    page = client.get(reverse("chat-session", args=[first.session_id])).content.decode()
    assert "the reply you replaced is still in the history" in page
    assert page.count("data-regenerated") == 1


def test_the_attach_button_draws_its_icon_without_an_emoji_font(clients, chat_ready):
    page = clients[Role.OPERATOR].get(reverse("chat"), {"model": MODEL}).content.decode()

    attach = re.search(r'<label class="composer-attach".*?</label>', page, re.S).group(0)
    assert "<svg" in attach
    assert not re.search("[\U0001f300-\U0001faff]", page)


def test_the_composer_says_enter_sends_and_shift_enter_starts_a_line(clients, chat_ready):
    page = clients[Role.OPERATOR].get(reverse("chat")).content.decode()

    assert "<kbd>Enter</kbd> sends · <kbd>Shift</kbd>+<kbd>Enter</kbd> new line" in page


def test_a_live_turn_carries_the_label_of_its_next_status(clients, streaming_turn):
    ChatTurn.objects.filter(pk=streaming_turn.pk).update(status=ChatTurn.Status.QUEUED)
    page = clients[Role.OPERATOR].get(reverse("chat-session", args=[streaming_turn.session_id]))

    badge = re.search(r"<span[^>]*data-status-badge[^>]*>([^<]*)<", page.content.decode())
    assert badge.group(1) == "Waiting for Rivya"
    assert 'data-label-streaming="Replying"' in badge.group(0)


def test_a_chat_models_page_opens_a_chat_with_it_picked(clients, chat_ready):
    client = clients[Role.OPERATOR]
    html = client.get(reverse("model-detail", args=[THINKER])).content.decode()

    link = re.search(r'<a class="button" href="([^"]+)">Chat with this model</a>', html)
    assert link.group(1) == f"{reverse('chat')}?model={THINKER}"
    assert "Generate with this model" not in html
    chat = client.get(link.group(1)).content.decode()
    assert f'<option value="{THINKER}" selected>' in chat


def test_the_send_request_writes_the_ledger_row_so_the_reader_calls_rivya_at_once(
    clients, chat_ready, monkeypatch
):
    """The reader thread opens no database connection and takes no write lock before its call:
    the turn and its ledger row (the grant checked under its lock) are one write in the request."""
    handed = []

    def start_reading(turn, reserve, entry):
        handed.append((turn, reserve, entry))
        live = relay.LIVE.add(turn.pk)
        live.close_with(relay.Frame(1, "done"))
        return live

    monkeypatch.setattr(turns, "start_reading", start_reading)
    start_chat(clients[Role.OPERATOR], chat_ready, HTTP_HX_REQUEST="true")

    turn, reserve, entry = handed[0]
    assert entry.pk == LedgerEntry.objects.get(operation="chat.stream").pk
    assert (entry.idempotency_key, entry.credits_reserved, reserve) == (turn.idempotency_key, 3, 3)
    assert entry.member == turn.created_by and entry.key == chat_ready


@pytest.fixture
def held_end(monkeypatch) -> Iterator[threading.Event]:
    """The saver writes every event as usual but holds a reply's end until the test lets go."""
    release = threading.Event()
    real = relay.save

    def save(turns: list) -> None:
        if any(live.is_closing for live in turns):
            release.wait(10)
        real(turns)

    monkeypatch.setattr(relay, "save", save)
    yield release
    release.set()


def test_the_end_reaches_the_stream_before_it_is_saved_and_the_stream_waits_for_it(
    clients, chat_ready, held_end
):
    """Time to the last event is not the saver's: the end is shown from the reader's own fields,
    and the response closes only once it is in the database, where a reload looks."""
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready, HTTP_HX_REQUEST="true")
    turn = ChatTurn.objects.get()
    chunks = iter(client.get(reverse("chat-turn-stream", args=[turn.pk])).streaming_content)

    body = ""
    while "event: done" not in body:
        body += next(chunks).decode()
    ended = json.loads(body.rsplit("data: ", 1)[1])
    assert ChatTurn.objects.get(pk=turn.pk).status != ChatTurn.Status.DONE
    assert 'data-status="done"' in ended["html"]
    assert "This is the Rivya sandbox answering" in ended["html"]

    held_end.set()
    assert b"".join(chunks) == b""
    assert ChatTurn.objects.get(pk=turn.pk).status == ChatTurn.Status.DONE


def test_the_next_message_sent_while_the_last_end_is_being_saved_goes_through(
    clients, chat_ready, held_end
):
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready, HTTP_HX_REQUEST="true")
    turn = ChatTurn.objects.get()
    live = relay.LIVE.get(turn.pk)
    assert live is not None
    deadline = time.monotonic() + 10
    while not live.is_closing:
        assert time.monotonic() < deadline, "the reply did not end"
        time.sleep(0.02)
    threading.Timer(0.3, held_end.set).start()

    response = client.post(
        reverse("chat-send", args=[turn.session_id]),
        {"message": "And then?", "idempotency_key": "idem-next"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200, response.content.decode()
    assert ChatTurn.objects.filter(session=turn.session, message="And then?").exists()


def test_sending_a_message_asks_the_database_only_what_it_needs(
    clients, chat_ready, django_assert_max_num_queries
):
    """Every query before the upstream call delays the first word: the session and member,
    the chat, its model (which gives the price too), the idempotency and last-turn checks in
    one query, and one transaction for the grant and the writes; after the call, the chat's
    place in the list."""
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready, HTTP_HX_REQUEST="true")
    wait_for_quiet()
    session = ChatSession.objects.get()

    with django_assert_max_num_queries(13):
        response = client.post(
            reverse("chat-send", args=[session.pk]),
            {"message": "Once more", "idempotency_key": "idem-count"},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200


def test_sending_a_message_moves_the_chat_to_the_top_of_the_list(clients, chat_ready):
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready, HTTP_HX_REQUEST="true")
    wait_for_quiet()
    older = ChatSession.objects.get()
    data = {"key": chat_ready.pk, "model": MODEL, "message": "Another topic"}
    client.post(reverse("chat-new"), {**data, "idempotency_key": "idem-b"}, HTTP_HX_REQUEST="true")
    wait_for_quiet()
    assert ChatSession.objects.first() != older

    client.post(
        reverse("chat-send", args=[older.pk]),
        {"message": "Back to this one", "idempotency_key": "idem-back"},
        HTTP_HX_REQUEST="true",
    )

    assert ChatSession.objects.first() == older
    page = client.get(reverse("chat")).content.decode()
    assert page.index(f'href="/chat/{older.pk}/"') < page.index("Another topic")

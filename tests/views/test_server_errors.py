"""Inputs that used to end in HTTP 500 now get a 4xx or a clear error, and write nothing."""

import pytest
from django.test import Client
from django.urls import reverse

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.chat.models import ChatSession, ChatTurn
from rivya_dashboard.console.models_catalog import do_store_catalogue
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.sandbox.models import SandboxKey
from rivya_dashboard.vault.models import KeyGrant
from rivya_dashboard.webhooks.models import InboxRequest, Verdict
from tests.views.test_inbox_receiver import event_body, signed, signed_inbox

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("length", ["9" * 30, "4294967296", str(2**63)])
def test_it_answers_413_to_an_absurd_content_length(members, length):
    inbox = signed_inbox(members[Role.ADMIN])
    body = event_body()
    url = reverse("inbox-receive", args=[inbox.token])

    response = Client().post(
        url, body, content_type="application/json", CONTENT_LENGTH=length, **signed(body)
    )

    assert response.status_code == 413
    row = InboxRequest.objects.get()
    assert row.verdict == Verdict.TOO_LARGE and row.body_bytes == b""
    assert row.body_size == 2**31 - 1


@pytest.mark.parametrize("length", ["-5", "12abc", "1e3", "\u0661\u0662"])
def test_it_answers_400_to_a_content_length_that_is_not_a_number(members, length):
    inbox = signed_inbox(members[Role.ADMIN])
    body = event_body()
    url = reverse("inbox-receive", args=[inbox.token])

    response = Client().post(
        url, body, content_type="application/json", CONTENT_LENGTH=length, **signed(body)
    )

    assert response.status_code == 400
    assert response.json()["error"] == "bad_content_length"
    assert "exact length" in response.json()["message"]
    assert InboxRequest.objects.get().reason_code == "bad_content_length"


@pytest.mark.parametrize("value", ["abc", "1.5", "-1", "99999999999999999999999999", "1e400"])
def test_the_sandbox_control_page_answers_400_to_a_key_that_is_not_a_number(clients, value):
    response = clients[Role.ADMIN].get(reverse("sandbox-control"), {"faults": value})

    assert response.status_code == 400
    assert "open a key&#x27;s faults from the Keys list" in response.content.decode()


def test_the_sandbox_control_page_still_opens_a_keys_faults(clients, sandbox_key):
    key = SandboxKey.objects.get()

    response = clients[Role.ADMIN].get(reverse("sandbox-control"), {"faults": key.pk})

    assert response.status_code == 200
    assert response.context["fault_key"] == key


@pytest.fixture
def chat_key(sandbox_client, vault_key, members):
    do_store_catalogue(sandbox_client.list_models())
    KeyGrant.objects.create(member=members[Role.OPERATOR], key=vault_key, actions=["chat"])
    return vault_key


def remote_detail(usage: dict, credits: dict) -> dict:
    return {
        "id": "chs_remote",
        "model": "gpt-5-2-chat",
        "title": "From a script",
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi", "usage": usage, "credits": credits},
        ],
    }


@pytest.mark.parametrize(
    ("usage", "credits", "field", "shown"),
    [
        ({"input_tokens": "many"}, {}, "messages[1].usage.input_tokens", "&#x27;many&#x27;"),
        ({"output_tokens": -3}, {}, "messages[1].usage.output_tokens", "-3"),
        ({}, {"final": 10**12}, "messages[1].credits.final", "1000000000000"),
        ({}, {"reserved": 2.5}, "messages[1].credits.reserved", "2.5"),
        ({}, {"final": True}, "messages[1].credits.final", "True"),
    ],
)
def test_a_malformed_number_from_rivya_names_the_field_and_request_id(
    clients, chat_key, monkeypatch, usage, credits, field, shown
):
    def answer(self, session_id):
        self.last_request_id = "req_malformed42"
        return remote_detail(usage, credits)

    monkeypatch.setattr(RivyaClient, "get_chat_session", answer)
    client = clients[Role.OPERATOR]

    response = client.post(
        reverse("chat-remote-continue"), {"key": chat_key.pk, "session_id": "chs_remote"}
    )

    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert field in page and shown in page and "req_malformed42" in page
    assert not ChatSession.objects.exists() and not ChatTurn.objects.exists()


def test_whole_numbers_from_rivya_are_imported(clients, chat_key, monkeypatch):
    def answer(self, session_id):
        return remote_detail({"input_tokens": 12, "output_tokens": 30.0}, {"final": 3})

    monkeypatch.setattr(RivyaClient, "get_chat_session", answer)

    clients[Role.OPERATOR].post(
        reverse("chat-remote-continue"), {"key": chat_key.pk, "session_id": "chs_remote"}
    )

    turn = ChatTurn.objects.get()
    assert (turn.input_tokens, turn.output_tokens, turn.credits_final) == (12, 30, 3)


@pytest.mark.parametrize("idempotency_key", ["clé-\u2603", "key with space", "tab\there", ""])
def test_a_chat_idempotency_key_http_cannot_carry_is_refused_at_the_form(
    clients, chat_key, idempotency_key
):
    data = {
        "key": chat_key.pk,
        "model": "gpt-5-2-chat",
        "message": "Hello",
        "idempotency_key": idempotency_key,
    }

    response = clients[Role.OPERATOR].post(reverse("chat-new"), data)

    assert response.status_code == 400
    page = response.content.decode()
    assert "resend guard was damaged" in page
    assert not ChatTurn.objects.exists() and not ChatSession.objects.exists()
    fresh = response.context["form"]["idempotency_key"].value()
    assert fresh.startswith("console-chat-") and fresh != idempotency_key

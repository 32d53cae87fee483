"""Text from the API is shown as text: markup in any string field never becomes markup.

A hostile API puts `<img onerror>` and `<script>` into every string it answers (a transport
that wraps the in-process sandbox), and rows the console stored from the API (catalogue, chat
session, generation, inbox request, error messages) carry the same markup in every text field.
Each page that shows them must show the characters, escaped, and never a tag.
"""

import io
import json
from urllib.parse import parse_qsl, urlencode

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.urls import reverse
from django.utils.html import escape

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.chat.models import ChatSession, ChatTurn
from rivya_dashboard.console.models import (
    CatalogueModel,
    CatalogueSync,
    Generation,
    Output,
    Status,
)
from rivya_dashboard.console.models_catalog import do_store_catalogue
from rivya_dashboard.sandbox import webhooks_targets
from rivya_dashboard.sandbox.models import WebhookEndpoint
from rivya_dashboard.vault import transport
from rivya_dashboard.vault.models import KeyGrant
from rivya_dashboard.webhooks.models import InboxRequest, Verdict
from tests.inprocess import in_process_session
from tests.views.test_inbox_receiver import signed_inbox

pytestmark = pytest.mark.django_db

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"
MARK = IMG + SCRIPT
# Values the console branches on; the hostile transport leaves them, the stored rows do not.
STRUCTURAL = {
    "category", "api_status", "type", "status", "object", "role", "kind", "supported_api_inputs"
}  # fmt: skip


def hostile(value: object, keep: frozenset[str] = frozenset(), name: str = "") -> object:
    if isinstance(value, str):
        # Ids go into the console's own URLs, whose path segments hold no "/".
        return value + (IMG if name == "id" or name.endswith("_id") else MARK)
    if isinstance(value, list):
        return [hostile(item, keep, name) for item in value]
    if isinstance(value, dict):
        return {k: (v if k in keep else hostile(v, keep, k)) for k, v in value.items()}
    return value


def harmless(text: str) -> str:
    return text.replace(MARK, "").replace(IMG, "")


class HostileAPI:
    """The sandbox, with MARK added to every string it answers and taken off what it is sent,
    so ids the console got from it still find their records."""

    def __init__(self) -> None:
        self.app = WSGIHandler()

    def __call__(self, environ: dict, start_response):
        environ["PATH_INFO"] = harmless(environ["PATH_INFO"])
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        environ["QUERY_STRING"] = urlencode([(k, harmless(v)) for k, v in query])
        body = environ["wsgi.input"].read()
        body = body.replace(MARK.encode(), b"").replace(IMG.encode(), b"")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        answered = {}

        def keep_start(status, headers, exc_info=None):
            answered["status"], answered["headers"] = status, headers

        chunks = b"".join(self.app(environ, keep_start))
        headers = dict(answered["headers"])
        if headers.get("Content-Type", "").startswith("application/json"):
            chunks = json.dumps(hostile(json.loads(chunks), frozenset(STRUCTURAL))).encode()
        headers["Content-Length"] = str(len(chunks))
        start_response(answered["status"], list(headers.items()))
        return [chunks]


@pytest.fixture
def hostile_api(vault_key, members, monkeypatch, settings):
    session = in_process_session(HostileAPI())
    monkeypatch.setattr(transport, "session_for", lambda environment: session)
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    monkeypatch.setattr(webhooks_targets, "resolve", lambda host, port: ["93.184.216.34"])
    KeyGrant.objects.create(
        member=members[Role.OPERATOR], key=vault_key, actions=["generate", "chat"]
    )
    return vault_key


def assert_shown_as_text(response, what: str) -> None:
    assert response.status_code == 200, (what, response.status_code)
    html = response.content.decode()
    assert "<img src=x" not in html, f"{what}: an <img> from the API became markup"
    assert "<script>alert" not in html, f"{what}: a <script> from the API became markup"
    assert escape(IMG) in html, f"{what}: the API's text is not shown"


def test_a_hostile_catalogue_is_text_on_the_models_model_and_generate_pages(clients, hostile_api):
    owner = clients[Role.OWNER]
    assert owner.post(reverse("models-refresh")).status_code == 302
    image_model = CatalogueModel.objects.filter(category="image").first()
    chat_model = CatalogueModel.objects.filter(category="chat").first()
    assert image_model.model_id.endswith(IMG)

    assert_shown_as_text(owner.get(reverse("models")), "models")
    assert_shown_as_text(owner.get(reverse("model-detail", args=[image_model.model_id])), "model")
    generate = owner.get(reverse("generate"), {"model": image_model.model_id})
    assert_shown_as_text(generate, "generate")
    assert escape(f"{MARK}") in generate.content.decode()
    assert_shown_as_text(owner.get(reverse("side-by-side")), "side by side")
    assert_shown_as_text(
        clients[Role.OPERATOR].get(reverse("chat"), {"model": chat_model.model_id}), "chat"
    )


def test_a_catalogue_with_markup_in_every_field_is_text(clients, sandbox_client):
    models = sandbox_client.list_models()["data"]
    do_store_catalogue({"data": [hostile(models[0]), hostile(models[-1])]})
    owner = clients[Role.OWNER]

    assert_shown_as_text(owner.get(reverse("models")), "models")
    for model in CatalogueModel.objects.all():
        assert_shown_as_text(owner.get(reverse("model-detail", args=[model.model_id])), "model")


def test_hostile_webhook_endpoints_deliveries_and_events_are_text(clients, hostile_api):
    admin = clients[Role.ADMIN]
    created = admin.post(
        reverse("webhook-create", args=[hostile_api.pk]),
        {
            "name": "Hook",
            "url": "https://example.com/hook",
            "event_types": ["generation.succeeded"],
        },
    )
    assert_shown_as_text(created, "secret shown once")
    endpoint_id = WebhookEndpoint.objects.get().public_id + IMG
    detail_url = reverse(
        "webhook-detail", kwargs={"key_pk": hostile_api.pk, "endpoint_id": endpoint_id}
    )
    sent = admin.post(
        reverse("webhook-test", kwargs={"key_pk": hostile_api.pk, "endpoint_id": endpoint_id})
    )
    assert sent.status_code == 302

    assert_shown_as_text(admin.get(reverse("webhooks")), "webhooks")
    assert_shown_as_text(admin.get(detail_url), "endpoint")
    assert_shown_as_text(
        admin.get(reverse("webhook-deliveries", args=[hostile_api.pk])), "deliveries"
    )
    assert_shown_as_text(admin.get(reverse("webhook-events", args=[hostile_api.pk])), "events")


def test_a_hostile_api_error_message_is_text(clients, hostile_api):
    admin = clients[Role.ADMIN]
    missing = reverse(
        "webhook-detail", kwargs={"key_pk": hostile_api.pk, "endpoint_id": "whend_missing"}
    )

    response = admin.get(missing, follow=True)

    assert_shown_as_text(response, "endpoint not found")


def test_a_stored_catalogue_error_is_text(clients, db):
    CatalogueSync.objects.create(pk=1, error=f"Rivya said {MARK}", error_request_id=MARK[:60])

    assert_shown_as_text(clients[Role.OWNER].get(reverse("models")), "models error")


def test_hostile_remote_chat_sessions_are_text(clients, hostile_api, sandbox_client):
    sandbox_client.create_chat_completion("gpt-5-2-chat", "From a script")

    listing = clients[Role.OPERATOR].get(
        reverse("chat-remote"), {"key": hostile_api.pk}, headers={"HX-Request": "true"}
    )

    assert_shown_as_text(listing, "Rivya chat sessions")


def test_a_chat_session_with_markup_in_every_field_is_text(clients, members, vault_key):
    operator = members[Role.OPERATOR]
    session = ChatSession.objects.create(
        created_by=operator,
        api_key=vault_key,
        key_label=MARK,
        model=MARK,
        remote_id=MARK[:64],
        title=MARK,
    )
    for status in (ChatTurn.Status.DONE, ChatTurn.Status.FAILED):
        ChatTurn.objects.create(
            session=session,
            created_by=operator,
            message=MARK,
            model=MARK,
            status=status,
            reply=MARK,
            thinking=MARK,
            completion_id=MARK[:64],
            message_id=MARK[:64],
            request_id=MARK[:64],
            error_code=MARK[:64],
            error_message=MARK,
            reasoning_effort="high",
            attachments=[{"name": MARK, "file_id": MARK}],
        )
    client = clients[Role.OPERATOR]

    assert_shown_as_text(client.get(reverse("chat")), "chat list")
    assert_shown_as_text(client.get(reverse("chat-session", args=[session.pk])), "chat session")
    turn = session.turns.first()
    assert_shown_as_text(
        client.get(reverse("chat-turn", args=[turn.pk]), headers={"HX-Request": "true"}), "turn"
    )


def test_a_generation_with_markup_in_every_field_is_text(clients, members, vault_key):
    job = Generation.objects.create(
        member=members[Role.OWNER],
        member_name=MARK,
        key=vault_key,
        key_label=MARK,
        model_id=MARK,
        prompt=MARK,
        params={"aspect_ratio": MARK, MARK: MARK},
        idempotency_key=MARK[:100],
        client_request_id=MARK[:100],
        remote_id=MARK[:100],
        status=Status.FAILED,
        error_code=MARK[:64],
        error_message=MARK,
        request_id=MARK[:64],
    )
    Output.objects.create(
        generation=job, position=0, original_url=f"https://cdn.example/{MARK}.png", error=MARK
    )
    owner = clients[Role.OWNER]

    assert_shown_as_text(owner.get(reverse("history")), "history")
    assert_shown_as_text(owner.get(reverse("gallery")), "gallery")
    assert_shown_as_text(owner.get(reverse("generation", args=[job.pk])), "generation")
    assert_shown_as_text(
        owner.get(reverse("generation-row", args=[job.pk]), headers={"HX-Request": "true"}),
        "generation row",
    )
    assert_shown_as_text(owner.get(reverse("home")), "home")


def test_an_inbox_request_with_markup_in_every_field_is_text(clients, members):
    inbox = signed_inbox(members[Role.ADMIN])
    body = json.dumps(hostile({"id": "evt_1", "type": "generation.succeeded"})).encode()
    row = InboxRequest.objects.create(
        inbox=inbox,
        method="POST",
        headers={"Rivya-Webhook-Id": MARK, MARK: MARK},
        body=body,
        body_text=body.decode(),
        body_size=len(body),
        event_id=MARK[:100],
        event_type=MARK[:64],
        verdict=Verdict.REJECTED,
        reason_code=MARK[:40],
        reason=MARK,
        response_status=401,
    )
    client = clients[Role.ADMIN]

    assert_shown_as_text(client.get(reverse("inbox-detail", args=[inbox.pk])), "inbox")
    assert_shown_as_text(client.get(reverse("inbox-request", args=[row.pk])), "request")

"""The API explorer against the in-process sandbox and against another API's document: operations
from the document, schema-built forms, grants and caps checked before sending, the exchange in
full, streamed operations, and bad input refused in the page."""

import json
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.console import tasks
from rivya_dashboard.console.models import Generation
from rivya_dashboard.vault import transport
from rivya_dashboard.vault.models import ApiKey, KeyGrant, LedgerEntry
from rivya_dashboard.workbench import documents
from rivya_dashboard.workbench.models import ApiDocument
from tests.inprocess import in_process_session
from tests.views.test_generate import catalogue, fast  # noqa: F401 - shared fixtures
from tests.workbench_fake import FAKE_BASE_URL, FakeApi

pytestmark = pytest.mark.django_db
EXPLORER = reverse("workbench:explorer")
SEND = reverse("workbench:send")


@pytest.fixture
def documented(catalogue):  # noqa: F811 - the imported fixture
    """The generate tests' key with its catalogue, and the API's document read through it."""
    documents.do_refresh(catalogue)
    return catalogue


@pytest.fixture
def operator(clients, members, documented):
    KeyGrant.objects.create(
        member=members[Role.OPERATOR], key=documented, actions=["generate", "browse", "chat"]
    )
    return clients[Role.OPERATOR]


def send(client, key, op, **fields):
    return client.post(SEND, {"op": op, "key": str(key.pk), **fields})


def text(response) -> str:
    return response.content.decode()


def test_every_operation_of_the_document_is_listed_by_tag_with_its_summary(owner_client, vault_key):
    page = text(owner_client.get(EXPLORER))
    for tag in ("models", "generations", "files", "chat", "credits", "webhooks"):
        assert f'class="operation-tag">{tag}</h2>' in page
    assert "Submit an image, video or audio generation" in page
    assert "op=streamChatCompletion" in page
    assert ApiDocument.objects.get().base_url == vault_key.base_url


def test_a_new_operation_in_the_document_appears_without_a_code_change(owner_client, vault_key):
    owner_client.get(EXPLORER)
    document = ApiDocument.objects.get()
    document.document["paths"]["/brand-new"] = {
        "get": {"operationId": "brandNew", "summary": "Something Rivya just added", "tags": ["new"]}
    }
    document.save()
    page = text(owner_client.get(EXPLORER, {"op": "brandNew"}))
    assert "Something Rivya just added" in page and 'class="operation-tag">new</h2>' in page
    assert "/brand-new" in page


def test_the_form_is_built_from_the_schema_by_the_generate_form_code(owner_client, vault_key):
    page = text(owner_client.get(EXPLORER, {"op": "createGeneration"}))
    assert re.search(r'<label for="id_body.model" class="required">model</label>', page)
    assert 'name="body.params"' in page and "referenceMediaItems" in page
    assert re.search(r'name="header.Idempotency-Key" value="explorer-[0-9a-f-]{36}"', page)
    models = text(owner_client.get(EXPLORER, {"op": "listModels"}))
    assert '<select name="query.category"' in models and '<option value="video">' in models
    chat = text(owner_client.get(EXPLORER, {"op": "createChatCompletion"}))
    assert '<select name="body.enable_web_search"' in chat
    webhook = text(owner_client.get(EXPLORER, {"op": "createWebhook"}))
    assert 'type="checkbox" name="body.event_types" value="generation.failed"' in webhook
    upload = text(owner_client.get(EXPLORER, {"op": "uploadFile"}))
    assert 'type="file" name="body.file"' in upload and 'enctype="multipart/form-data"' in upload


def test_an_operator_with_a_generate_grant_submits_a_generation_that_history_tracks(
    operator, documented, members
):
    response = send(
        operator,
        documented,
        "createGeneration",
        **{"body.model": "z-image", "body.prompt": "a kite", "header.Idempotency-Key": "kite-1"},
    )
    page = text(response)
    assert response.status_code == 200
    assert '<span class="badge badge-ok">202</span>' in page
    assert "Bearer rvya_sk_…" + documented.last4 in page
    generation = Generation.objects.get()
    assert generation.member == members[Role.OPERATOR] and generation.prompt == "a kite"
    assert generation.idempotency_key == "kite-1" and generation.remote_id.startswith("task_")
    entry = LedgerEntry.objects.get(operation="generations.create")
    assert entry.idempotency_key == "kite-1" and entry.http_status == 202
    assert entry.credits_reserved is not None
    assert "a kite" in text(operator.get(reverse("history")))


def test_a_viewer_is_refused_before_sending_with_the_reason(clients, members, documented):
    KeyGrant.objects.create(member=members[Role.VIEWER], key=documented, actions=["browse"])
    viewer = clients[Role.VIEWER]
    before = LedgerEntry.objects.count()
    response = send(viewer, documented, "createGeneration", **{"body.model": "z-image"})
    assert response.status_code == 403
    assert "Not sent:" in text(response) and "Viewers" in text(response)
    assert LedgerEntry.objects.count() == before and not Generation.objects.exists()


def test_an_operation_outside_the_grant_names_the_missing_action(operator, documented):
    page = text(operator.get(EXPLORER, {"op": "uploadFile"}))
    assert "Upload files" in page and "does not include" in page
    before = LedgerEntry.objects.count()
    upload = SimpleUploadedFile("a.png", b"\x89PNG", content_type="image/png")
    response = operator.post(
        SEND, {"op": "uploadFile", "key": documented.pk, "body.kind": "image", "body.file": upload}
    )
    assert response.status_code == 403 and "does not include" in text(response)
    assert LedgerEntry.objects.count() == before


def test_a_spent_cap_refuses_the_call(operator, documented, members):
    KeyGrant.objects.filter(member=members[Role.OPERATOR]).update(daily_cap=1)
    LedgerEntry.objects.create(
        member=members[Role.OPERATOR],
        key=documented,
        operation="generations.create",
        credits_final=1,
    )
    response = send(operator, documented, "getCredits")
    assert response.status_code == 403 and "daily cap" in text(response)


def test_invalid_json_is_refused_in_the_page_and_nothing_is_sent(owner_client, documented):
    before = LedgerEntry.objects.count()
    response = send(owner_client, documented, "createGeneration", raw_body='{"model": ')
    assert response.status_code == 400
    assert "Fix the JSON before sending" in text(response)
    assert LedgerEntry.objects.count() == before


def test_the_raw_editor_replaces_the_body_fields(owner_client, documented):
    body = json.dumps({"model": "z-image", "prompt": "raw"})
    response = send(owner_client, documented, "createGeneration", raw_body=body)
    assert response.status_code == 200 and "202" in text(response)
    assert Generation.objects.get().prompt == "raw"


def test_an_error_answer_is_shown_whole_with_its_request_id(owner_client, documented):
    response = send(owner_client, documented, "getGeneration", **{"path.taskId": "task_nope"})
    page = text(response)
    assert '<span class="badge badge-bad">404</span>' in page and "not_found" in page
    entry = LedgerEntry.objects.get(operation="getGeneration")
    assert entry.http_status == 404 and entry.error_code == "not_found"
    assert entry.request_id in page


def test_preview_shows_every_copy_without_sending(owner_client, documented):
    before = LedgerEntry.objects.count()
    response = send(
        owner_client, documented, "listModels", preview="1", **{"query.category": "image"}
    )
    page = text(response)
    assert "Nothing was sent" in page
    for label in ("cURL", "Python", "JavaScript", "HTTPie"):
        assert f"<summary>{label}</summary>" in page
    assert "$RIVYA_API_KEY" in page and "category=image" in page
    assert LedgerEntry.objects.count() == before


def test_an_upload_goes_as_multipart(clients, members, documented):
    KeyGrant.objects.create(member=members[Role.OPERATOR], key=documented, actions=["upload"])
    upload = SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, content_type="image/png")
    response = clients[Role.OPERATOR].post(
        SEND, {"op": "uploadFile", "key": documented.pk, "body.kind": "image", "body.file": upload}
    )
    page = text(response)
    assert '<span class="badge badge-ok">201</span>' in page and "file_" in page
    assert "file=@./a.png" in page


def open_stream(client, key, message: str, **headers):
    fields = {"body.model": "gpt-5-2-chat", "body.message": message, **headers}
    response = send(client, key, "streamChatCompletion", **fields)
    stream_url = re.search(r'data-workbench-stream="([^"]+)"', text(response)).group(1)
    return stream_url, client.get(stream_url)


def test_a_streamed_operation_is_relayed_event_by_event(operator, documented):
    stream_url, stream = open_stream(operator, documented, "hello")
    events = b"".join(stream.streaming_content).decode()
    assert "event: head" in events and '"status": 200' in events
    assert events.count("event: upstream") >= 3 and '"event": "done"' in events
    assert events.rstrip().splitlines()[-2] == "event: end"
    entry = LedgerEntry.objects.get(operation="streamChatCompletion")
    assert entry.http_status == 200 and entry.credits_final is not None
    assert operator.get(stream_url).status_code == 204


# A stream hands its database connection back while it waits (on PostgreSQL): no test
# transaction may be wrapped around it.
@pytest.mark.django_db(transaction=True)
def test_a_stopped_stream_closes_upstream_and_keeps_the_ledger_row(operator, documented):
    _url, stream = open_stream(operator, documented, "long answer please")
    chunks = iter(stream.streaming_content)
    assert b"retry" in next(chunks) and b"event: head" in next(chunks)
    stream.close()
    entry = LedgerEntry.objects.get(operation="streamChatCompletion")
    assert entry.error_code == "stopped"


def test_refresh_on_demand_keeps_the_copy_when_the_api_fails(owner_client, documented, monkeypatch):
    owner_client.get(EXPLORER)
    before = ApiDocument.objects.get().fetched_at
    from rivya_dashboard.sandbox.models import SandboxSettings

    SandboxSettings.objects.update(public_api_disabled=True)
    response = owner_client.post(reverse("workbench:refresh"), {"key": documented.pk}, follow=True)
    page = text(response)
    assert "Could not refresh the API" in page and "Showing the saved copy" in page
    document = ApiDocument.objects.get()
    assert document.fetched_at == before and document.error
    assert "Submit an image" in page


def test_housekeeping_refreshes_a_stale_document(documented, settings):
    documents.do_refresh(documented)
    ApiDocument.objects.update(fetched_at=timezone.now() - timedelta(days=1))
    tasks.housekeeping.call()
    assert timezone.now() - ApiDocument.objects.get().fetched_at < timedelta(minutes=1)


@pytest.fixture
def fake_key(members, monkeypatch):
    """A custom-environment key on another API whose document follows the contract."""
    fake = FakeApi()
    session = in_process_session(fake)
    monkeypatch.setattr(transport, "session_for", lambda environment: session)
    key = ApiKey.objects.create(
        label="Other API",
        environment="custom",
        base_url=FAKE_BASE_URL,
        added_by=members[Role.OWNER],
    )
    key.store_secret("rvya_sk_" + "F" * 36 + "fake")
    key.save()
    key.fake = fake
    return key


def test_another_base_url_gets_its_own_operations_forms_and_answers(owner_client, fake_key):
    page = text(owner_client.get(EXPLORER, {"op": "buildGadget"}))
    assert "List the gadgets" in page and "A note as plain text" in page
    assert "Submit an image" not in page
    assert 'name="body.size.width"' in page and '<select name="body.shiny"' in page
    assert "could not be read" in page and "points nowhere" in page
    response = send(
        owner_client,
        fake_key,
        "buildGadget",
        **{"body.name": "gizmo", "body.size.width": "3", "body.shiny": "true"},
    )
    assert '<span class="badge badge-ok">201</span>' in text(response)
    sent = json.loads(fake_key.fake.requests[-1]["body"])
    assert sent == {"name": "gizmo", "shiny": True, "size": {"width": 3}}


def test_a_response_that_is_not_json_is_shown_as_text(owner_client, fake_key):
    response = send(owner_client, fake_key, "readNote", **{"path.noteId": "a/b"})
    page = text(response)
    assert "Not JSON; shown as text." in page and "plain text, not JSON �" in page
    assert fake_key.fake.requests[-1]["path"] == "/notes/a/b"


def test_scopes_the_document_declares_decide_the_action(clients, members, fake_key):
    KeyGrant.objects.create(member=members[Role.OPERATOR], key=fake_key, actions=["generate"])
    operator = clients[Role.OPERATOR]
    gadgets = text(operator.get(EXPLORER, {"op": "listGadgets"}))
    assert "Browse models and credits" in gadgets and "does not include" in gadgets
    build = send(operator, fake_key, "buildGadget", raw_body='{"name": "x", "size": {"width": 1}}')
    assert build.status_code == 403 and "only owners and admins" in text(build)


def test_a_document_that_is_not_an_object_says_so(owner_client, fake_key):
    fake_key.fake.document = ["not", "a", "document"]
    page = text(owner_client.get(EXPLORER))
    assert "Reading the document failed" in page and "not JSON" in page

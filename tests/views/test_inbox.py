"""The Inbox pages: settings and secrets, the request list, the doctor, replay and forwarding,
and jobs updated by a verified webhook."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.template import Context, Template
from django.urls import reverse

from rivya_dashboard.accounts.models import AuditEvent, Role
from rivya_dashboard.console.models import Generation
from rivya_dashboard.vault.models import ApiKey, KeyGrant
from rivya_dashboard.webhooks import forwarding, inboxes
from rivya_dashboard.webhooks.models import ForwardAttempt, Inbox, InboxRequest
from tests.views.test_inbox_receiver import (
    OLD_SECRET,
    SECRET,
    event_body,
    post,
    signed,
    signed_inbox,
)

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    settings.TASKS = IMMEDIATE


@pytest.fixture
def inbox(members) -> Inbox:
    return signed_inbox(members[Role.ADMIN])


@pytest.fixture
def inbox_operator(members, inbox) -> None:
    """The operator holds "Manage webhooks" on the key the inbox is linked to, so the visibility
    rule shows them the inbox and its requests."""
    key = ApiKey.objects.create(label="Inbox key", base_url="https://rivya.ai/api/v1", last4="abcd")
    KeyGrant.objects.create(member=members[Role.OPERATOR], key=key, actions=["manage_webhooks"])
    Inbox.objects.filter(pk=inbox.pk).update(key=key)
    inbox.key = key


class Target:
    """A local HTTP server standing in for a developer's machine; it records what it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes]] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                target.received.append((dict(self.headers), self.rfile.read(length)))
                self.send_response(202)
                self.end_headers()
                self.wfile.write(b"thanks")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def target() -> Iterator[Target]:
    local = Target()
    thread = threading.Thread(target=local.server.serve_forever, daemon=True)
    thread.start()
    yield local
    local.server.shutdown()


def test_admins_create_inboxes_and_operators_cannot(clients):
    created = clients[Role.ADMIN].post(reverse("inbox-create"), {"name": "Dev"})
    assert created.status_code == 302
    assert Inbox.objects.get().name == "Dev"
    assert clients[Role.OPERATOR].post(reverse("inbox-create"), {"name": "X"}).status_code == 403
    assert AuditEvent.objects.filter(action="inbox.created").count() == 1


def test_an_api_key_is_refused_as_a_signing_secret(clients, inbox):
    url = reverse("inbox-secret", args=[inbox.pk])
    response = clients[Role.ADMIN].post(url, {"secret": "rvya_sk_" + "a" * 40})
    assert response.status_code == 400
    assert b"This is a Rivya API key" in response.content
    inbox.refresh_from_db()
    assert inbox.accepted_secrets() == [SECRET]


def test_a_stored_secret_is_never_shown_again(clients, inbox):
    url = reverse("inbox-secret", args=[inbox.pk])
    assert clients[Role.ADMIN].post(url, {"secret": OLD_SECRET}).status_code == 302
    page = clients[Role.ADMIN].get(reverse("inbox-detail", args=[inbox.pk]))
    assert OLD_SECRET.encode() not in page.content and SECRET.encode() not in page.content
    assert b"whsec_oo" in page.content
    audit = AuditEvent.objects.filter(action="inbox.secret_added").last()
    assert OLD_SECRET not in json.dumps(audit.detail)


def test_the_list_filters_searches_and_refreshes_as_a_partial(clients, inbox, inbox_operator):
    for event_id in ("evt_alpha", "evt_beta"):
        body = event_body(event_id)
        post(inbox, body, **signed(body, event_id=event_id))
    post(inbox, b"not json", HTTP_RIVYA_WEBHOOK_ID="evt_gamma")
    url = reverse("inbox-detail", args=[inbox.pk])
    page = clients[Role.OPERATOR].get(url)
    assert page.content.count(b'data-verdict="') == 3
    searched = clients[Role.OPERATOR].get(url, {"q": "alpha"}, headers={"HX-Request": "true"})
    assert searched.content.count(b'data-verdict="') == 1
    assert b"<html" not in searched.content
    rejected = clients[Role.OPERATOR].get(url, {"verdict": "rejected"})
    assert rejected.content.count(b'data-verdict="rejected"') == 1


def test_the_request_page_explains_a_delivery_signed_with_a_rotated_out_secret(
    clients, inbox, members, inbox_operator
):
    body = event_body()
    post(inbox, body, **signed(body, secret=OLD_SECRET))
    inboxes.do_add_secret(members[Role.ADMIN], inbox, OLD_SECRET)
    inboxes.do_add_secret(members[Role.ADMIN], inbox, "whsec_" + "n" * 32)
    inboxes.do_add_secret(members[Role.ADMIN], inbox, "whsec_" + "m" * 32)
    row = InboxRequest.objects.get()
    page = clients[Role.OPERATOR].get(reverse("inbox-request", args=[row.pk]))
    assert b'data-cause="rotated_secret"' in page.content
    assert b"which this inbox no longer accepts" in page.content


def test_admins_build_a_signed_curl_command_operators_cannot(clients, inbox, inbox_operator):
    body = event_body()
    post(inbox, body, **signed(body))
    row = InboxRequest.objects.get()
    url = reverse("inbox-request", args=[row.pk])
    refused = clients[Role.OPERATOR].get(url, {"secret": 0}, headers={"HX-Request": "true"})
    assert b"curl -sS" not in refused.content
    response = clients[Role.ADMIN].get(url, {"secret": 0}, headers={"HX-Request": "true"})
    assert b"curl -sS -X POST" in response.content
    assert b"Rivya-Webhook-Signature: v1=" in response.content
    assert SECRET.encode() not in response.content


def test_the_paste_doctor_finds_a_body_changed_after_signing(clients, inbox, inbox_operator):
    body = event_body()
    headers = signed(body)
    lines = "\n".join(
        f"{name[5:].replace('_', '-').title()}: {value}" for name, value in headers.items()
    )
    response = clients[Role.OPERATOR].post(
        reverse("inbox-doctor", args=[inbox.pk]),
        {"headers": lines, "body": body.decode() + "\n"},
    )
    assert response.status_code == 200
    assert b'data-cause="newline_added"' in response.content
    assert not InboxRequest.objects.exists()


def test_create_an_endpoint_opens_the_new_endpoint_form_with_the_inbox_chosen(
    clients, members, vault_key
):
    linked = inboxes.do_create_inbox(members[Role.ADMIN], name="Linked", key=vault_key)
    page = clients[Role.ADMIN].get(reverse("inbox-detail", args=[linked.pk])).content.decode()
    target = f"{reverse('webhook-create', args=[vault_key.pk])}?inbox={linked.pk}"
    assert f'href="{target}">Create an endpoint that delivers here' in page
    form = clients[Role.ADMIN].get(target).content.decode()
    assert f'<option value="{linked.pk}" selected>Linked</option>' in form


def test_the_request_page_shows_the_raw_body_to_copy_and_the_formatted_one(
    clients, inbox, inbox_operator
):
    body = event_body()
    post(inbox, body, **signed(body))
    row = InboxRequest.objects.get()
    html = clients[Role.OPERATOR].get(reverse("inbox-request", args=[row.pk])).content.decode()
    block = '<pre tabindex="0" class="code-block raw-body" id="raw-body">{{ b }}</pre>'
    raw = Template(block).render(Context({"b": body.decode()}))
    assert raw in html
    assert 'data-copy="raw-body"' in html
    assert "&quot;data&quot;: {\n" in html


def test_the_doctor_says_a_pasted_formatted_body_was_only_re_serialized(
    clients, inbox, inbox_operator
):
    body = event_body()
    headers = signed(body)
    post(inbox, body, **headers)
    lines = "\n".join(
        f"{name[5:].replace('_', '-').title()}: {value}" for name, value in headers.items()
    )
    row = InboxRequest.objects.get()
    response = clients[Role.OPERATOR].post(
        reverse("inbox-doctor", args=[inbox.pk]),
        {"headers": lines, "body": row.pretty_body.replace("\n", "\r\n")},
    )
    assert b'data-cause="body_reserialized"' in response.content
    assert b"whitespace or key order changed; verify the raw bytes" in response.content


def test_replay_to_loopback_is_refused_for_operators_with_the_reason(
    clients, inbox, settings, inbox_operator
):
    settings.RIVYA_ALLOW_LOCAL_FORWARD = True
    body = event_body()
    post(inbox, body, **signed(body))
    row = InboxRequest.objects.get()
    response = clients[Role.OPERATOR].post(
        reverse("inbox-replay", args=[row.pk]),
        {"target_url": "http://127.0.0.1:9/hook", "headers": "", "body": body.decode()},
    )
    assert response.status_code == 400
    assert b"owner or admin role" in response.content
    assert not ForwardAttempt.objects.exists()


def test_a_header_http_cannot_carry_is_refused_with_the_reason(clients, inbox, settings, target):
    settings.RIVYA_ALLOW_LOCAL_FORWARD = True
    body = event_body()
    post(inbox, body, **signed(body))
    row = InboxRequest.objects.get()
    response = clients[Role.ADMIN].post(
        reverse("inbox-replay", args=[row.pk]),
        {"target_url": target.url, "headers": "X-Note: \u2603", "body": body.decode()},
    )
    assert response.status_code == 400
    assert "only Latin-1 text" in response.content.decode()
    assert not target.received


def test_admins_replay_edited_and_re_signed_to_a_local_target(clients, inbox, settings, target):
    settings.RIVYA_ALLOW_LOCAL_FORWARD = True
    body = event_body()
    post(inbox, body, **signed(body))
    row = InboxRequest.objects.get()
    edited = body.replace(b"task_1", b"task_2")
    response = clients[Role.ADMIN].post(
        reverse("inbox-replay", args=[row.pk]),
        {
            "target_url": target.url,
            "headers": "Content-Type: application/json\nX-Debug: 1",
            "body": edited.decode(),
            "resign": "0",
        },
    )
    assert response.status_code == 302
    sent = ForwardAttempt.objects.get()
    assert (sent.response_status, sent.resigned, sent.edited) == (202, True, True)
    assert sent.response_excerpt == "thanks"
    headers, received = target.received[0]
    assert received == edited
    assert headers["X-Debug"] == "1"
    from rivya_dashboard.rivya import signing

    assert signing.verify(SECRET, headers, received).msg_id == "evt_1"
    assert AuditEvent.objects.filter(action="inbox.replayed").count() == 1


def test_bulk_replay_confirms_the_count(
    clients, inbox, settings, target, django_capture_on_commit_callbacks
):
    settings.RIVYA_ALLOW_LOCAL_FORWARD = True
    for event_id in ("evt_a", "evt_b"):
        body = event_body(event_id)
        post(inbox, body, **signed(body, event_id=event_id))
    url = reverse("inbox-bulk-replay", args=[inbox.pk])
    page = clients[Role.ADMIN].get(url, {"verdict": "verified"})
    assert b"Replay 2 requests" in page.content
    stale = clients[Role.ADMIN].post(
        url, {"verdict": "verified", "target_url": target.url, "confirm_count": 5}
    )
    assert b"now holds 2 requests" in stale.content
    assert not target.received
    with django_capture_on_commit_callbacks(execute=True):
        done = clients[Role.ADMIN].post(
            url, {"verdict": "verified", "target_url": target.url, "confirm_count": 2}
        )
    assert done.status_code == 302
    assert len(target.received) == 2
    audit = AuditEvent.objects.get(action="inbox.bulk_replayed")
    assert audit.detail["count"] == 2


def test_bulk_replay_counts_the_filtered_selection_before_a_target_is_given(clients, inbox):
    body = event_body()
    post(inbox, body, **signed(body))
    post(inbox, b"not signed")
    page = clients[Role.ADMIN].get(
        reverse("inbox-bulk-replay", args=[inbox.pk]), {"verdict": "verified"}
    )
    assert b"Replay 1 request" in page.content
    assert b"errorlist" not in page.content


def test_live_forwarding_sends_every_request_on(
    inbox, members, settings, target, django_capture_on_commit_callbacks
):
    settings.RIVYA_ALLOW_LOCAL_FORWARD = True
    inboxes.do_update_settings(
        members[Role.ADMIN], inbox, {"forward_url": target.url, "forward_enabled": True}
    )
    inbox.refresh_from_db()
    body = event_body()
    with django_capture_on_commit_callbacks(execute=True):
        post(inbox, body, **signed(body))
    assert target.received[0][1] == body
    assert ForwardAttempt.objects.get().kind == "forward"


def test_settings_refuse_a_private_forward_target_for_operators_reason_shown(clients, inbox):
    response = clients[Role.ADMIN].post(
        reverse("inbox-settings", args=[inbox.pk]),
        {
            "name": "Local",
            "response_status": 200,
            "forward_url": "http://10.1.2.3/hook",
            "forward_enabled": "on",
        },
    )
    assert response.status_code == 400
    assert b"private or reserved address" in response.content


@pytest.fixture
def tracked_job(vault_key, members) -> Generation:
    return Generation.objects.create(
        member=members[Role.OPERATOR],
        member_name="operator",
        key=vault_key,
        key_label=vault_key.label,
        model_id="z-image",
        idempotency_key="console-1-n",
        remote_id="task_1",
        status="processing",
        next_poll_at=None,
    )


def update_path_shown(client, job: Generation) -> str:
    return client.get(
        reverse("generation-status", args=[job.pk]), headers={"HX-Request": "true"}
    ).content.decode()


def test_a_verified_generation_event_updates_the_tracked_job(
    clients, members, vault_key, tracked_job, django_capture_on_commit_callbacks
):
    inbox = inboxes.do_create_inbox(members[Role.ADMIN], name="Jobs", key=vault_key)
    inboxes.do_add_secret(members[Role.ADMIN], inbox, SECRET)
    inbox.refresh_from_db()
    data = {"id": "task_1", "status": "succeeded", "final_credits": 4, "result": {"urls": []}}
    payload = {"id": "evt_9", "type": "generation.succeeded", "data": data, "test": False}
    body = json.dumps(payload).encode()
    with django_capture_on_commit_callbacks(execute=True):
        assert post(inbox, body, **signed(body, event_id="evt_9")).status_code == 200
    tracked_job.refresh_from_db()
    assert tracked_job.status == "succeeded" and tracked_job.final_credits == 4
    shown = update_path_shown(clients[Role.OWNER], tracked_job)
    assert 'data-update-path="webhook"' in shown
    assert "evt_9" in shown


def test_the_event_is_applied_as_the_receiver_parsed_it(
    members, vault_key, tracked_job, django_capture_on_commit_callbacks, monkeypatch
):
    """The task gets the generation object from the receiver: it never reads the body again."""
    inbox = inboxes.do_create_inbox(members[Role.ADMIN], name="Jobs", key=vault_key)
    inboxes.do_add_secret(members[Role.ADMIN], inbox, SECRET)
    inbox.refresh_from_db()
    data = {"id": "task_1", "status": "failed", "error": {"code": "nsfw", "message": "No."}}
    payload = {"id": "evt_7", "type": "generation.failed", "data": data, "test": False}
    body = json.dumps(payload).encode()
    monkeypatch.setattr(
        InboxRequest, "body_bytes", property(lambda row: pytest.fail("the body was re-read"))
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post(inbox, body, **signed(body, event_id="evt_7")).status_code == 200
    tracked_job.refresh_from_db()
    assert (tracked_job.status, tracked_job.error_code) == ("failed", "nsfw")
    assert InboxRequest.objects.get().generation_applied_at is not None


def test_an_unverified_event_does_not_touch_the_job(
    members, vault_key, tracked_job, django_capture_on_commit_callbacks
):
    inbox = inboxes.do_create_inbox(members[Role.ADMIN], name="Open", key=vault_key)
    payload = {"id": "evt_9", "type": "generation.failed", "data": {"id": "task_1"}}
    with django_capture_on_commit_callbacks(execute=True):
        assert post(inbox, json.dumps(payload).encode()).status_code == 200
    tracked_job.refresh_from_db()
    assert tracked_job.status == "processing"


def test_a_job_finished_by_polling_says_so(clients, tracked_job):
    tracked_job.status = "succeeded"
    tracked_job.save()
    assert 'data-update-path="polling"' in update_path_shown(clients[Role.OWNER], tracked_job)


def test_stored_requests_keep_the_exact_bytes(inbox):
    body = b'{"id":"evt_1",  "type":"generation.succeeded"}\r\n'
    post(inbox, body, **signed(body))
    assert InboxRequest.objects.get().body_bytes == body


def test_settings_changes_are_audited_by_name(clients, inbox):
    response = clients[Role.ADMIN].post(
        reverse("inbox-settings", args=[inbox.pk]),
        {"name": "Renamed", "response_status": 503, "forward_url": ""},
    )
    assert response.status_code == 302
    inbox.refresh_from_db()
    assert (inbox.name, inbox.response_status) == ("Renamed", 503)
    audit = AuditEvent.objects.get(action="inbox.settings_changed")
    assert audit.detail == {"name": "Renamed", "response_status": 503}


def test_deleting_an_inbox_makes_its_url_answer_404(clients, inbox):
    body = event_body()
    post(inbox, body, **signed(body))
    clients[Role.ADMIN].post(reverse("inbox-delete", args=[inbox.pk]))
    assert not Inbox.objects.exists()
    assert post(inbox, body, **signed(body)).status_code == 404


@pytest.mark.parametrize(
    ("role", "setting", "allowed"),
    [
        (Role.OWNER, True, True),
        (Role.ADMIN, True, True),
        (Role.ADMIN, False, False),
        (Role.OPERATOR, True, False),
    ],
)
def test_loopback_targets_need_admin_and_the_setting(members, settings, role, setting, allowed):
    settings.RIVYA_ALLOW_LOCAL_FORWARD = setting
    local = forwarding.may_reach_local(members[role])
    assert local is allowed
    if allowed:
        assert forwarding.check_target("http://127.0.0.1:8001/hook?x=1", allow_local=local)
    else:
        with pytest.raises(forwarding.TargetRefused):
            forwarding.check_target("http://127.0.0.1:8001/hook", allow_local=local)


def test_link_local_metadata_is_refused_even_for_admins(settings):
    settings.RIVYA_ALLOW_LOCAL_FORWARD = True
    with pytest.raises(forwarding.TargetRefused):
        forwarding.check_target("http://169.254.169.254/latest/meta-data", allow_local=True)

"""The inbox receiver: every request stored with its verdict, the right status, duplicates once."""

import json
import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from rivya_dashboard.accounts.models import AuditEvent, Role, User
from rivya_dashboard.rivya import signing
from rivya_dashboard.webhooks import inboxes, receiver
from rivya_dashboard.webhooks.models import Inbox, InboxRequest, Verdict

SECRET = "whsec_" + "k" * 32
OLD_SECRET = "whsec_" + "o" * 32


def event_body(event_id: str = "evt_1", event_type: str = "generation.succeeded") -> bytes:
    payload = {"id": event_id, "object": "event", "type": event_type, "data": {"id": "task_1"}}
    return json.dumps(payload, separators=(",", ":")).encode()


def signed(body: bytes, secret: str = SECRET, event_id: str = "evt_1", at: int | None = None):
    headers = signing.sign(secret, body, msg_id=event_id, timestamp=at or int(time.time()))
    return {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}


def post(inbox: Inbox, body: bytes, **headers: str):
    url = reverse("inbox-receive", args=[inbox.token])
    return Client().post(url, data=body, content_type="application/json", **headers)


def signed_inbox(admin: User) -> Inbox:
    """A local inbox (no key) that verifies with SECRET."""
    created = inboxes.do_create_inbox(admin, name="Local", key=None)
    inboxes.do_add_secret(admin, created, SECRET)
    created.refresh_from_db()
    return created


@pytest.fixture
def inbox(members) -> Inbox:
    return signed_inbox(members[Role.ADMIN])


def test_it_stores_a_verified_delivery_and_answers_200(inbox):
    body = event_body()
    response = post(inbox, body, **signed(body), REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    row = InboxRequest.objects.get()
    assert row.verdict == Verdict.VERIFIED
    assert row.body_bytes == body
    assert row.event_id == "evt_1"
    assert row.event_type == "generation.succeeded"
    assert row.secret_state == "current"
    assert row.headers["Rivya-Webhook-Id"] == "evt_1"
    assert row.source_ip == "203.0.113.9"


def test_it_acknowledges_a_duplicate_and_stores_it_once(inbox):
    body = event_body()
    first = post(inbox, body, **signed(body))
    second = post(inbox, body, **signed(body))
    assert first.status_code == second.status_code == 200
    assert second.json()["duplicate"] is True
    row = InboxRequest.objects.get()
    assert row.duplicate_count == 1


@pytest.mark.parametrize(
    ("mangle", "status", "code"),
    [
        (lambda h: {k: v for k, v in h.items() if "SIGNATURE" not in k}, 400, "missing_header"),
        (lambda h: {**h, "HTTP_RIVYA_WEBHOOK_SIGNATURE": "v1=zz"}, 400, "malformed_header"),
        (lambda h: {**h, "HTTP_RIVYA_WEBHOOK_ID": "evt_other"}, 401, "id_mismatch"),
    ],
)
def test_it_refuses_bad_signatures_with_a_4xx_and_keeps_them(inbox, mangle, status, code):
    body = event_body()
    response = post(inbox, body, **mangle(signed(body)))
    assert response.status_code == status
    row = InboxRequest.objects.get()
    assert (row.verdict, row.reason_code, row.response_status) == (Verdict.REJECTED, code, status)
    assert row.acked_event_id is None


def test_it_refuses_a_wrong_secret_and_a_stale_timestamp(inbox):
    body = event_body()
    assert post(inbox, body, **signed(body, secret=OLD_SECRET)).status_code == 401
    stale = signed(body, at=int(time.time()) - 3600)
    assert post(inbox, body, **stale).status_code == 401
    codes = set(InboxRequest.objects.values_list("reason_code", flat=True))
    assert codes == {"no_matching_signature", "timestamp_too_old"}


def test_it_accepts_the_previous_secret_during_a_rotation_overlap(inbox, members):
    inboxes.do_add_secret(members[Role.ADMIN], inbox, "whsec_" + "n" * 32)
    body = event_body()
    assert post(inbox, body, **signed(body)).status_code == 200
    assert InboxRequest.objects.get().secret_state == "previous"
    inboxes.do_end_overlap(members[Role.ADMIN], inbox)
    body = event_body("evt_2")
    assert post(inbox, body, **signed(body, event_id="evt_2")).status_code == 401


def test_it_answers_413_over_the_cap_without_reading_the_body(inbox, settings):
    settings.RIVYA_INBOX_MAX_BODY_KB = 1
    body = b'{"id":"evt_big","pad":"' + b"x" * 2000 + b'"}'
    response = post(inbox, body, **signed(body, event_id="evt_big"))
    assert response.status_code == 413
    row = InboxRequest.objects.get()
    assert (row.verdict, row.body_size, row.body_bytes) == (Verdict.TOO_LARGE, len(body), b"")


def test_it_stores_non_json_and_wrong_methods_as_malformed(members):
    inbox = inboxes.do_create_inbox(members[Role.ADMIN], name="Open", key=None)
    url = reverse("inbox-receive", args=[inbox.token])
    assert Client().post(url, data=b"hello", content_type="text/plain").status_code == 400
    assert Client().get(url).status_code == 405
    verdicts = list(InboxRequest.objects.values_list("verdict", "reason_code"))
    assert sorted(verdicts) == [
        (Verdict.MALFORMED, "method_not_allowed"),
        (Verdict.MALFORMED, "not_json"),
    ]


def test_an_inbox_without_secrets_keeps_requests_unverified_and_dedups(members):
    inbox = inboxes.do_create_inbox(members[Role.ADMIN], name="Open", key=None)
    body = event_body()
    assert post(inbox, body).status_code == 200
    assert post(inbox, body).json()["duplicate"] is True
    assert InboxRequest.objects.get().verdict == Verdict.UNVERIFIED


def test_an_unknown_token_is_404_whatever_exists(inbox):
    body = event_body()
    for token in ("nope", inbox.token[:-1], inbox.token + "x"):
        response = Client().post(f"/hooks/{token}/", data=body, content_type="application/json")
        assert response.status_code == 404
        assert response.json() == {"error": "not_found"}
    assert not InboxRequest.objects.exists()


def test_a_rehearsal_status_is_answered_and_retries_are_stored_again(inbox, members):
    inboxes.do_update_settings(members[Role.ADMIN], inbox, {"response_status": 500})
    body = event_body()
    assert post(inbox, body, **signed(body)).status_code == 500
    assert post(inbox, body, **signed(body)).status_code == 500
    assert InboxRequest.objects.filter(verdict=Verdict.VERIFIED).count() == 2
    inboxes.do_update_settings(members[Role.ADMIN], inbox, {"response_status": 200})
    assert post(inbox, body, **signed(body)).status_code == 200
    assert post(inbox, body, **signed(body)).json()["duplicate"] is True
    assert InboxRequest.objects.count() == 3


def test_unreadable_secrets_answer_503_so_the_sender_retries(inbox):
    Inbox.objects.filter(pk=inbox.pk).update(secrets_blob="v1:kgone:AAAAAAAAAAAAAAAAAAAAAAAA")
    receiver.forget_inbox(inbox.token)
    body = event_body()
    assert post(inbox, body, **signed(body)).status_code == 503
    assert InboxRequest.objects.get().reason_code == "secrets_unreadable"


def test_secrets_are_stored_encrypted_and_never_audited(inbox):
    raw = Inbox.objects.filter(pk=inbox.pk).values_list("secrets_blob", flat=True).get()
    assert SECRET not in raw and raw.startswith("v1:")
    assert inbox.accepted_secrets() == [SECRET]
    for event in AuditEvent.objects.all():
        assert SECRET not in json.dumps(event.detail)


def test_concurrent_copies_of_one_event_are_stored_once(file_backed_db, members):
    inbox = inboxes.do_create_inbox(members[Role.ADMIN], name="Race", key=None)
    body = event_body("evt_race")
    statuses: list[int] = []

    def send() -> None:
        statuses.append(post(inbox, body).status_code)
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    row = InboxRequest.objects.get()
    assert row.duplicate_count == 7

"""Inbox limits: count and size with oldest-first pruning, retention, a capped body for refused
requests, a per-inbox rate limit answered 429 with Retry-After, and all of it on the inbox page."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.webhooks import inbox_limits, inboxes, receiver
from rivya_dashboard.webhooks.models import Inbox, InboxRequest
from tests.views.test_inbox_receiver import event_body, post, signed, signed_inbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_inbox(members) -> Inbox:
    """An inbox without a secret: it stores whatever anyone sends, the case a flood abuses."""
    return inboxes.do_create_inbox(members[Role.ADMIN], name="Open", key=None)


def flood(inbox: Inbox, count: int, size: int = 100) -> list:
    return [post(inbox, b"x" * size) for _ in range(count)]


def totals(inbox: Inbox) -> tuple[int, int]:
    rows = InboxRequest.objects.filter(inbox=inbox)
    return rows.count(), sum(inbox_limits.footprint(row) for row in rows)


def test_it_keeps_the_newest_requests_within_the_count_limit(open_inbox):
    open_inbox.max_requests = 5
    open_inbox.save()

    answers = flood(open_inbox, 12)

    assert {answer.status_code for answer in answers} == {400}  # not JSON: refused, but stored
    kept = list(InboxRequest.objects.filter(inbox=open_inbox).order_by("pk"))
    assert len(kept) == 5
    assert kept[0].pk == max(InboxRequest.objects.values_list("pk", flat=True)) - 4
    open_inbox.refresh_from_db()
    assert (open_inbox.stored_requests, open_inbox.pruned_requests) == (5, 7)
    assert open_inbox.stored_bytes == totals(open_inbox)[1]


def test_it_keeps_the_stored_bytes_within_the_size_limit(open_inbox, settings):
    settings.RIVYA_INBOX_MAX_MB = 1
    settings.RIVYA_INBOX_MAX_BODY_KB = 256
    body = b'{"pad": "' + b"y" * 200_000 + b'"}'

    for _ in range(12):
        assert post(open_inbox, body).status_code == 200

    count, size = totals(open_inbox)
    assert size <= 1024 * 1024 and count == 3
    open_inbox.refresh_from_db()
    assert (open_inbox.stored_requests, open_inbox.stored_bytes) == (count, size)


def test_a_refused_requests_body_is_kept_only_up_to_the_cap(members, settings):
    settings.RIVYA_INBOX_REFUSED_BODY_KB = 1
    inbox = signed_inbox(members[Role.ADMIN])
    body = b'{"id": "evt_1", "pad": "' + b"z" * 5000 + b'"}'

    response = post(inbox, body, HTTP_RIVYA_WEBHOOK_ID="evt_1")

    assert response.status_code == 400
    row = InboxRequest.objects.get()
    assert len(row.body_bytes) == 1024 and row.body_size == len(body)
    assert row.body_truncated
    page = Client()
    page.force_login(members[Role.ADMIN])
    shown = page.get(reverse("inbox-request", args=[row.pk])).content.decode()
    assert f"Only the first 1024 of {len(body)} bytes" in shown


def test_a_verified_body_is_kept_whole(members, settings):
    settings.RIVYA_INBOX_REFUSED_BODY_KB = 1
    inbox = signed_inbox(members[Role.ADMIN])
    body = event_body() + b" " * 3000

    assert post(inbox, body, **signed(body)).status_code == 200
    assert InboxRequest.objects.get().body_bytes == body


def test_the_rate_limit_answers_429_with_retry_after_and_stores_nothing(open_inbox):
    open_inbox.rate_per_minute = 3
    open_inbox.save()
    receiver.forget_inbox(open_inbox.token)

    answers = flood(open_inbox, 6)

    assert [a.status_code for a in answers[:3]] == [400, 400, 400]
    refused = answers[3:]
    assert {a.status_code for a in refused} == {429}
    assert all(1 <= int(a["Retry-After"]) <= 60 for a in refused)
    assert "at most 3 requests a minute" in refused[0].json()["message"]
    assert InboxRequest.objects.filter(inbox=open_inbox).count() == 3
    open_inbox.refresh_from_db()
    assert open_inbox.rate_refused >= 1 and open_inbox.rate_refused_at is not None


def test_the_rate_window_reopens_the_next_minute(open_inbox, monkeypatch):
    open_inbox.rate_per_minute = 1
    open_inbox.save()
    now = [1_800_000_010.0]
    monkeypatch.setattr(receiver.time, "time", lambda: now[0])

    assert post(open_inbox, b"a").status_code == 400
    blocked = post(open_inbox, b"b")
    now[0] += 60

    assert blocked.status_code == 429 and blocked["Retry-After"] == "50"
    assert post(open_inbox, b"c").status_code == 400


def test_retention_removes_old_requests_and_recounts(open_inbox, settings):
    settings.RIVYA_INBOX_RETENTION_DAYS = 7
    flood(open_inbox, 4)
    InboxRequest.objects.filter(pk__in=InboxRequest.objects.order_by("pk")[:3]).update(
        received_at=timezone.now() - timedelta(days=8)
    )
    Inbox.objects.filter(pk=open_inbox.pk).update(stored_requests=99, stored_bytes=123456)

    removed = inbox_limits.do_enforce_all()

    assert removed == 3
    open_inbox.refresh_from_db()
    assert (open_inbox.stored_requests, open_inbox.stored_bytes) == totals(open_inbox)
    assert open_inbox.stored_requests == 1


def test_admins_set_an_inbox_s_limits_and_a_lower_one_applies_at_once(clients, open_inbox):
    flood(open_inbox, 6)
    url = reverse("inbox-settings", args=[open_inbox.pk])
    fields = {"name": "Open", "response_status": 200, "forward_url": ""}

    saved = clients[Role.ADMIN].post(
        url, {**fields, "max_requests": 2, "max_megabytes": 5, "retention_days": 3,
              "rate_per_minute": 60}
    )  # fmt: skip

    assert saved.status_code == 302
    open_inbox.refresh_from_db()
    assert (open_inbox.max_requests, open_inbox.max_megabytes) == (2, 5)
    assert (open_inbox.retention_days, open_inbox.rate_per_minute) == (3, 60)
    assert InboxRequest.objects.filter(inbox=open_inbox).count() == 2


@pytest.mark.parametrize(
    "bad", [{"max_requests": 0}, {"rate_per_minute": -1}, {"max_megabytes": 10**9}]
)
def test_a_limit_out_of_range_is_refused_and_nothing_changes(clients, open_inbox, bad):
    url = reverse("inbox-settings", args=[open_inbox.pk])
    fields = {"name": "Renamed", "response_status": 200, "forward_url": "", **bad}

    response = clients[Role.ADMIN].post(url, fields)

    assert response.status_code == 400
    open_inbox.refresh_from_db()
    assert open_inbox.name == "Open"
    assert (open_inbox.max_requests, open_inbox.rate_per_minute) == (None, None)


def test_the_inbox_page_shows_the_limits_and_what_they_did(clients, open_inbox, settings):
    settings.RIVYA_INBOX_MAX_REQUESTS = 2
    settings.RIVYA_INBOX_RATE_PER_MINUTE = 4
    flood(open_inbox, 6)

    page = clients[Role.ADMIN].get(reverse("inbox-detail", args=[open_inbox.pk]))

    text = page.content.decode()
    assert "2 / 2" in text and "30 days" in text
    assert "4 a minute; more are answered 429" in text
    assert "2 oldest requests were removed to stay within the limits." in text
    assert "refused with 429 over the rate limit, the last at" in text

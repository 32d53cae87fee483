"""The Webhooks pages: remote endpoints through a team key, against the sandbox in-process."""

import json

import pytest
from django.urls import reverse

from rivya_dashboard.accounts.models import AuditEvent, Role
from rivya_dashboard.sandbox import webhooks_targets
from rivya_dashboard.sandbox.models import WebhookEndpoint, WebhookSettings
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks import alerts, inboxes
from rivya_dashboard.webhooks.models import FailureAlert, Inbox

DUMMY = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


@pytest.fixture(autouse=True)
def _no_worker_no_dns(settings, monkeypatch):
    settings.TASKS = DUMMY
    # The sandbox resolves target names; example.com stands for any public host, offline.
    monkeypatch.setattr(
        webhooks_targets,
        "resolve",
        lambda host, port: [host if host[0].isdigit() else "93.184.216.34"],
    )


@pytest.fixture
def local_targets(db):
    WebhookSettings.load()
    WebhookSettings.objects.update(allow_local_targets=True)


def create(client, key: ApiKey, **data):
    fields = {
        "name": "Prod hook",
        "url": "https://example.com/hook",
        "event_types": ["generation.succeeded"],
    }
    return client.post(reverse("webhook-create", args=[key.pk]), {**fields, **data})


def endpoint_url(name: str, key: ApiKey, endpoint_id: str) -> str:
    return reverse(name, kwargs={"key_pk": key.pk, "endpoint_id": endpoint_id})


def test_it_lists_endpoints_with_status_and_failures(clients, vault_key, local_targets):
    create(clients[Role.ADMIN], vault_key)
    response = clients[Role.ADMIN].get(reverse("webhooks"))
    assert response.status_code == 200
    assert b"Prod hook" in response.content
    assert b"whend_" in response.content


def test_create_shows_the_secret_once_and_never_again(clients, vault_key):
    response = create(clients[Role.ADMIN], vault_key)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get()
    secret = endpoint.signing_secret
    assert secret.encode() in response.content
    assert b"Store this signing secret now" in response.content
    detail = clients[Role.ADMIN].get(endpoint_url("webhook-detail", vault_key, endpoint.public_id))
    assert detail.status_code == 200
    assert secret.encode() not in detail.content
    audit = AuditEvent.objects.get(action="webhook.created")
    assert secret not in json.dumps(audit.detail)
    assert audit.detail["endpoint_id"] == endpoint.public_id


def test_create_into_an_inbox_stores_the_secret_there(clients, vault_key, members, local_targets):
    inbox = inboxes.do_create_inbox(members[Role.ADMIN], name="Local", key=None)
    response = create(clients[Role.ADMIN], vault_key, url="", inbox=inbox.pk)
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    inbox.refresh_from_db()
    assert endpoint.url.endswith(reverse("inbox-receive", args=[inbox.token]))
    assert inbox.accepted_secrets() == [endpoint.signing_secret]
    assert (inbox.key, inbox.endpoint_id) == (vault_key, endpoint.public_id)


def test_contract_url_rules_are_checked_before_calling_the_api(clients, vault_key):
    vault_key.environment = "production"
    vault_key.save()
    for url in (
        "http://example.com/h",
        "https://u:p@example.com/h",
        "https://example.com/h#x",
        "https://localhost/h",
        "https://10.0.0.5/h",
    ):
        response = create(clients[Role.ADMIN], vault_key, url=url)
        assert response.status_code == 400, url
    assert not WebhookEndpoint.objects.exists()


def test_the_api_message_is_shown_when_it_still_refuses(clients, vault_key):
    response = create(clients[Role.ADMIN], vault_key, url="https://127.0.0.1/hook")
    assert response.status_code == 400
    assert b"Rivya refused it" in response.content
    assert b"loopback" in response.content


def test_edit_disable_enable_and_delete(clients, vault_key):
    admin = clients[Role.ADMIN]
    create(admin, vault_key)
    endpoint = WebhookEndpoint.objects.get()
    eid = endpoint.public_id
    edited = admin.post(
        endpoint_url("webhook-edit", vault_key, eid),
        {"name": "Renamed", "url": "https://example.com/new", "event_types": ["generation.failed"]},
    )
    assert edited.status_code == 302
    admin.post(endpoint_url("webhook-status", vault_key, eid), {"status": "disabled"})
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.status, endpoint.event_types) == (
        "Renamed",
        "disabled",
        ["generation.failed"],
    )
    admin.post(endpoint_url("webhook-status", vault_key, eid), {"status": "active"})
    assert admin.get(endpoint_url("webhook-delete", vault_key, eid)).status_code == 200
    admin.post(endpoint_url("webhook-delete", vault_key, eid))
    endpoint.refresh_from_db()
    assert endpoint.status == "revoked"
    actions = list(AuditEvent.objects.values_list("action", flat=True).order_by("pk"))
    assert actions[-4:] == [
        "webhook.edited",
        "webhook.disabled",
        "webhook.enabled",
        "webhook.deleted",
    ]


def test_rotate_shows_the_new_secret_once_and_updates_linked_inboxes(
    clients, vault_key, members, local_targets
):
    inbox = inboxes.do_create_inbox(members[Role.ADMIN], name="Local", key=None)
    create(clients[Role.ADMIN], vault_key, url="", inbox=inbox.pk)
    endpoint = WebhookEndpoint.objects.get()
    old = endpoint.signing_secret
    response = clients[Role.ADMIN].post(
        endpoint_url("webhook-rotate", vault_key, endpoint.public_id)
    )
    endpoint.refresh_from_db()
    assert endpoint.signing_secret != old
    assert endpoint.signing_secret.encode() in response.content
    inbox.refresh_from_db()
    assert inbox.accepted_secrets() == [endpoint.signing_secret, old]
    rotated = AuditEvent.objects.get(action="webhook.secret_rotated")
    assert endpoint.signing_secret not in json.dumps(rotated.detail)


def test_a_test_send_shows_its_delivery(clients, vault_key):
    create(clients[Role.ADMIN], vault_key)
    endpoint = WebhookEndpoint.objects.get()
    sent = clients[Role.ADMIN].post(endpoint_url("webhook-test", vault_key, endpoint.public_id))
    assert sent.status_code == 302
    page = clients[Role.ADMIN].get(sent["Location"])
    delivery = endpoint.deliveries.get()
    assert delivery.public_id.encode() in page.content
    assert b"generation.succeeded" in page.content


def test_the_delivery_log_filters_and_the_htmx_partial(clients, vault_key):
    admin = clients[Role.ADMIN]
    create(admin, vault_key)
    endpoint = WebhookEndpoint.objects.get()
    admin.post(endpoint_url("webhook-test", vault_key, endpoint.public_id))
    url = reverse("webhook-deliveries", args=[vault_key.pk])
    assert endpoint.deliveries.get().public_id.encode() in admin.get(url).content
    failed_only = admin.get(url, {"status": "failed"}, headers={"HX-Request": "true"})
    assert b"No deliveries match" in failed_only.content
    assert b"<html" not in failed_only.content
    by_job = admin.get(url, {"generation": "task_nothing"})
    assert b"No deliveries match" in by_job.content


def test_the_event_catalogue_pretty_prints_payloads(clients, vault_key):
    create(clients[Role.ADMIN], vault_key)
    endpoint = WebhookEndpoint.objects.get()
    clients[Role.ADMIN].post(endpoint_url("webhook-test", vault_key, endpoint.public_id))
    page = clients[Role.ADMIN].get(reverse("webhook-events", args=[vault_key.pk]))
    assert b"&quot;type&quot;: &quot;generation.succeeded&quot;" in page.content


def test_a_key_choice_that_is_not_a_number_shows_the_first_key(clients, vault_key):
    page = clients[Role.ADMIN].get(reverse("webhooks"), {"key": "²"})
    assert page.status_code == 200
    assert page.context["key"] == vault_key


def test_operators_cannot_open_the_webhooks_pages(clients, vault_key):
    assert clients[Role.OPERATOR].get(reverse("webhooks")).status_code == 403


def test_an_alert_shows_on_every_page_for_admins_until_acknowledged(clients, vault_key, settings):
    settings.RIVYA_WEBHOOK_ALERT_FAILURES = 1
    alert = FailureAlert.objects.create(
        key=vault_key,
        endpoint_id="whend_x",
        endpoint_name="Prod hook",
        reason="3 failed deliveries",
    )
    assert b"3 failed deliveries" in clients[Role.ADMIN].get(reverse("keys")).content
    assert b"3 failed deliveries" not in clients[Role.OPERATOR].get(reverse("keys")).content
    clients[Role.ADMIN].post(reverse("webhook-alert-ack", args=[alert.pk]))
    assert b"3 failed deliveries" not in clients[Role.ADMIN].get(reverse("keys")).content
    assert AuditEvent.objects.filter(action="webhook.alert_acknowledged").exists()


def test_the_check_raises_one_alert_for_a_failing_endpoint(clients, vault_key, settings):
    settings.RIVYA_WEBHOOK_ALERT_FAILURES = 1
    create(clients[Role.ADMIN], vault_key)
    endpoint = WebhookEndpoint.objects.get()
    endpoint.status = "disabled"
    endpoint.failure_count = 20
    endpoint.save()
    assert len(alerts.check_key(vault_key)) == 1
    assert alerts.check_key(vault_key) == []
    assert FailureAlert.objects.get().endpoint_id == endpoint.public_id


def test_failure_counting_uses_the_window():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    recent = (now - timedelta(minutes=2)).isoformat()
    old = (now - timedelta(hours=2)).isoformat()
    deliveries = [
        {"status": "failed", "completed_at": recent},
        {"status": "pending", "error": "HTTP 500", "created_at": recent},
        {"status": "failed", "completed_at": old},
        {"status": "succeeded", "completed_at": recent},
    ]
    assert alerts.recent_failures(deliveries, now - timedelta(minutes=15)) == 2


def test_inbox_count_is_unchanged_by_a_refused_create(clients, vault_key):
    before = Inbox.objects.count()
    create(clients[Role.ADMIN], vault_key, url="")
    assert Inbox.objects.count() == before

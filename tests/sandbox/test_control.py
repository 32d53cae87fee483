"""The sandbox control page: what each action changes, its audit row, and bad input."""

import json

import pytest
from django.urls import reverse

from rivya_dashboard.accounts.models import AuditEvent, Role
from rivya_dashboard.sandbox.keys import find_key, issue_key
from rivya_dashboard.sandbox.models import (
    Account,
    RequestLog,
    SandboxKey,
    SandboxSettings,
    WebhookSettings,
)
from tests.sandbox.conftest import Api, error_code

PAGE = "sandbox-control"


@pytest.fixture
def admin_client(clients):
    return clients[Role.ADMIN]


@pytest.fixture
def key(db) -> SandboxKey:
    return find_key(issue_key(name="ci"))


def audit_text() -> str:
    return json.dumps(list(AuditEvent.objects.values("action", "target", "detail")))


def test_it_shows_accounts_keys_settings_and_requests(admin_client, key):
    Api(None).get("/models")

    response = admin_client.get(reverse(PAGE))

    page = response.content.decode()
    assert response.status_code == 200
    for section in ("accounts", "new-key", "keys", "behaviour", "faults", "webhooks", "requests"):
        assert f'id="{section}"' in page
    assert key.prefix in page
    assert key.account.name in page
    assert RequestLog.objects.get().request_id in page


def test_an_htmx_refresh_returns_only_the_request_list(admin_client, key):
    response = admin_client.get(reverse(PAGE), headers={"HX-Request": "true"})

    page = response.content.decode()
    assert page.lstrip().startswith('<section class="card" id="requests"')
    assert "<html" not in page


def test_every_control_url_is_a_404_when_the_sandbox_is_off(admin_client, key, settings):
    settings.RIVYA_SANDBOX = False

    assert admin_client.get(reverse(PAGE)).status_code == 404
    response = admin_client.post(reverse("sandbox-key-revoke", args=[key.pk]))
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.status == "active"


def test_it_tops_up_an_account(admin_client, key):
    before = key.account.credits

    response = admin_client.post(reverse("sandbox-top-up", args=[key.account.pk]), {"amount": 250})

    assert response.status_code == 302
    assert response["Location"].endswith("#accounts")
    assert Account.objects.get(pk=key.account.pk).credits == before + 250
    event = AuditEvent.objects.get(action="sandbox.account_topped_up")
    assert event.detail == {"amount": 250}


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "", "1000001"])
def test_it_refuses_a_bad_top_up(admin_client, key, amount):
    before = key.account.credits

    response = admin_client.post(
        reverse("sandbox-top-up", args=[key.account.pk]), {"amount": amount}
    )

    assert response.status_code == 400
    assert "Top up" in response.content.decode()
    assert Account.objects.get(pk=key.account.pk).credits == before
    assert not AuditEvent.objects.exists()


def test_it_creates_a_key_shows_it_once_and_audits_no_key_material(admin_client):
    response = admin_client.post(
        reverse("sandbox-key-create"),
        {"name": "demo", "credits": 50, "scopes": ["credits:read", "models:read"]},
    )

    page = response.content.decode()
    key = SandboxKey.objects.get()
    raw_key = page.split('id="sandbox-key" type="text" readonly value="')[1].split('"')[0]
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert raw_key.startswith(key.prefix) and len(raw_key) == 48
    assert key.scopes == ["credits:read", "models:read"]
    assert key.account.credits == 50
    assert Api(raw_key).get("/credits").json() == {"current_credits": 50}
    assert raw_key not in audit_text()
    assert AuditEvent.objects.get().action == "sandbox.key_created"
    assert raw_key not in admin_client.get(reverse(PAGE)).content.decode()


def test_it_adds_a_key_to_an_existing_account(admin_client, key):
    admin_client.post(
        reverse("sandbox-key-create"),
        {"account": key.account.pk, "credits": 5, "scopes": ["webhooks:manage"]},
    )

    assert Account.objects.count() == 1
    assert key.account.keys.count() == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"credits": 5}, "Tick at least one scope"),
        ({"credits": 5, "scopes": ["root"]}, "Select a valid choice"),
        ({"credits": -1, "scopes": ["credits:read"]}, "greater than or equal to 0"),
        ({"credits": 5, "account": 999, "scopes": ["credits:read"]}, "Select a valid choice"),
    ],
)
def test_it_refuses_a_bad_key_request(admin_client, data, message):
    response = admin_client.post(reverse("sandbox-key-create"), data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not SandboxKey.objects.exists()


def test_it_revokes_a_key(admin_client, key):
    raw_key = issue_key(account=key.account)

    response = admin_client.post(reverse("sandbox-key-revoke", args=[find_key(raw_key).pk]))
    again = admin_client.post(reverse("sandbox-key-revoke", args=[find_key(raw_key).pk]))

    assert (response.status_code, again.status_code) == (302, 302)
    reply = Api(raw_key).get("/credits")
    assert (reply.status_code, error_code(reply)) == (401, "api_key_revoked")
    assert AuditEvent.objects.filter(action="sandbox.key_revoked").count() == 1
    assert admin_client.post(reverse("sandbox-key-revoke", args=[999])).status_code == 404


def test_it_changes_timing_limits_and_the_kill_switch(admin_client, key):
    response = admin_client.post(
        reverse("sandbox-behaviour"),
        {
            "clock_speed": "60",
            "failure_percent": "25",
            "rate_limit": "100",
            "token_delay_ms": "5",
            "public_api_disabled": "on",
        },
    )

    sandbox = SandboxSettings.load()
    assert response.status_code == 302
    assert (sandbox.clock_speed, sandbox.failure_rate, sandbox.rate_limit) == (60, 0.25, 100)
    assert (sandbox.token_delay_ms, sandbox.public_api_disabled) == (5, True)
    assert error_code(Api(None).get("/models")) == "public_api_disabled"
    detail = AuditEvent.objects.get(action="sandbox.settings_changed").detail
    assert detail["clock_speed"] == 60 and detail["public_api_disabled"] is True
    assert "off" in admin_client.get(reverse(PAGE)).content.decode()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clock_speed", "0"),
        ("clock_speed", "20000"),
        ("failure_percent", "101"),
        ("rate_limit", "0"),
        ("token_delay_ms", "-1"),
    ],
)
def test_it_refuses_bad_behaviour_values(admin_client, db, field, value):
    data = {"clock_speed": "1", "failure_percent": "0", "rate_limit": "600", "token_delay_ms": "20"}

    response = admin_client.post(reverse("sandbox-behaviour"), {**data, field: value})

    assert response.status_code == 400
    assert 'class="errorlist"' in response.content.decode()
    assert SandboxSettings.load().clock_speed == 1
    assert not AuditEvent.objects.exists()


def test_it_sets_global_faults(admin_client, key):
    response = admin_client.post(
        reverse("sandbox-faults"),
        {"target": "global", "status": "503", "bad-signature": "on", "latency": ""},
    )

    assert response.status_code == 302
    assert SandboxSettings.load().faults == {"status": 503, "bad-signature": True}
    reply = Api(None).get("/models")
    assert (reply.status_code, error_code(reply)) == (503, "public_api_disabled")
    assert AuditEvent.objects.get().detail == {"faults": {"status": 503, "bad-signature": True}}


def test_it_sets_faults_on_one_key_only(admin_client, key):
    other = issue_key()

    admin_client.post(reverse("sandbox-faults"), {"target": str(key.pk), "status": "429"})

    key.refresh_from_db()
    assert key.faults == {"status": 429}
    assert SandboxSettings.load().faults == {}
    assert Api(other).get("/credits").status_code == 200
    assert AuditEvent.objects.get().target == key.prefix


def test_the_fault_form_opens_prefilled_for_a_key(admin_client, key):
    key.faults = {"duplicate-delivery": True}
    key.save()

    page = admin_client.get(reverse(PAGE), {"faults": key.pk}).content.decode()

    assert f'value="{key.pk}"' in page
    assert 'name="duplicate-delivery" id="id_duplicate-delivery" checked' in page


@pytest.mark.parametrize(
    "data",
    [{"target": "999"}, {"target": "x"}, {"target": "global", "latency": "70000"}],
)
def test_it_refuses_bad_faults(admin_client, key, data):
    response = admin_client.post(reverse("sandbox-faults"), data)

    assert response.status_code == 400
    assert SandboxSettings.load().faults == {}


def test_it_switches_local_webhook_targets_and_fast_retries(admin_client, db):
    response = admin_client.post(
        reverse("sandbox-webhook-settings"), {"allow_local_targets": "on", "fast_retries": "on"}
    )

    row = WebhookSettings.load()
    assert response.status_code == 302
    assert (row.allow_local_targets, row.fast_retries) == (True, True)
    event = AuditEvent.objects.get(action="sandbox.webhook_settings_changed")
    assert event.detail == {"allow_local_targets": True, "fast_retries": True}


def test_operators_cannot_change_the_sandbox(clients, key):
    response = clients[Role.OPERATOR].post(
        reverse("sandbox-top-up", args=[key.account.pk]), {"amount": 5}
    )

    assert response.status_code == 403
    assert Account.objects.get(pk=key.account.pk).credits == key.account.credits


def test_the_fault_form_shows_the_global_faults_in_force(admin_client, db):
    SandboxSettings.load()
    SandboxSettings.objects.update(faults={"status": 503, "latency": 250})

    page = admin_client.get(reverse(PAGE)).content.decode()

    assert '<option value="503" selected>' in page
    assert 'name="latency" value="250"' in page

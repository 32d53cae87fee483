"""/metrics: off without a token, Prometheus text with one, and nothing that names a member,
a key's secret or an inbox's URL token."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rivya_dashboard import metrics, outbound
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.vault.models import LedgerEntry

TOKEN = "scrape-token-1234567890"


@pytest.fixture
def metrics_on(settings):
    settings.RIVYA_METRICS_TOKEN = TOKEN


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = text_string_to_metric_families(response.content.decode())
    return {family.name: family.samples for family in families}


def test_it_is_off_without_a_token(client, db):
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("header", ["", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_a_wrong_token_gets_401(client, db, metrics_on, header):
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_requests_are_counted_by_view_and_status_class(clients, members, metrics_on):
    clients["operator"].get("/models/")
    clients["operator"].get("/models/")
    families = scrape(clients["outsider"])
    models_ok = [
        sample
        for sample in families["rivya_http_requests"]
        if sample.name == "rivya_http_requests_total"
        and sample.labels == {"view": "models", "method": "GET", "status": "2xx"}
    ]
    assert models_ok and models_ok[0].value >= 2
    assert any(
        s.labels.get("view") == "models" for s in families["rivya_http_request_duration_seconds"]
    )


def test_queue_and_credits_come_from_the_database(client, vault_key, members, metrics_on):
    LedgerEntry.objects.create(
        member=members["operator"],
        member_name="operator",
        key=vault_key,
        key_label=vault_key.label,
        operation="createGeneration",
        credits_final=12,
    )
    LedgerEntry.objects.create(
        member=members["owner"],
        member_name="owner",
        key=vault_key,
        key_label=vault_key.label,
        operation="createGeneration",
        credits_reserved=3,
    )
    families = scrape(client)
    spent = {s.labels["key"]: s.value for s in families["rivya_credits_spent"]}
    assert spent == {str(vault_key.pk): 15}
    assert families["rivya_tasks_ready"][0].value >= 0
    assert families["rivya_tasks_oldest_ready_seconds"][0].value >= 0


def test_upstream_calls_are_counted_by_operation(client, live_server, settings, metrics_on):
    settings.RIVYA_LISTEN_URL = live_server.url
    base = f"{live_server.url}/sandbox/api/v1"
    before = metrics.UPSTREAM.labels("GET /credits", "2xx")._value.get()
    RivyaClient(base, issue_key(), session=outbound.api_session(base)).get_credits()
    families = scrape(client)
    calls = {
        (s.labels["operation"], s.labels["status"]): s.value
        for s in families["rivya_upstream_requests"]
        if s.name == "rivya_upstream_requests_total"
    }
    assert calls[("GET /credits", "2xx")] == before + 1


def test_operations_name_ids_as_placeholders():
    url = "https://rivya.ai/api/v1/generations/task_abc123xyz/"
    assert metrics.operation_of("GET", url) == "GET /generations/{id}/"
    assert metrics.operation_of("POST", "http://h/sandbox/api/v1/webhooks/whend_0a1b2c3d/test") == (
        "POST /webhooks/{id}/test"
    )


def test_nothing_names_a_member_or_a_secret(clients, members, vault_key, metrics_on):
    clients["operator"].get("/models/")
    body = clients["outsider"].get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = body.content.decode()
    for member in members.values():
        assert f'"{member.username}"' not in text
    assert vault_key.reveal() not in text
    assert vault_key.label not in text

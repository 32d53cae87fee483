"""Sandbox webhook management API (contract §9.7): shapes, URL rules, errors, events."""

import json

import pytest

from rivya_dashboard.sandbox import choices, webhooks_targets
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import (
    SandboxSettings,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSettings,
)
from tests.sandbox.conftest import BASE, Api, error_code

FAKE_DNS = {
    "hooks.example.com": ["93.184.216.34"],
    "other.example.com": ["93.184.216.35"],
    "internal.example.com": ["10.1.2.3"],
    "rebind.example.com": ["93.184.216.34", "127.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "lan.example.com": ["192.168.1.20"],
}
URL = "https://hooks.example.com/rivya"
CREATE = {"name": "Production webhook", "url": URL, "event_types": ["generation.succeeded"]}
ENDPOINT_FIELDS = {
    "id",
    "object",
    "name",
    "url",
    "event_types",
    "status",
    "secret_preview",
    "last_success_at",
    "last_failure_at",
    "failure_count",
    "created_at",
    "updated_at",
    "disabled_at",
    "revoked_at",
}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    def resolve(host: str, port: int) -> list[str]:
        if host in FAKE_DNS:
            return FAKE_DNS[host]
        if host.replace(".", "").isdigit() or ":" in host:
            return [host]
        raise webhooks_targets.TargetRejected(f"The host name {host} does not resolve.")

    monkeypatch.setattr(webhooks_targets, "resolve", resolve)


def patch(api: Api, path: str, body: dict):
    return api.client.patch(
        BASE + path, json.dumps(body), content_type="application/json", headers=api.headers()
    )


def post_empty(api: Api, path: str):
    return api.client.generic("POST", BASE + path, b"", headers=api.headers())


def delete(api: Api, path: str):
    return api.client.delete(BASE + path, headers=api.headers())


@pytest.fixture
def created(api) -> dict:
    response = api.post("/webhooks", CREATE)
    assert response.status_code == 201, response.content
    return response.json()


def test_it_creates_an_endpoint_and_shows_the_secret_once(api, created):
    assert set(created) == ENDPOINT_FIELDS | {"signing_secret"}
    assert created["id"].startswith("whend_") and len(created["id"]) == 6 + 24
    assert created["object"] == "webhook_endpoint"
    assert created["status"] == "active"
    assert created["failure_count"] == 0
    assert created["signing_secret"].startswith("whsec_")
    secret = created["signing_secret"]
    assert created["secret_preview"] == f"{secret[:8]}...{secret[-6:]}"
    assert created["created_at"].endswith("Z")

    fetched = api.get(f"/webhooks/{created['id']}")
    listed = api.get("/webhooks")

    assert fetched.status_code == 200
    assert set(fetched.json()) == ENDPOINT_FIELDS
    assert secret not in fetched.content.decode()
    assert secret not in listed.content.decode()
    assert listed.json()["data"][0]["id"] == created["id"]


def test_it_lists_newest_first_with_a_cursor(api):
    ids = [api.post("/webhooks", {**CREATE, "name": f"n{i}"}).json()["id"] for i in range(3)]

    first = api.get("/webhooks", limit=2).json()
    second = api.get("/webhooks", limit=2, cursor=first["next_cursor"]).json()

    assert [e["id"] for e in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    assert [e["id"] for e in second["data"]] == ids[:1]
    assert second == {**second, "has_more": False, "next_cursor": None}


def test_it_drops_repeated_event_types(api):
    body = {**CREATE, "event_types": ["generation.failed", "generation.failed"]}

    assert api.post("/webhooks", body).json()["event_types"] == ["generation.failed"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": URL, "event_types": ["generation.failed"]}, "name"),
        ({**CREATE, "name": ""}, "name"),
        ({**CREATE, "name": "   "}, "name"),
        ({**CREATE, "name": "x" * 101}, "name"),
        ({**CREATE, "event_types": []}, "event_types"),
        ({**CREATE, "event_types": ["chat.completed"]}, "event_types"),
        ({**CREATE, "event_types": "generation.failed"}, "event_types"),
        ({**CREATE, "url": 5}, "url"),
        ({**CREATE, "headers": {"X-Custom": "1"}}, "headers"),
    ],
)
def test_it_rejects_an_invalid_create_body(api, body, field):
    response = api.post("/webhooks", body)

    assert response.status_code == 400
    assert error_code(response) == "validation_failed"
    assert field in response.json()["error"]["message"]
    assert not WebhookEndpoint.objects.exists()


def test_it_rejects_a_body_that_is_not_json(api):
    response = api.post("/webhooks", b"{not json")

    assert (response.status_code, error_code(response)) == (400, "validation_failed")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/rivya", "https://"),
        ("ftp://hooks.example.com/rivya", "https://"),
        ("https://user:pw@hooks.example.com/rivya", "credentials"),
        ("https://token@hooks.example.com/rivya", "credentials"),
        ("https://hooks.example.com/rivya#top", "fragment"),
        ("https://hooks.example.com/rivya#", "fragment"),
        ("https://localhost/hook", "local host name"),
        ("https://api.localhost/hook", "local host name"),
        ("https://printer.local/hook", "local host name"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://[2002:7f00:1::1]/hook", "loopback"),
        ("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook", "loopback"),
        ("https://[fec0::1]/hook", "private"),
        ("https://10.0.0.8/hook", "private"),
        ("https://192.168.1.20/hook", "private"),
        ("https://169.254.169.254/latest", "private"),
        ("https://0.0.0.0/hook", "reserved"),
        ("https://240.0.0.1/hook", "reserved"),
        ("https://224.0.0.1/hook", "reserved"),
        ("https://100.64.0.1/hook", "reserved"),
        ("https://internal.example.com/hook", "private"),
        ("https://rebind.example.com/hook", "loopback"),
        ("https:///hook", "no host"),
        ("https://b\u00fccher.example/hook", "xn-- form"),
        ("https://a\x0eb.example/hook", "not a valid host name"),
        ("https://a..b.example/hook", "not a valid host name"),
        ("https://hooks.example.com:99999/hook", "cannot be parsed"),
        ("https://hooks.example.com/" + "a" * 2050, "at most 2048"),
    ],
)
def test_it_rejects_urls_that_break_the_rules(api, url, reason):
    response = api.post("/webhooks", {**CREATE, "url": url})

    assert response.status_code == 400
    assert error_code(response) in ("webhook_url_rejected", "validation_failed")
    assert reason in response.json()["error"]["message"]
    assert not WebhookEndpoint.objects.exists()


def test_it_allows_local_targets_when_the_sandbox_switch_is_on(api, db):
    WebhookSettings.objects.update_or_create(pk=1, defaults={"allow_local_targets": True})

    response = api.post("/webhooks", {**CREATE, "url": "http://127.0.0.1:8000/hooks/x"})

    assert response.status_code == 201
    assert response.json()["url"] == "http://127.0.0.1:8000/hooks/x"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks/x",
        "http://localhost:8000/hooks/x",
        "http://10.0.0.8/hooks/x",
        "http://lan.example.com/hooks/x",
        "http://[fd00::5]/hooks/x",
    ],
)
def test_local_targets_open_loopback_and_private_ranges(api, db, url):
    WebhookSettings.objects.update_or_create(pk=1, defaults={"allow_local_targets": True})
    FAKE_DNS["localhost"] = ["127.0.0.1"]
    try:
        response = api.post("/webhooks", {**CREATE, "url": url})
    finally:
        del FAKE_DNS["localhost"]

    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "private"),
        ("http://metadata.example.com/latest", "169.254.169.254"),
        ("http://[fe80::1]/hook", "private"),
        ("http://[::ffff:a9fe:a9fe]/hook", "private"),
        ("http://0.0.0.0:8000/hook", "reserved"),
        ("http://[::]/hook", "reserved"),
        ("http://224.0.0.1/hook", "reserved"),
        ("http://240.0.0.1/hook", "reserved"),
    ],
)
def test_local_targets_never_open_link_local_unspecified_or_multicast(api, db, url, reason):
    WebhookSettings.objects.update_or_create(pk=1, defaults={"allow_local_targets": True})

    response = api.post("/webhooks", {**CREATE, "url": url})

    assert error_code(response) == "webhook_url_rejected"
    assert reason in response.json()["error"]["message"]
    assert not WebhookEndpoint.objects.exists()


def test_a_name_that_does_not_resolve_is_accepted_so_the_sandbox_works_offline(api, db):
    response = api.post("/webhooks", {**CREATE, "url": "https://nowhere.example.net/hook"})
    assert response.status_code == 201
    endpoint = response.json()["id"]

    changed = patch(api, f"/webhooks/{endpoint}", {"url": "https://still-nowhere.example.net/"})
    assert changed.status_code == 200


def test_a_name_that_resolves_to_a_private_address_is_still_refused_at_creation(api, db):
    response = api.post("/webhooks", {**CREATE, "url": "https://internal.example.com/hook"})
    assert error_code(response) == "webhook_url_rejected"


def test_it_still_refuses_credentials_when_local_targets_are_allowed(api, db):
    WebhookSettings.objects.update_or_create(pk=1, defaults={"allow_local_targets": True})

    response = api.post("/webhooks", {**CREATE, "url": "http://a:b@127.0.0.1/x"})

    assert error_code(response) == "webhook_url_rejected"


def test_it_defaults_local_targets_from_the_environment_setting(settings, db):
    settings.RIVYA_SANDBOX_WEBHOOK_ALLOW_LOCAL = True
    settings.RIVYA_SANDBOX_WEBHOOK_FAST_RETRIES = True

    row = WebhookSettings.load()

    assert (row.allow_local_targets, row.fast_retries) == (True, True)


def test_it_requires_the_webhooks_scope(db):
    narrow = Api(issue_key(scopes=["credits:read"]))

    for response in (narrow.get("/webhooks"), narrow.post("/webhooks", CREATE)):
        assert (response.status_code, error_code(response)) == (403, "api_scope_denied")
    assert (narrow.get("/webhook-events").status_code, Api(None).get("/webhooks").status_code) == (
        403,
        401,
    )


ENDPOINT_PATHS = [
    ("get", ""),
    ("patch", ""),
    ("delete", ""),
    ("post", "/rotate-secret"),
    ("post", "/test"),
    ("get", "/deliveries"),
]


@pytest.mark.parametrize(("method", "suffix"), ENDPOINT_PATHS)
def test_it_hides_other_accounts_endpoints(api, created, method, suffix):
    stranger = Api(issue_key())
    path = f"/webhooks/{created['id']}{suffix}"

    for caller, target in ((stranger, path), (api, "/webhooks/whend_missing" + suffix)):
        if method == "patch":
            response = patch(caller, target, {"name": "x"})
        elif method == "delete":
            response = delete(caller, target)
        elif method == "post":
            response = post_empty(caller, target)
        else:
            response = caller.get(target)
        assert (response.status_code, error_code(response)) == (404, "not_found")
    assert WebhookEndpoint.objects.get().name == CREATE["name"]


def test_it_updates_name_url_and_event_types(api, created):
    response = patch(
        api,
        f"/webhooks/{created['id']}",
        {
            "name": "Renamed",
            "url": "https://other.example.com/x",
            "event_types": ["generation.failed"],
        },
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["name"], body["url"], body["event_types"]) == (
        "Renamed",
        "https://other.example.com/x",
        ["generation.failed"],
    )
    assert "signing_secret" not in body


def test_it_revalidates_a_changed_url(api, created):
    response = patch(api, f"/webhooks/{created['id']}", {"url": "https://10.0.0.1/x"})

    assert (response.status_code, error_code(response)) == (400, "webhook_url_rejected")
    assert WebhookEndpoint.objects.get().url == URL


@pytest.mark.parametrize(
    "body",
    [{"status": "revoked"}, {"status": "paused"}, {"name": 3}, {"secret": "whsec_x"}, []],
)
def test_it_rejects_an_invalid_update(api, created, body):
    response = patch(api, f"/webhooks/{created['id']}", body)

    assert (response.status_code, error_code(response)) == (400, "validation_failed")


def test_it_disables_and_re_enables_an_endpoint(api, created):
    path = f"/webhooks/{created['id']}"
    WebhookEndpoint.objects.update(failed_events_in_a_row=7)

    disabled = patch(api, path, {"status": "disabled"}).json()
    enabled = patch(api, path, {"status": "active"}).json()

    assert (disabled["status"], disabled["disabled_at"] is not None) == ("disabled", True)
    assert (enabled["status"], enabled["disabled_at"]) == ("active", None)
    assert WebhookEndpoint.objects.get().failed_events_in_a_row == 0


def test_it_revokes_on_delete_and_stops_pending_deliveries(api, created):
    post_empty(api, f"/webhooks/{created['id']}/test")
    path = f"/webhooks/{created['id']}"

    first = delete(api, path)
    again = delete(api, path)

    assert first.status_code == 200
    assert (first.json()["status"], first.json()["revoked_at"] is not None) == ("revoked", True)
    assert again.json() == first.json()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    assert "revoked" in delivery.error
    for response in (
        patch(api, path, {"name": "x"}),
        post_empty(api, path + "/rotate-secret"),
        post_empty(api, path + "/test"),
    ):
        assert (response.status_code, error_code(response)) == (400, "validation_failed")
        assert "revoked" in response.json()["error"]["message"]


def test_it_rotates_the_secret_and_drops_the_old_one(api, created):
    response = post_empty(api, f"/webhooks/{created['id']}/rotate-secret")

    body = response.json()
    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 200
    assert body["signing_secret"].startswith("whsec_")
    assert body["signing_secret"] != created["signing_secret"]
    assert endpoint.active_secrets() == [body["signing_secret"]]
    assert api.get(f"/webhooks/{created['id']}").json()["secret_preview"] == body["secret_preview"]


def test_it_keeps_the_old_secret_signing_during_an_overlap(api, created):
    response = api.post(f"/webhooks/{created['id']}/rotate-secret", {"overlap_seconds": 600})

    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.active_secrets() == [
        response.json()["signing_secret"],
        created["signing_secret"],
    ]


@pytest.mark.parametrize(
    "body", [{"overlap_seconds": -1}, {"overlap_seconds": 86401}, {"overlap": 5}, "[1", None]
)
def test_it_rejects_an_invalid_rotation_body(api, created, body):
    response = api.post(f"/webhooks/{created['id']}/rotate-secret", body)

    assert (response.status_code, error_code(response)) == (400, "validation_failed")
    assert WebhookEndpoint.objects.get().signing_secret == created["signing_secret"]


def test_a_rotation_body_over_the_json_limit_is_413(api, created):
    body = '{"overlap_seconds": 1' + " " * choices.MAX_JSON_BODY_BYTES + "}"
    response = api.post(f"/webhooks/{created['id']}/rotate-secret", body)

    assert (response.status_code, error_code(response)) == (413, "payload_too_large")
    assert WebhookEndpoint.objects.get().signing_secret == created["signing_secret"]


def test_it_queues_a_test_event(api, created):
    response = post_empty(api, f"/webhooks/{created['id']}/test")

    delivery = response.json()
    assert response.status_code == 202
    assert delivery["object"] == "webhook_delivery"
    assert delivery["id"].startswith("whdel_")
    assert (delivery["endpoint_id"], delivery["event_type"]) == (
        created["id"],
        "generation.succeeded",
    )
    assert (delivery["status"], delivery["attempt"]) == ("pending", 0)
    event = api.get("/webhook-events").json()["data"][0]
    assert event["id"] == delivery["event_id"]
    assert event["test"] is True
    assert event["api_version"] == "2026-05-11"
    assert event["data"]["id"].startswith("task_test_")
    assert event["data"]["result"]["primary_url"].startswith("http://testserver/sandbox/api/")


def test_it_filters_deliveries_by_status(api, created):
    post_empty(api, f"/webhooks/{created['id']}/test")
    post_empty(api, f"/webhooks/{created['id']}/test")
    WebhookDelivery.objects.filter(pk=WebhookDelivery.objects.first().pk).update(status="succeeded")
    path = f"/webhooks/{created['id']}/deliveries"

    everything = api.get(path).json()["data"]
    pending = api.get(path, status="pending").json()["data"]
    bad = api.get(path, status="lost")

    assert len(everything) == 2
    assert [d["status"] for d in pending] == ["pending"]
    assert (bad.status_code, error_code(bad)) == (400, "validation_failed")


def finish_generation(api: Api, prompt: str) -> dict:
    SandboxSettings.objects.update_or_create(pk=1, defaults={"clock_speed": 1_000_000})
    task = api.post("/generations", {"model": "z-image", "prompt": prompt}).json()
    return api.get(f"/generations/{task['id']}").json()


@pytest.mark.parametrize(
    ("prompt", "event_type"),
    [("a cat", "generation.succeeded"), ("x [[fail]]", "generation.failed")],
)
def test_a_finished_generation_emits_one_event(api, created, prompt, event_type):
    generation = finish_generation(api, prompt)
    api.get(f"/generations/{generation['id']}")

    events = api.get("/webhook-events").json()["data"]

    assert [e["type"] for e in events] == [event_type]
    assert events[0]["data"] == generation
    assert events[0]["test"] is False
    expected_deliveries = 1 if event_type in CREATE["event_types"] else 0
    assert WebhookDelivery.objects.count() == expected_deliveries


def test_it_lists_events_of_a_type_only(api, created):
    finish_generation(api, "one")
    finish_generation(api, "two [[fail]]")

    failed = api.get("/webhook-events", type="generation.failed").json()["data"]
    bad = api.get("/webhook-events", type="chat.completed")

    assert [e["type"] for e in failed] == ["generation.failed"]
    assert (bad.status_code, error_code(bad)) == (400, "validation_failed")
    assert WebhookEvent.objects.count() == 2


def test_it_emits_for_generations_nobody_polled(api, created):
    SandboxSettings.objects.update_or_create(pk=1, defaults={"clock_speed": 1_000_000})
    api.post("/generations", {"model": "z-image", "prompt": "unpolled"})

    events = api.get("/webhook-events").json()["data"]

    assert [e["type"] for e in events] == ["generation.succeeded"]


def test_it_resolves_names_with_the_system_resolver(monkeypatch):
    monkeypatch.undo()

    assert webhooks_targets.resolve("127.0.0.1", 443) == ["127.0.0.1"]
    with pytest.raises(webhooks_targets.TargetRejected, match="does not resolve"):
        webhooks_targets.resolve("bad..name", 443)

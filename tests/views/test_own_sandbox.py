"""Keys for this console's own sandbox: where its address comes from (settings, never a request's
Host), however the key was added, and the local-target rules its webhook endpoints get."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from rivya_dashboard import outbound
from rivya_dashboard.accounts.models import Role
from rivya_dashboard.vault.models import PRODUCTION_BASE_URL, ApiKey
from rivya_dashboard.webhooks import inboxes
from rivya_dashboard.webhooks.forms import EndpointCreateForm, EndpointForm
from rivya_dashboard.webhooks.models import Inbox

OWN = "http://testserver/sandbox/api/v1"


@pytest.fixture(autouse=True)
def fresh_sessions():
    outbound.reset_sessions()
    yield
    outbound.reset_sessions()


def test_a_forged_host_does_not_move_the_sandbox_key(owner_client, api_in_process):
    owner_client.post(reverse("key-sandbox"), HTTP_HOST="127.0.0.1:6379")
    key = ApiKey.objects.get()
    assert key.base_url == OWN


def test_a_sandbox_key_stored_with_another_address_still_calls_only_the_own_sandbox(
    members, sandbox_key
):
    key = ApiKey.objects.create(
        label="Old sandbox", environment="sandbox", base_url="http://127.0.0.1:6379/sandbox/api/v1"
    )
    key.store_secret(sandbox_key)
    key.save()
    client = key.client()
    assert client.base_url == OWN
    with pytest.raises(outbound.Refused, match="own sandbox"):
        client.session.get("http://127.0.0.1:6379/sandbox/api/v1/credits")
    with pytest.raises(outbound.Refused, match="own sandbox"):
        client.session.get("http://testserver/admin/")


def test_the_sandbox_button_needs_a_known_address(owner_client, settings):
    settings.RIVYA_LISTEN_URL = ""
    response = owner_client.post(reverse("key-sandbox"), follow=True)
    assert "does not know its own address" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_public_url_wins_over_the_listen_address(owner_client, settings, api_in_process):
    settings.RIVYA_PUBLIC_URL = "https://console.example.test"
    settings.ALLOWED_HOSTS = ["testserver", "console.example.test"]
    owner_client.post(reverse("key-sandbox"))
    assert ApiKey.objects.get().base_url == "https://console.example.test/sandbox/api/v1"


def run_add_key(monkeypatch, raw: str, **options: object) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(raw + "\n"))
    out = io.StringIO()
    call_command("add_key", stdout=out, **options)
    return out.getvalue()


def test_add_key_sandbox_needs_no_loopback_exception(
    members, sandbox_key, api_in_process, monkeypatch, settings
):
    settings.RIVYA_LISTEN_URL = "http://127.0.0.1:8000"
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = False
    run_add_key(monkeypatch, sandbox_key, label="Scripted sandbox", sandbox=True)
    key = ApiKey.objects.get()
    assert (key.environment, key.base_url) == ("sandbox", "http://127.0.0.1:8000/sandbox/api/v1")
    assert key.reveal() == sandbox_key and key.is_own_sandbox


def test_add_key_with_the_own_sandbox_as_base_url_needs_no_loopback_exception(
    members, sandbox_key, api_in_process, monkeypatch, settings
):
    settings.RIVYA_LISTEN_URL = "http://127.0.0.1:8000"
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = False
    own = "http://127.0.0.1:8000/sandbox/api/v1/"
    run_add_key(monkeypatch, sandbox_key, label="By URL", base_url=own)
    key = ApiKey.objects.get()
    assert key.environment == "custom" and key.is_own_sandbox
    session = outbound.api_session(key.base_url)
    assert isinstance(session.get_adapter(key.base_url), outbound.OwnSandboxAdapter)
    with pytest.raises(CommandError, match="private or reserved"):
        run_add_key(
            monkeypatch, sandbox_key, label="Other port", base_url="http://127.0.0.1:9/api/v1"
        )


def key_of(kind: str) -> ApiKey:
    urls = {"sandbox": OWN, "custom": OWN, "production": PRODUCTION_BASE_URL}
    return ApiKey.objects.create(label=kind, environment=kind, base_url=urls[kind])


@pytest.mark.parametrize("kind", ["sandbox", "custom"])
def test_an_own_sandbox_key_may_target_a_local_inbox(db, kind):
    form = EndpointForm(
        {
            "name": "Local",
            "url": "http://127.0.0.1:8000/hooks/x",
            "event_types": ["generation.succeeded"],
        },
        key=key_of(kind),
    )
    assert form.is_valid(), form.errors


def test_a_real_key_may_not_target_a_local_address(db):
    form = EndpointForm(
        {
            "name": "Local",
            "url": "http://127.0.0.1:8000/hooks/x",
            "event_types": ["generation.succeeded"],
        },
        key=key_of("production"),
    )
    assert not form.is_valid()


@pytest.mark.parametrize("kind", ["sandbox", "custom", "production"])
def test_an_empty_url_with_an_inbox_uses_the_inbox_receiver_url(members, kind, settings):
    settings.RIVYA_PUBLIC_URL = "https://console.example.test"
    key = key_of(kind)
    inbox = Inbox.objects.create(name="Mine", created_by=members[Role.OWNER])
    form = EndpointCreateForm(
        {"name": "To inbox", "inbox": inbox.pk, "url": "", "event_types": ["generation.failed"]},
        key=key,
        receiver_url=lambda chosen: inboxes.delivery_url(chosen, key, None),
    )
    assert form.is_valid(), form.errors
    receiver = reverse("inbox-receive", args=[inbox.token])
    assert form.cleaned_data["url"] == f"https://console.example.test{receiver}"


def test_a_real_key_cannot_deliver_to_a_local_inbox_and_the_form_says_why(members):
    key = key_of("production")
    inbox = Inbox.objects.create(name="Mine", created_by=members[Role.OWNER])
    form = EndpointCreateForm(
        {"name": "To inbox", "inbox": inbox.pk, "url": "", "event_types": ["generation.failed"]},
        key=key,
        receiver_url=lambda chosen: inboxes.delivery_url(chosen, key, None),
    )
    assert not form.is_valid()
    assert "https://" in form.errors["url"][0] and "receiver URL" in form.errors["url"][0]


def test_the_own_sandbox_delivers_to_the_inbox_at_the_consoles_own_address(members, rf):
    key = key_of("sandbox")
    inbox = Inbox.objects.create(name="Mine", created_by=members[Role.OWNER])
    forged = rf.get("/", HTTP_HOST="127.0.0.1:6379")
    assert inboxes.delivery_url(inbox, key, forged).startswith("http://testserver/")

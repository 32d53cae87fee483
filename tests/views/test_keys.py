"""The Keys section: add (tested first), sandbox button, replace, disable, delete, scopes."""

import io

import pytest
import requests
from django.core.management import call_command
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from rivya_dashboard.accounts.models import AuditEvent, Role
from rivya_dashboard.console import first_reads
from rivya_dashboard.console.models import BalanceReading, CatalogueModel, CatalogueSync
from rivya_dashboard.rivya import client as rivya_client
from rivya_dashboard.rivya.errors import Unavailable
from rivya_dashboard.sandbox import control_api
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.management.commands import sandbox_key as sandbox_key_command
from rivya_dashboard.sandbox.models import RequestLog as SandboxRequestLog
from rivya_dashboard.vault import crypto, transport
from rivya_dashboard.vault.models import ApiKey, KeyGrant, LedgerEntry
from tests.browser.inline_worker import run_ready_tasks

pytestmark = pytest.mark.django_db


def add(client, raw: str, follow: bool = False, **fields):
    data = {"label": "Main", "environment": "sandbox", "secret": raw, **fields}
    return client.post(reverse("key-add"), data, follow=follow)


def test_it_tests_the_key_then_stores_only_ciphertext(owner_client, sandbox_key, api_in_process):
    response = add(owner_client, sandbox_key)
    key = ApiKey.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("key-detail", args=[key.pk])
    assert key.secret.startswith("v1:") and sandbox_key not in key.secret
    assert key.reveal() == sandbox_key
    assert key.display == f"rvya_sk_…{sandbox_key[-4:]}"
    assert key.base_url == "http://testserver/sandbox/api/v1"
    assert key.scope_state("credits:read") == "ok"
    assert key.scope_state("generations:read") == "ok"
    assert key.scope_state("generations:create") == "unchecked"
    entries = LedgerEntry.objects.filter(key=key)
    assert entries.filter(operation="keys.test.credits:read", http_status=200).exists()
    event = AuditEvent.objects.get(action="key.added")
    assert event.target == "Main" and sandbox_key not in str(event.detail)
    page = owner_client.get(response["Location"])
    assert key.display in page.content.decode()
    assert sandbox_key not in page.content.decode()


def test_it_reports_missing_scopes(owner_client, api_in_process):
    raw = issue_key(scopes=["credits:read", "files:read"])
    response = add(owner_client, raw, follow=True)
    assert "lacks these scopes: chat:read, generations:read" in response.content.decode()
    key = ApiKey.objects.get()
    assert key.scope_state("credits:read") == "ok"
    assert key.scope_state("files:read") == "ok"
    assert key.scope_state("generations:read") == "denied"
    assert key.scope_state("webhooks:manage") == "denied"
    denied = LedgerEntry.objects.filter(key=key, error_code="api_scope_denied")
    assert denied.filter(http_status=403).count() >= 2
    page = owner_client.get(reverse("key-detail", args=[key.pk])).content.decode()
    assert "missing" in page


@pytest.mark.parametrize("raw", ["", "sk_live_abc", "rvya_sk_short", "rvya_sk_has space inside1"])
def test_a_malformed_key_is_refused_inline(owner_client, api_in_process, raw):
    response = add(owner_client, raw)
    assert response.status_code == 400
    assert not ApiKey.objects.exists()
    assert not LedgerEntry.objects.exists()
    assert response.context["form"].errors or response.context["rejection"]


def test_a_key_the_api_rejects_shows_its_message_and_request_id(owner_client, api_in_process):
    raw = "rvya_sk_" + "Z" * 40
    response = add(owner_client, raw)
    body = response.content.decode()
    assert response.status_code == 400
    assert not ApiKey.objects.exists()
    assert "Rivya did not accept this key" in body
    assert "req_" in body
    assert "Nothing was saved" in body
    assert raw not in body
    failed = LedgerEntry.objects.get()
    assert failed.http_status == 401 and failed.key is None and failed.key_label == "Main"
    refused = AuditEvent.objects.get(action="key.add_refused")
    assert refused.detail["request_id"] == failed.request_id and raw not in str(refused.detail)


def test_a_custom_url_failing_the_forgery_checks_is_refused(owner_client, api_in_process):
    response = add(
        owner_client, "rvya_sk_" + "A" * 40, environment="custom", base_url="http://127.0.0.1:8000"
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "private or reserved address" in html
    assert "public base URL, ending in /api/v1" in html
    assert not ApiKey.objects.exists() and not LedgerEntry.objects.exists()


def test_a_custom_environment_needs_a_url(owner_client):
    response = add(owner_client, "rvya_sk_" + "A" * 40, environment="custom")
    assert response.status_code == 400
    assert "Enter the API root URL" in response.content.decode()


def test_labels_are_unique(owner_client, vault_key, sandbox_key):
    response = add(owner_client, sandbox_key, label="team SANDBOX")
    assert response.status_code == 400
    assert ApiKey.objects.count() == 1


def test_the_sandbox_button_stores_a_sandbox_key(owner_client, api_in_process):
    response = owner_client.post(reverse("key-sandbox"), follow=True)
    key = ApiKey.objects.get()
    assert key.environment == "sandbox" and key.label == "Sandbox"
    assert key.reveal().startswith("rvya_sk_")
    assert key.reveal() not in response.content.decode()
    assert key.scope_state("credits:read") == "ok"
    owner_client.post(reverse("key-sandbox"))
    assert ApiKey.objects.filter(label="Sandbox 2").exists()


def test_the_sandbox_button_mints_over_http_like_any_client(
    owner_client, api_in_process, monkeypatch
):
    def no_command(*args, **kwargs):
        pytest.fail("a management command ran inside the request")

    monkeypatch.setattr(sandbox_key_command.Command, "handle", no_command)
    owner_client.post(reverse("key-sandbox"))
    key = ApiKey.objects.get()
    assert key.reveal().startswith("rvya_sk_") and key.environment == "sandbox"
    mint = SandboxRequestLog.objects.get(path="/sandbox/api/control/keys")
    assert mint.status == 201 and mint.key is None


def test_a_sandbox_that_cannot_mint_says_so_and_stores_nothing(
    owner_client, api_in_process, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(control_api, "issue_key", broken)
    page = owner_client.post(reverse("key-sandbox"), follow=True).content.decode()
    assert "The sandbox could not make a key" in page
    assert not ApiKey.objects.exists()


def test_the_sandbox_button_is_gone_without_the_sandbox(owner_client, settings):
    settings.RIVYA_SANDBOX = False
    page = owner_client.get(reverse("keys")).content.decode()
    assert reverse("key-sandbox") not in page
    owner_client.post(reverse("key-sandbox"))
    assert not ApiKey.objects.exists()


def test_replacing_the_value_keeps_grants_and_history(owner_client, vault_key, members):
    grant = KeyGrant.objects.create(
        member=members[Role.OPERATOR], key=vault_key, actions=["browse"]
    )
    old_cipher = vault_key.secret
    fresh = issue_key()
    response = owner_client.post(reverse("key-replace", args=[vault_key.pk]), {"secret": fresh})
    assert response.status_code == 302
    vault_key.refresh_from_db()
    assert vault_key.secret != old_cipher and vault_key.reveal() == fresh
    assert vault_key.replaced_at is not None
    assert KeyGrant.objects.filter(pk=grant.pk).exists()
    assert AuditEvent.objects.filter(action="key.replaced").exists()


def test_a_rejected_replacement_keeps_the_old_value(owner_client, vault_key, sandbox_key):
    url = reverse("key-replace", args=[vault_key.pk])
    raw = "rvya_sk_" + "Q" * 40
    response = owner_client.post(url, {"secret": raw})
    assert response.status_code == 400
    vault_key.refresh_from_db()
    assert vault_key.reveal() == sandbox_key
    refused = AuditEvent.objects.get(action="key.replace_refused")
    assert refused.detail["key_id"] == vault_key.pk and refused.detail["request_id"]
    assert raw not in str(refused.detail)


def test_disable_and_enable(owner_client, vault_key):
    url = reverse("key-status", args=[vault_key.pk])
    owner_client.post(url, {"status": "disabled"})
    vault_key.refresh_from_db()
    assert not vault_key.is_active
    owner_client.post(url, {"status": "bogus"})
    vault_key.refresh_from_db()
    assert not vault_key.is_active
    owner_client.post(url, {"status": "active"})
    vault_key.refresh_from_db()
    assert vault_key.is_active
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "key.disabled" in actions and "key.enabled" in actions


def test_delete_needs_the_label_and_the_ledger_keeps_it(owner_client, vault_key):
    LedgerEntry.objects.create(key=vault_key, key_label=vault_key.label, operation="credits.get")
    url = reverse("key-delete", args=[vault_key.pk])
    assert owner_client.get(url).status_code == 200
    assert owner_client.post(url, {"confirm": "wrong"}).status_code == 400
    assert ApiKey.objects.exists()
    response = owner_client.post(url, {"confirm": vault_key.label})
    assert response.status_code == 302
    assert not ApiKey.objects.exists()
    entry = LedgerEntry.objects.get()
    assert entry.key is None and entry.key_label == "Team sandbox"
    assert AuditEvent.objects.filter(action="key.deleted", target="Team sandbox").exists()


def test_retesting_refreshes_scopes(owner_client, vault_key):
    response = owner_client.post(reverse("key-test", args=[vault_key.pk]))
    assert response.status_code == 302
    vault_key.refresh_from_db()
    assert vault_key.tested_at is not None and vault_key.scope_state("credits:read") == "ok"
    assert AuditEvent.objects.filter(action="key.tested").exists()


def test_a_corrupted_ciphertext_breaks_only_that_key(owner_client, vault_key):
    other = ApiKey.objects.create(label="Other", environment="sandbox", base_url="x", last4="abcd")
    other.store_secret("rvya_sk_" + "B" * 40)
    other.save()
    ApiKey.objects.filter(pk=vault_key.pk).update(secret=other.secret)
    response = owner_client.post(reverse("key-test", args=[vault_key.pk]))
    assert response.status_code == 409
    assert "cannot be read" in response.content.decode()
    assert owner_client.get(reverse("keys")).status_code == 200
    assert owner_client.get(reverse("key-detail", args=[vault_key.pk])).status_code == 200
    assert other.reveal().endswith("B" * 4)


def test_a_lost_keyring_gives_the_key_error_page(owner_client, vault_key, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "new-machine"
    response = owner_client.post(reverse("key-test", args=[vault_key.pk]))
    assert response.status_code == 409
    assert crypto.key_id_of(vault_key.secret) in response.content.decode()


def test_owner_sees_all_keys_operator_only_granted_viewer_none(clients, members, vault_key):
    hidden = ApiKey.objects.create(label="Hidden", environment="production", base_url="x")
    KeyGrant.objects.create(member=members[Role.OPERATOR], key=vault_key, actions=["generate"])
    owner_page = clients[Role.OWNER].get(reverse("keys")).content.decode()
    assert "Team sandbox" in owner_page and "Hidden" in owner_page
    operator_page = clients[Role.OPERATOR].get(reverse("keys")).content.decode()
    assert "Team sandbox" in operator_page and hidden.label not in operator_page
    viewer_page = clients[Role.VIEWER].get(reverse("keys")).content.decode()
    assert "Team sandbox" not in viewer_page and "Viewers read the call history" in viewer_page


def test_the_add_form_never_renders_the_key_back(owner_client, api_in_process):
    raw = "rvya_sk_" + "R" * 40
    body = add(owner_client, raw, label="").content.decode()
    assert raw not in body
    assert 'type="password"' in body


def test_add_key_command_reads_stdin(members, sandbox_key, api_in_process, monkeypatch, settings):
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = True
    monkeypatch.setattr("sys.stdin", io.StringIO(sandbox_key + "\n"))
    out = io.StringIO()
    call_command(
        "add_key", label="Scripted", base_url="http://127.0.0.1/sandbox/api/v1", stdout=out
    )
    key = ApiKey.objects.get(label="Scripted")
    assert key.environment == "custom" and key.reveal() == sandbox_key
    assert sandbox_key not in out.getvalue()
    assert AuditEvent.objects.get(action="key.added").actor_name == "system"


def test_add_key_command_refuses_a_rejected_key(db, api_in_process, monkeypatch, settings):
    from django.core.management.base import CommandError

    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = True
    monkeypatch.setattr("sys.stdin", io.StringIO("rvya_sk_" + "N" * 40 + "\n"))
    with pytest.raises(CommandError, match="did not accept"):
        call_command("add_key", label="Bad", base_url="http://127.0.0.1/sandbox/api/v1")
    assert not ApiKey.objects.exists()


def test_operators_cannot_reach_key_pages(clients, vault_key):
    operator = clients[Role.OPERATOR]
    assert operator.get(reverse("key-detail", args=[vault_key.pk])).status_code == 403
    response = operator.post(
        reverse("key-delete", args=[vault_key.pk]), {"confirm": "Team sandbox"}
    )
    assert response.status_code == 403
    assert ApiKey.objects.filter(pk=vault_key.pk).exists()


def test_the_dashboard_offers_the_sandbox_until_a_key_exists(clients, api_in_process):
    home = reverse("home")
    assert reverse("key-sandbox") in clients[Role.ADMIN].get(home).content.decode()
    assert reverse("key-sandbox") not in clients[Role.OPERATOR].get(home).content.decode()
    clients[Role.ADMIN].post(reverse("key-sandbox"))
    assert ApiKey.objects.filter(environment="sandbox").exists()
    assert reverse("key-sandbox") not in clients[Role.ADMIN].get(home).content.decode()


class Unreachable(requests.adapters.BaseAdapter):
    def send(self, request, **kwargs):
        raise requests.ConnectionError("GuardedHTTPSPool(host='rivya.ai'): internals")

    def close(self) -> None:
        """Nothing to close."""


def test_an_unreachable_api_is_named_by_its_address(owner_client, monkeypatch):
    session = requests.Session()
    session.mount("https://", Unreachable())
    monkeypatch.setattr(transport, "session_for", lambda base_url: session)
    monkeypatch.setattr(rivya_client.time, "sleep", lambda seconds: None)
    response = add(owner_client, "rvya_sk_" + "U" * 40, environment="production")
    body = response.content.decode()
    assert response.status_code == 400
    assert "Could not reach https://rivya.ai/api/v1" in body
    assert "GuardedHTTPSPool" not in body
    assert not ApiKey.objects.exists()


def pages_after_a_key(client) -> dict[str, str]:
    names = ("models", "generate", "chat", "credits", "home")
    return {name: client.get(reverse(name)).content.decode() for name in names}


def assert_filled(pages: dict[str, str], credits: str = "1,000") -> None:
    """What a person sees right after adding a working key: no "add a key", no empty balance."""
    assert "The catalogue is empty" not in pages["models"] and "Nano Banana 2" in pages["models"]
    assert "No model to run yet" not in pages["generate"]
    assert 'name="prompt"' in pages["generate"]
    assert "no chat models yet" not in pages["chat"]
    assert "No balance read yet" not in pages["credits"] and credits in pages["credits"]
    assert "not read yet" not in pages["home"] and "No balance read yet" not in pages["home"]
    assert credits in pages["home"]


def test_use_the_sandbox_fills_every_page_at_once(owner_client, api_in_process):
    owner_client.post(reverse("key-sandbox"))
    key = ApiKey.objects.get()
    assert BalanceReading.objects.get(key=key).credits == 1000
    assert CatalogueSync.current().fetched_at is not None
    assert_filled(pages_after_a_key(owner_client))
    assert not DBTaskResult.objects.filter(task_path__endswith="read_balance").exists()


def test_a_pasted_key_fills_every_page_at_once(owner_client, sandbox_key, api_in_process):
    assert add(owner_client, sandbox_key).status_code == 302
    reads = LedgerEntry.objects.filter(operation__in=["models.list", "credits.get"])
    assert sorted(reads.values_list("operation", "member_name")) == [
        ("credits.get", "owner"),
        ("models.list", "owner"),
    ]
    assert_filled(pages_after_a_key(owner_client))


def test_the_add_key_command_fills_every_page_at_once(
    owner_client, sandbox_key, api_in_process, monkeypatch, settings
):
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = True
    monkeypatch.setattr("sys.stdin", io.StringIO(sandbox_key + "\n"))
    call_command("add_key", label="Scripted", base_url="http://127.0.0.1/sandbox/api/v1")
    assert_filled(pages_after_a_key(owner_client))


def timing_out_in_the_request(method):
    """The API call, except from the quick client of the request that added the key."""

    def call(client, *args, **kwargs):
        if client.timeout == first_reads.READ_TIMEOUT:
            raise Unavailable("Read timed out.", status=None)
        return method(client, *args, **kwargs)

    return call


# The worker closes its database connection after its tasks, as db_worker does: on PostgreSQL
# that would end the transaction a plain test runs in.
@pytest.mark.django_db(transaction=True)
def test_a_slow_api_leaves_the_first_reads_to_the_worker(owner_client, api_in_process, monkeypatch):
    """The key is stored at once; the catalogue and the balance are read by the worker."""
    for name in ("list_models", "get_credits"):
        method = getattr(rivya_client.RivyaClient, name)
        monkeypatch.setattr(rivya_client.RivyaClient, name, timing_out_in_the_request(method))
    owner_client.post(reverse("key-sandbox"))
    key = ApiKey.objects.get()
    waiting = set(DBTaskResult.objects.values_list("task_path", flat=True))
    assert "rivya_dashboard.console.tasks.refresh_catalogue" in waiting
    assert "rivya_dashboard.console.credits.read_balance" in waiting
    assert not CatalogueModel.objects.exists()
    run_ready_tasks()
    assert CatalogueModel.objects.exists()
    assert BalanceReading.objects.filter(key=key).first().credits == 1000
    assert_filled(pages_after_a_key(owner_client))

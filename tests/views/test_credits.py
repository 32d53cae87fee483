"""The Credits page: balances read on demand and by the task, outages, caps, low-balance alerts."""

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.urls import reverse
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from rivya_dashboard.accounts.models import AuditEvent, Role
from rivya_dashboard.console import alerts, credits
from rivya_dashboard.console.models import BalanceAlert, BalanceReading, Generation, Status
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.rivya.errors import Unavailable
from rivya_dashboard.vault.models import ApiKey, KeyGrant, LedgerEntry

pytestmark = pytest.mark.django_db


def read_now(client, key):
    return client.post(reverse("credits-refresh", args=[key.pk]), follow=True)


def test_read_now_shows_the_balance_and_writes_a_ledger_row(owner_client, vault_key):
    response = read_now(owner_client, vault_key)
    assert response.status_code == 200
    reading = BalanceReading.objects.get()
    assert reading.credits == 1000 and reading.error == "" and reading.request_id.startswith("req_")
    assert "1,000" in response.content.decode()  # grouped for the locale
    assert LedgerEntry.objects.filter(operation="credits.get", http_status=200).count() == 1


def test_an_outage_keeps_the_last_known_balance_with_its_error(
    owner_client, vault_key, monkeypatch
):
    read_now(owner_client, vault_key)

    def down(self):
        raise Unavailable("Rivya is unavailable right now", status=503, request_id="req_down")

    monkeypatch.setattr(RivyaClient, "get_credits", down)
    response = read_now(owner_client, vault_key)
    page = response.content.decode()
    assert response.status_code == 200
    assert "1,000" in page
    assert "last try failed" in page and "Rivya is unavailable right now" in page
    assert "req_down" in page
    latest = BalanceReading.objects.first()
    assert latest.failed and latest.request_id == "req_down"


def test_an_operator_without_a_grant_cannot_read_and_nothing_is_called(clients, vault_key):
    response = read_now(clients[Role.OPERATOR], vault_key)
    assert "no grant" in response.content.decode()
    assert not BalanceReading.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_the_refresh_task_reads_every_active_key_and_comes_back(vault_key, settings):
    settings.RIVYA_BALANCE_REFRESH_MINUTES = 15
    credits.ensure_balance_refresh()
    credits.ensure_balance_refresh()
    waiting = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
    assert waiting.count() == 1
    waiting.delete()  # the worker takes the waiting run: it is no longer READY
    assert credits.refresh_balances.call() == 1
    assert BalanceReading.objects.get(key=vault_key).credits == 1000
    later = DBTaskResult.objects.filter(status=TaskResultStatus.READY).order_by("-run_after")
    assert later.first().run_after > timezone.now() + timedelta(minutes=14)


def test_a_second_refresh_chain_ends_instead_of_running_forever(vault_key):
    credits.ensure_balance_refresh()
    credits.refresh_balances.call()  # a second chain, started by a racing page load
    assert DBTaskResult.objects.filter(status=TaskResultStatus.READY).count() == 1


def test_reserved_credits_of_running_jobs_are_shown(owner_client, vault_key, members):
    owner = members[Role.OWNER]
    common = {"member": owner, "member_name": "owner", "key": vault_key, "model_id": "m"}
    Generation.objects.create(
        **common, idempotency_key="a", status=Status.PROCESSING, reserved_credits=7
    )
    Generation.objects.create(
        **common, idempotency_key="b", status=Status.QUEUED, estimate_credits=5
    )
    Generation.objects.create(
        **common, idempotency_key="c", status=Status.SUCCEEDED, reserved_credits=100
    )
    response = owner_client.get(reverse("credits"))
    assert response.context["reserved"] == 12


def test_the_history_chart_and_its_table(owner_client, vault_key):
    now = timezone.now()
    for hours, value in ((30, 900), (20, 850), (10, 800)):
        BalanceReading.objects.create(key=vault_key, at=now - timedelta(hours=hours), credits=value)
    page = owner_client.get(reverse("credits")).content.decode()
    assert 'class="chart-line"' in page and "<polyline" in page
    assert "Show the readings as a table" in page and "850" in page
    assert "style=" not in page.split("<main", 1)[1]


def test_the_history_region_swaps_alone_for_htmx(owner_client, vault_key):
    BalanceReading.objects.create(key=vault_key, credits=10)
    response = owner_client.get(
        reverse("credits"), {"key": vault_key.pk}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b'id="history"' in response.content and b"<html" not in response.content


def test_an_operator_sees_their_cap_with_what_is_left_and_the_reset(clients, members, vault_key):
    operator = members[Role.OPERATOR]
    KeyGrant.objects.create(member=operator, key=vault_key, actions=["generate"], daily_cap=10)
    LedgerEntry.objects.create(
        member=operator,
        member_name="operator",
        key=vault_key,
        operation="generations.create",
        http_status=200,
        credits_final=Decimal(4),
    )
    response = clients[Role.OPERATOR].get(reverse("credits"))
    (cap,) = response.context["caps"]
    assert cap.left == 6 and not cap.reached
    tomorrow = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d 00:00")
    assert tomorrow in response.content.decode()


def set_alert(client, key, **fields):
    data = {f"alert-{key.pk}-{name}": value for name, value in fields.items()}
    return client.post(reverse("credits-alert", args=[key.pk]), data, follow=True)


def test_crossing_the_threshold_raises_one_banner_one_audit_row_and_rearms(clients, vault_key):
    set_alert(clients[Role.ADMIN], vault_key, threshold=2000)
    assert AuditEvent.objects.filter(action="credits.alert_changed").count() == 1
    read_now(clients[Role.OWNER], vault_key)
    read_now(clients[Role.OWNER], vault_key)
    assert AuditEvent.objects.filter(action="credits.low_balance").count() == 1
    banner = "below 2,000 credits"
    assert banner in clients[Role.ADMIN].get(reverse("home")).content.decode()
    assert banner not in clients[Role.OPERATOR].get(reverse("home")).content.decode()
    set_alert(clients[Role.ADMIN], vault_key, threshold=500)
    read_now(clients[Role.OWNER], vault_key)
    assert BalanceAlert.objects.get().below_since is None
    assert banner not in clients[Role.ADMIN].get(reverse("home")).content.decode()


def test_an_alert_url_failing_the_forgery_checks_is_refused_and_nothing_saved(
    owner_client, vault_key
):
    response = set_alert(owner_client, vault_key, threshold=10, new_alert_url="http://127.0.0.1/x")
    assert response.status_code == 400
    html = response.content.decode()
    assert "private or reserved address" in html
    assert "service that should hear about the low balance" in html
    assert "API&#x27;s public" not in html and "base URL" not in html
    assert not BalanceAlert.objects.exists()
    assert not AuditEvent.objects.filter(action="credits.alert_changed").exists()


def test_a_bad_threshold_is_refused_inline(owner_client, vault_key):
    response = set_alert(owner_client, vault_key, threshold="-3")
    assert response.status_code == 400
    assert not BalanceAlert.objects.exists()


class FakeResponse:
    status_code = 204


class FakeSession:
    def __init__(self):
        self.posts = []

    def post(self, url, **kwargs):
        self.posts.append((url, kwargs))
        return FakeResponse()


def test_the_alert_posts_json_once_and_the_url_is_never_shown_again(
    owner_client, vault_key, monkeypatch
):
    session = FakeSession()
    monkeypatch.setattr(alerts, "check_url", lambda url, **kwargs: url)
    monkeypatch.setattr(alerts, "guarded_session", lambda: session)
    hook = "https://hooks.example.com/services/T000/SECRETPATH"
    set_alert(owner_client, vault_key, threshold=5000, new_alert_url=hook)
    read_now(owner_client, vault_key)
    read_now(owner_client, vault_key)
    ((url, kwargs),) = session.posts
    assert url == hook
    assert kwargs["json"]["type"] == "credits.low_balance"
    assert kwargs["json"]["current_credits"] == 1000 and kwargs["json"]["threshold"] == 5000
    assert BalanceAlert.objects.get().notified_at is not None
    page = owner_client.get(reverse("credits")).content.decode()
    assert "SECRETPATH" not in page and "https://hooks.example.com/…" in page
    audit = AuditEvent.objects.filter(action__startswith="credits.")
    assert all("SECRETPATH" not in str(event.detail) for event in audit)


def test_a_failed_alert_post_is_shown_on_the_page(owner_client, vault_key, monkeypatch):
    def refuse():
        raise OSError("connection refused")

    monkeypatch.setattr(alerts, "check_url", lambda url, **kwargs: url)
    set_alert(owner_client, vault_key, threshold=5000, new_alert_url="https://a.example.com/h")
    monkeypatch.setattr(alerts, "guarded_session", refuse)
    read_now(owner_client, vault_key)
    page = owner_client.get(reverse("credits")).content.decode()
    assert "The alert could not be sent" in page


def test_a_failed_alert_post_keeps_the_url_secret_out_of_the_log(
    owner_client, vault_key, monkeypatch, caplog
):
    hook = "https://hooks.example.com/services/T000/SECRETPATH"

    class Unreachable:
        def post(self, url, **kwargs):
            raise requests.ConnectionError(f"Max retries exceeded with url: {url}")

    monkeypatch.setattr(alerts, "check_url", lambda url, **kwargs: url)
    monkeypatch.setattr(alerts, "guarded_session", Unreachable)
    set_alert(owner_client, vault_key, threshold=5000, new_alert_url=hook)
    read_now(owner_client, vault_key)
    assert "ConnectionError" in BalanceAlert.objects.get().notify_error
    assert "not sent" in caplog.text and "SECRETPATH" not in caplog.text


def test_removing_the_alert_url(owner_client, vault_key, monkeypatch):
    monkeypatch.setattr(alerts, "check_url", lambda url, **kwargs: url)
    set_alert(owner_client, vault_key, threshold=5, new_alert_url="https://a.example.com/h")
    set_alert(owner_client, vault_key, threshold=5)
    assert BalanceAlert.objects.get().alert_url == "https://a.example.com/h"
    set_alert(owner_client, vault_key, threshold=5, remove_alert_url="on")
    assert BalanceAlert.objects.get().alert_url == ""


def test_a_viewer_sees_a_balance_only_through_a_browse_grant(clients, members, vault_key):
    BalanceReading.objects.create(key=vault_key, credits=321)
    page = clients[Role.VIEWER].get(reverse("credits")).content.decode()
    assert "321" not in page
    assert reverse("credits-refresh", args=[vault_key.pk]) not in page
    KeyGrant.objects.create(member=members[Role.VIEWER], key=vault_key, actions=["browse"])
    page = clients[Role.VIEWER].get(reverse("credits")).content.decode()
    assert "321" in page
    assert reverse("credits-refresh", args=[vault_key.pk]) in page
    assert "Save alert" not in page


def test_an_empty_console_says_what_to_do(owner_client):
    page = owner_client.get(reverse("credits")).content.decode()
    assert "No active key yet." in page and reverse("key-add") in page


def test_each_key_has_its_own_alert_form_and_history_tab(owner_client, vault_key):
    other = ApiKey.objects.create(label="Production", base_url="https://rivya.ai/api/v1")
    page = owner_client.get(reverse("credits")).content.decode()
    assert f'id="id_alert-{vault_key.pk}-threshold"' in page
    assert f'id="id_alert-{other.pk}-threshold"' in page
    assert f'href="?key={other.pk}#history"' in page

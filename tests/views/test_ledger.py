"""The ledger: one row per API call, written on failure too, with filters and CSV export."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.rivya.errors import InsufficientCredits, RivyaError
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.models import KeyGrant, LedgerEntry

pytestmark = pytest.mark.django_db


def test_a_successful_call_is_settled_with_request_id_and_latency(members, vault_key):
    client = vault_key.client()
    owner = members[Role.OWNER]
    with ledger.recording(owner, vault_key, "credits.get", action="browse", client=client) as entry:
        balance = client.get_credits()
        assert LedgerEntry.objects.filter(pk=entry.pk, http_status__isnull=True).exists()
    row = LedgerEntry.objects.get()
    assert balance["current_credits"] == 1000
    assert row.http_status == 200 and row.error_code == ""
    assert row.request_id.startswith("req_") and row.request_id == client.last_request_id
    assert row.latency_ms is not None and row.member_name == "owner"
    assert row.key_label == "Team sandbox"
    vault_key.refresh_from_db()
    assert vault_key.last_used_at is not None


def test_a_failed_call_is_written_with_status_code_and_no_charge(members, vault_key):
    client = vault_key.client()
    with (
        pytest.raises(RivyaError),
        ledger.recording(
            members[Role.ADMIN],
            vault_key,
            "generations.create",
            action="generate",
            client=client,
            model="no-such-model",
            credits=Decimal(8),
            idempotency_key="idem-1",
        ),
    ):
        client.create_generation("no-such-model", "a cat", idempotency_key="idem-1")
    row = LedgerEntry.objects.get()
    assert row.http_status == 400 and row.error_code == "validation_failed"
    assert row.request_id.startswith("req_")
    assert row.model == "no-such-model" and row.idempotency_key == "idem-1"
    assert row.credits_reserved == 8 and row.credits_final == 0


def test_a_lost_answer_keeps_the_reservation(members, vault_key):
    recording = ledger.recording(members[Role.OWNER], vault_key, "generations.create", credits=3)
    with pytest.raises(RivyaError), recording:
        raise InsufficientCredits("boom", status=None)
    row = LedgerEntry.objects.get()
    assert row.credits_reserved == 3 and row.credits_final is None


def test_a_console_error_is_recorded_too(members, vault_key):
    recording = ledger.recording(members[Role.OWNER], vault_key, "credits.get")
    with pytest.raises(ZeroDivisionError), recording:
        1 / 0  # noqa: B018
    assert LedgerEntry.objects.get().error_code == "console_error"


def seed(members, vault_key):
    operator = members[Role.OPERATOR]
    KeyGrant.objects.create(member=operator, key=vault_key, actions=["browse"])
    LedgerEntry.objects.create(
        member=operator,
        member_name="operator",
        key=vault_key,
        key_label=vault_key.label,
        operation="credits.get",
        http_status=200,
        request_id="req_ok",
    )
    LedgerEntry.objects.create(
        member=members[Role.OWNER],
        member_name="owner",
        key=None,
        key_label="Old key",
        operation="generations.create",
        http_status=402,
        error_code="insufficient_credits",
        request_id="req_bad",
        credits_reserved=Decimal("2.5"),
        credits_final=Decimal(0),
    )


def test_the_page_lists_and_filters(clients, members, vault_key):
    seed(members, vault_key)
    page = clients[Role.ADMIN].get(reverse("ledger")).content.decode()
    assert "req_ok" in page and "req_bad" in page and "Old key" in page
    failed = clients[Role.ADMIN].get(reverse("ledger"), {"outcome": "failed"}).content.decode()
    assert "req_bad" in failed and "req_ok" not in failed
    mine = clients[Role.ADMIN].get(reverse("ledger"), {"member": members[Role.OPERATOR].pk})
    assert "req_ok" in mine.content.decode() and "req_bad" not in mine.content.decode()
    by_key = clients[Role.ADMIN].get(reverse("ledger"), {"key": "old KEY"}).content.decode()
    assert "req_bad" in by_key and "req_ok" not in by_key


def test_htmx_gets_the_table_partial(clients, members, vault_key):
    seed(members, vault_key)
    response = clients[Role.OPERATOR].get(
        reverse("ledger"), {"operation": "credits"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="ledger-table"')
    assert "req_ok" in body and "req_bad" not in body
    # The swapped table carries the export link for the filters now applied.
    assert reverse("ledger-export") + "?operation=credits" in body


@pytest.mark.parametrize("htmx", [False, True])
def test_bad_filters_are_a_400_with_a_message_and_no_rows(clients, members, vault_key, htmx):
    seed(members, vault_key)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = clients[Role.OWNER].get(
        reverse("ledger"), {"date_from": "2026-02-01", "date_to": "2026-01-01"}, **headers
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "swap them" in body
    assert "req_ok" not in body and "req_bad" not in body
    assert reverse("ledger-export") not in body


def test_a_bad_export_filter_is_a_400_page(clients):
    response = clients[Role.OWNER].get(
        reverse("ledger-export"), {"date_from": "2026-02-01", "date_to": "2026-01-01"}
    )
    assert response.status_code == 400
    assert "swap them" in response.content.decode()


def test_csv_export_follows_the_filters(clients, members, vault_key):
    seed(members, vault_key)
    response = clients[Role.ADMIN].get(reverse("ledger-export"), {"outcome": "failed"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["time_utc", "member", "key", "operation"]
    assert len(rows) == 2
    assert rows[1][2] == "Old key" and rows[1][6] == "req_bad" and rows[1][8] == "2.5000"

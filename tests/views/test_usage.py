"""The Usage page: totals equal to the ledger's, breakdowns, drill-down, CSV, bad input."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.console.models import Generation, Status
from rivya_dashboard.vault.models import LedgerEntry

pytestmark = pytest.mark.django_db

TODAY = timezone.now().date()


def at(days_ago: int, hour: int = 12) -> datetime:
    day = TODAY - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def spend(who: str, when: datetime, final=None, reserved=None, status=200, **fields) -> LedgerEntry:
    fields.setdefault("operation", "generations.create")
    fields.setdefault("key_label", "Team sandbox")
    fields.setdefault("model", "flux")
    return LedgerEntry.objects.create(
        member_name=who,
        at=when,
        credits_final=final,
        credits_reserved=reserved,
        http_status=status,
        **fields,
    )


@pytest.fixture
def ledger(db) -> list[LedgerEntry]:
    return [
        spend("alice", at(0, 9), final=Decimal("3.5")),
        spend("alice", at(0, 10), final=Decimal(2), model="veo"),
        spend("bob", at(1), final=Decimal(10), key_label="Other key"),
        spend("bob", at(2), reserved=Decimal(4), status=None),  # in flight: its reservation counts
        spend("bob", at(3), final=Decimal(0), reserved=Decimal(8), status=402, error_code="x"),
        spend("carol", at(5), final=None, operation="credits.get"),
        spend("old", at(40), final=Decimal(999)),  # outside the default 30 days
    ]


def page(client, **params):
    return client.get(reverse("usage"), params)


def test_totals_equal_the_ledgers_own_sum(clients, ledger):
    response = page(clients[Role.ADMIN])
    assert response.status_code == 200
    totals = response.context["totals"]
    since = at(29, 0).replace(hour=0)
    rows = LedgerEntry.objects.filter(at__gte=since)
    assert totals.credits == sum((row.credits or 0 for row in rows), Decimal(0)) == Decimal("19.5")
    assert totals.calls == rows.count() == 6
    assert totals.failed == 2  # the refused call and the one still in flight


def test_breakdowns_split_spend_by_member_key_model_operation_and_status(owner_client, ledger):
    def by(dimension: str) -> dict:
        groups = page(owner_client, by=dimension).context["groups"]
        return {group.value: (group.credits, group.calls) for group, _link in groups}

    assert by("member") == {
        "alice": (Decimal("5.5"), 2),
        "bob": (Decimal(14), 3),
        "carol": (Decimal(0), 1),
    }
    assert page(owner_client).context["by"] == "member"
    assert by("key")["Other key"] == (Decimal(10), 1)
    assert by("model")["veo"] == (Decimal(2), 1)
    assert by("operation")["credits.get"] == (Decimal(0), 1)
    assert by("status") == {
        "ok": (Decimal("15.5"), 4),
        "in_flight": (Decimal(4), 1),
        "failed": (Decimal(0), 1),
    }


def test_a_group_links_to_the_view_filtered_by_it(owner_client, ledger):
    response = page(owner_client, by="key")
    (group, link), *_rest = response.context["groups"]
    assert group.value == "Other key" or group.value == "Team sandbox"
    followed = owner_client.get(reverse("usage") + link)
    assert followed.context["form"].cleaned_data["key"] == group.value
    assert followed.context["totals"].credits == group.credits


def test_a_filter_narrows_every_figure(owner_client, ledger):
    response = page(owner_client, member="bob", status="ok")
    assert response.context["totals"].credits == 10
    assert response.context["totals"].calls == 1


def test_days_are_bars_with_drill_down_links(owner_client, ledger):
    response = page(owner_client)
    chart = response.context["chart"]
    assert len(chart.bars) == 30
    today_bar = chart.bars[-1]
    assert today_bar.value == "5.5" and "bucket=" in today_bar.href
    html = response.content.decode()
    assert 'class="chart-bar"' in html and "Show the charts as a table" in html
    assert "style=" not in html.split("<main", 1)[1]


def test_a_short_range_is_charted_by_hour(owner_client, ledger):
    response = page(owner_client, date_from=TODAY.isoformat(), date_to=TODAY.isoformat())
    assert response.context["hourly"] is True
    buckets = response.context["buckets"]
    assert len(buckets) == 24
    assert buckets[9][0].credits == Decimal("3.5") and buckets[10][0].calls == 1


def test_drilling_into_a_bar_lists_exactly_its_rows(owner_client, ledger):
    bucket = at(0, 0).strftime("%Y-%m-%dT%H:%M")
    response = page(owner_client, bucket=bucket)
    assert {row.pk for row in response.context["drilled"]} == {ledger[0].pk, ledger[1].pk}
    assert 'id="drill"' in response.content.decode()


def test_the_csv_is_exactly_the_filtered_view(owner_client, ledger):
    params = {"member": "bob"}
    shown = page(owner_client, **params).context["totals"]
    response = owner_client.get(reverse("usage-export"), params)
    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == shown.calls == 3
    charged = sum(Decimal(row["credits_final"] or row["credits_reserved"] or 0) for row in rows)
    assert charged == shown.credits
    assert {row["member"] for row in rows} == {"bob"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, "swap them"),
        ({"date_from": "2024-01-01", "date_to": "2026-01-01"}, "at most 366 days"),
        ({"member": "nobody"}, "No call in the ledger has member"),
        ({"status": "exploded"}, "Select a valid choice"),
        ({"by": "shoe size"}, "pick a tab"),
        ({"bucket": "noon-ish"}, "click the bar again"),
        ({"bucket": "2020-01-01T00:00"}, "click the bar again"),
        ({"date_from": "9999-12-31", "date_to": "9999-12-31"}, "swap them"),
        ({"date_from": "yesterday"}, "Enter a valid date"),
    ],
)
def test_bad_input_gets_a_clear_message(owner_client, ledger, params, message):
    response = page(owner_client, **params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert owner_client.get(reverse("usage-export"), params).status_code == 400


def test_htmx_gets_the_region_alone(owner_client, ledger):
    response = owner_client.get(
        reverse("usage"), {"member": "alice"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b'id="usage-body"' in response.content and b"<html" not in response.content


def test_estimates_against_charges_per_model(owner_client):
    common = {"member_name": "a", "key_label": "k", "status": Status.SUCCEEDED}
    Generation.objects.create(
        model_id="flux", idempotency_key="1", estimate_credits=4, final_credits=6, **common
    )
    Generation.objects.create(
        model_id="flux", idempotency_key="2", estimate_credits=4, final_credits=4, **common
    )
    Generation.objects.create(
        model_id="veo", idempotency_key="3", estimate_credits=8, final_credits=8, **common
    )
    Generation.objects.create(
        model_id="veo",
        idempotency_key="4",
        estimate_credits=8,
        status=Status.PROCESSING,
        member_name="a",
        key_label="k",
    )
    gaps = {gap.model_id: gap for gap in page(owner_client).context["gaps"]}
    assert gaps["flux"].jobs == 2 and gaps["flux"].difference == 2 and gaps["flux"].percent == 25
    assert gaps["veo"].jobs == 1 and gaps["veo"].difference == 0


def test_the_query_count_does_not_grow_with_the_rows(owner_client, ledger):
    page(owner_client)  # the session's first request records the signed-in device
    with CaptureQueriesContext(connection) as few:
        page(owner_client)
    for n in range(50):
        spend(f"m{n % 7}", at(n % 20), final=Decimal(1), model=f"model-{n % 5}")
    with CaptureQueriesContext(connection) as many:
        page(owner_client)
    assert len(many) == len(few)


def test_an_empty_ledger_says_so(clients):
    html = page(clients[Role.VIEWER]).content.decode()
    assert "No calls in this range." in html


def test_member_key_model_and_operation_are_selects_kept_in_the_url(owner_client, ledger):
    html = page(owner_client).content.decode()
    for name in ("member", "key", "model", "operation"):
        assert f'<select name="{name}"' in html
    assert '<option value="credits.get">Credits: get</option>' in html
    filtered = page(owner_client, member="bob").content.decode()
    assert '<option value="bob" selected>bob</option>' in filtered

"""The audit log: append-only rows, the filtered page, its htmx partial and its CSV export."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import RequestFactory

from rivya_dashboard.accounts.audit import client_ip, record
from rivya_dashboard.accounts.models import AuditEvent, Role

pytestmark = pytest.mark.django_db

AUDIT = "/accounts/audit/"
EXPORT = "/accounts/audit/export.csv"


@pytest.fixture
def events(members) -> list[AuditEvent]:
    owner, admin = members[Role.OWNER], members[Role.ADMIN]
    rows = [
        (owner, "member.role_changed", "viewer", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        (owner, "invite.created", "a@example.test", datetime(2026, 3, 2, 23, 59, tzinfo=UTC)),
        (admin, "key.created", "prod", datetime(2026, 3, 3, 0, 0, tzinfo=UTC)),
        (admin, "member.deactivated", "operator", datetime(2026, 3, 5, 12, tzinfo=UTC)),
    ]
    made = []
    for actor, action, target, at in rows:
        event = record(actor, action, target, note=action)
        backdate(event, at)
        made.append(event)
    return made


def backdate(event: AuditEvent, at: datetime) -> None:
    # The model refuses updates, so tests set the time underneath it.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AuditEvent._meta.db_table} SET at = %s WHERE id = %s",  # noqa: S608
            [at, event.pk],
        )


def actions(response) -> list[str]:
    return [event.action for event in response.context["events"]]


def csv_actions(response) -> list[str]:
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    return [row["action"] for row in rows]


def test_rows_cannot_be_changed_or_deleted(members):
    event = record(members[Role.OWNER], "member.role_changed", "viewer", old="viewer", new="admin")
    event.action = "nothing.happened"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(action="nothing.happened")
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().action == "member.role_changed"


def test_every_account_change_through_the_pages_is_audited(owner_client, members):
    viewer = members[Role.VIEWER]
    owner_client.post(f"/accounts/team/members/{viewer.pk}/role/", {"role": "operator"})
    owner_client.post(f"/accounts/team/members/{viewer.pk}/active/", {"active": "0"})
    owner_client.post(f"/accounts/team/members/{viewer.pk}/active/", {"active": "1"})
    owner_client.post(
        "/accounts/team/invites/", {"email": "n@example.test", "role": "viewer", "days": 2}
    )
    invite_pk = members[Role.OWNER].invite_set.get().pk
    owner_client.post(f"/accounts/team/invites/{invite_pk}/revoke/")
    logged = AuditEvent.objects.order_by("id")
    assert [(e.action, e.actor_name) for e in logged] == [
        ("member.role_changed", "owner"),
        ("member.deactivated", "owner"),
        ("member.reactivated", "owner"),
        ("invite.created", "owner"),
        ("invite.revoked", "owner"),
    ]
    assert all(e.ip == "127.0.0.1" for e in logged)


PROXY = "10.0.0.2"


@pytest.mark.parametrize(
    ("behind_proxy", "count", "forwarded", "expected"),
    [
        (False, 1, "198.51.100.7", PROXY),
        (True, 1, "198.51.100.7", "198.51.100.7"),
        (True, 1, "203.0.113.66, 198.51.100.7", "198.51.100.7"),
        (True, 1, " 2001:db8::7 ", "2001:db8::7"),
        (True, 2, "203.0.113.66, 198.51.100.7, 10.0.0.1", "198.51.100.7"),
        (True, 2, "198.51.100.7", PROXY),
        (True, 1, None, PROXY),
        (True, 1, "not-an-address", PROXY),
    ],
)
def test_the_client_address_comes_from_the_trusted_end_of_x_forwarded_for(
    settings, behind_proxy, count, forwarded, expected
):
    settings.RIVYA_BEHIND_PROXY = behind_proxy
    settings.RIVYA_PROXY_COUNT = count
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, **headers)

    assert client_ip(request) == expected


def test_behind_a_proxy_audit_rows_record_the_client_not_a_spoofed_address(
    owner_client, members, settings
):
    settings.RIVYA_BEHIND_PROXY = True
    viewer = members[Role.VIEWER]
    owner_client.post(
        f"/accounts/team/members/{viewer.pk}/role/",
        {"role": "operator"},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.7",
    )

    assert AuditEvent.objects.get(action="member.role_changed").ip == "198.51.100.7"


def test_the_page_shows_every_event_newest_first(clients, events):
    response = clients[Role.ADMIN].get(AUDIT)
    assert response.status_code == 200
    assert actions(response) == [
        "member.deactivated",
        "key.created",
        "invite.created",
        "member.role_changed",
    ]
    assert "2026-03-05 12:00:00" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor={admin}", ["member.deactivated", "key.created"]),
        ("action=member.", ["member.deactivated", "member.role_changed"]),
        ("date_from=2026-03-02&date_to=2026-03-03", ["key.created", "invite.created"]),
        ("date_from=2026-03-04", ["member.deactivated"]),
        ("actor={owner}&action=invite", ["invite.created"]),
        ("action=nothing", []),
    ],
)
def test_filters_and_the_csv_export_show_the_same_rows(clients, members, events, query, expected):
    query = query.format(admin=members[Role.ADMIN].pk, owner=members[Role.OWNER].pk)
    client = clients[Role.ADMIN]
    page = client.get(f"{AUDIT}?{query}")
    assert page.status_code == 200
    assert actions(page) == expected
    export = client.get(f"{EXPORT}?{query}")
    assert export.status_code == 200
    assert export["Content-Type"].startswith("text/csv")
    assert csv_actions(export) == expected
    # The export link on the page carries the same filter.
    assert f'href="{EXPORT}?{query.replace("&", "&amp;")}"' in page.content.decode()


def test_the_csv_export_holds_utc_times_and_json_detail(clients, events):
    body = b"".join(clients[Role.ADMIN].get(EXPORT).streaming_content).decode()
    first = next(csv.DictReader(io.StringIO(body)))
    assert first["time_utc"] == "2026-03-05T12:00:00+00:00"
    assert json.loads(first["detail"]) == {"note": "member.deactivated"}


def test_the_csv_export_quotes_text_a_spreadsheet_would_run(clients, members):
    formula = '=HYPERLINK("https://evil.example","open")'
    record(members[Role.ADMIN], "key.added", formula)
    body = b"".join(clients[Role.ADMIN].get(EXPORT).streaming_content).decode()
    row = next(csv.DictReader(io.StringIO(body)))
    assert row["target"] == "'" + formula
    assert row["action"] == "key.added"


def test_a_reversed_date_range_is_a_clear_400(clients, events):
    client = clients[Role.ADMIN]
    response = client.get(f"{AUDIT}?date_from=2026-03-05&date_to=2026-03-01")
    assert response.status_code == 400
    assert "The start date is after the end date; swap them." in response.content.decode()
    assert actions(response) == []
    assert client.get(f"{EXPORT}?date_from=2026-03-05&date_to=2026-03-01").status_code == 400


def test_an_htmx_request_gets_only_the_table(clients, events):
    client = clients[Role.ADMIN]
    response = client.get(f"{AUDIT}?action=key", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="audit-table"')
    assert "<html" not in html
    assert "key.created" in html
    assert "member.deactivated" not in html


def test_an_htmx_request_with_a_reversed_range_shows_the_error_in_the_table(clients, events):
    response = clients[Role.ADMIN].get(
        f"{AUDIT}?date_from=2026-03-05&date_to=2026-03-01", headers={"HX-Request": "true"}
    )
    assert response.status_code == 400
    assert "swap them" in response.content.decode()
    assert "<html" not in response.content.decode()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_the_log_is_closed_to_operators_and_viewers(clients, events, role):
    assert clients[role].get(AUDIT).status_code == 403
    assert clients[role].get(EXPORT).status_code == 403


def test_the_action_field_suggests_the_actions_in_the_log(clients, events):
    html = clients[Role.ADMIN].get(AUDIT).content.decode()
    assert 'list="audit-actions"' in html
    for action in ("invite.created", "key.created", "member.deactivated", "member.role_changed"):
        assert f'<option value="{action}"></option>' in html


def test_details_read_as_text_not_as_a_python_repr(clients, members):
    record(
        members[Role.OWNER],
        "grant.changed",
        "alice on Team key",
        actions=["generate", "browse"],
        caps={"daily": 50, "monthly": None},
        expires=None,
    )
    html = clients[Role.ADMIN].get("/accounts/audit/").content.decode()
    assert "actions: generate, browse" in html
    assert "caps: daily: 50; monthly: —" in html
    assert "[&#x27;" not in html and "None" not in html

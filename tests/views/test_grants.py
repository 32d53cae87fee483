"""Grants: who may use a key for what, caps with their reset time, and the grant pages."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.accounts.models import AuditEvent, Role
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.grants import GrantRefused, check_grant, usable_keys
from rivya_dashboard.vault.models import KeyGrant, LedgerEntry
from tests.conftest import make_member

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def grant_for(member, key, **terms) -> KeyGrant:
    terms.setdefault("actions", ["browse", "generate"])
    return KeyGrant.objects.create(member=member, key=key, **terms)


def spend(member, key, credits, at=NOON, final=True):
    field = "credits_final" if final else "credits_reserved"
    return LedgerEntry.objects.create(
        member=member,
        key=key,
        key_label=key.label,
        operation="generations.create",
        at=at,
        **{field: Decimal(credits)},
    )


def test_owners_and_admins_need_no_grant(members, vault_key):
    assert check_grant(members[Role.OWNER], vault_key, "generate", 10**6) is None
    assert check_grant(members[Role.ADMIN], vault_key, "manage_webhooks") is None


def test_a_viewer_with_a_read_only_grant_may_browse_and_nothing_else(members, vault_key):
    viewer = members[Role.VIEWER]
    with pytest.raises(GrantRefused, match="no grant"):
        check_grant(viewer, vault_key, "browse")
    # A grant written before the member became a viewer still opens read-only actions only.
    grant_for(viewer, vault_key, actions=["browse", "read_history", "generate"])
    assert check_grant(viewer, vault_key, "browse").member == viewer
    for action in ("generate", "upload", "chat", "manage_webhooks"):
        with pytest.raises(GrantRefused, match="Viewers may only browse models and credits"):
            check_grant(viewer, vault_key, action)
    assert usable_keys(viewer, "browse") == [vault_key]
    assert usable_keys(viewer, "generate") == []


def test_an_operator_needs_a_grant_with_the_action(members, vault_key):
    operator = members[Role.OPERATOR]
    with pytest.raises(GrantRefused, match="no grant"):
        check_grant(operator, vault_key, "browse")
    grant_for(operator, vault_key, actions=["browse"])
    assert check_grant(operator, vault_key, "browse").member == operator
    with pytest.raises(GrantRefused, match="does not include “Chat”"):
        check_grant(operator, vault_key, "chat")


def test_a_disabled_key_refuses_everyone(members, vault_key):
    vault_key.status = "disabled"
    vault_key.save()
    with pytest.raises(GrantRefused, match="disabled"):
        check_grant(members[Role.OWNER], vault_key, "browse")


def test_an_expired_grant_refuses(members, vault_key):
    operator = members[Role.OPERATOR]
    grant_for(operator, vault_key, expires_at=NOON - timedelta(minutes=1))
    with pytest.raises(GrantRefused, match="expired on 2026-11-25 11:59 UTC"):
        check_grant(operator, vault_key, "browse", now=NOON)


def test_the_daily_cap_names_itself_and_its_reset(members, vault_key):
    operator = members[Role.OPERATOR]
    grant_for(operator, vault_key, daily_cap=100)
    spend(operator, vault_key, 60)
    spend(operator, vault_key, 500, at=NOON - timedelta(days=1))
    assert check_grant(operator, vault_key, "generate", 40, now=NOON)
    with pytest.raises(GrantRefused) as refused:
        check_grant(operator, vault_key, "generate", 41, now=NOON)
    message = str(refused.value)
    assert "daily cap of 100 credits" in message and "60 used" in message
    assert "resets at 2026-11-26 00:00 UTC" in message


def test_the_monthly_cap_counts_reservations_in_flight(members, vault_key):
    operator = members[Role.OPERATOR]
    grant_for(operator, vault_key, monthly_cap=50)
    spend(operator, vault_key, 30, at=datetime(2026, 11, 2, tzinfo=UTC), final=False)
    spend(operator, vault_key, 15, at=datetime(2026, 11, 3, tzinfo=UTC))
    spend(operator, vault_key, 999, at=datetime(2026, 10, 31, 23, 59, tzinfo=UTC))
    with pytest.raises(GrantRefused, match=r"monthly cap of 50 .*resets at 2026-12-01 00:00 UTC"):
        check_grant(operator, vault_key, "generate", 6, now=NOON)
    assert check_grant(operator, vault_key, "generate", 5, now=NOON)


def test_a_reached_cap_refuses_even_free_calls(members, vault_key):
    operator = members[Role.OPERATOR]
    grant_for(operator, vault_key, daily_cap=10)
    spend(operator, vault_key, 10)
    with pytest.raises(GrantRefused, match="daily cap"):
        check_grant(operator, vault_key, "browse", now=NOON)


def test_an_operator_over_the_cap_is_refused_before_the_api_is_called(members, vault_key):
    operator = members[Role.OPERATOR]
    grant_for(operator, vault_key, daily_cap=5)
    spend(operator, vault_key, 5, at=timezone.now())
    calls = []
    recording = ledger.recording(operator, vault_key, "credits.get", action="browse", credits=1)
    with pytest.raises(GrantRefused), recording:
        calls.append("api")
    assert calls == []
    assert LedgerEntry.objects.count() == 1


def test_usable_keys_for_pickers(members, vault_key):
    operator = members[Role.OPERATOR]
    assert usable_keys(operator, "generate") == []
    grant_for(operator, vault_key, actions=["generate"])
    assert usable_keys(operator, "generate") == [vault_key]
    assert usable_keys(operator, "chat") == []
    assert usable_keys(members[Role.ADMIN], "chat") == [vault_key]


def post_grant(client, key, **fields):
    data = {"actions": ["browse", "generate"], **fields}
    return client.post(reverse("grant-create", args=[key.pk]), data)


def test_an_admin_grants_a_key(clients, members, vault_key):
    operator = members[Role.OPERATOR]
    response = post_grant(
        clients[Role.ADMIN], vault_key, member=operator.pk, daily_cap=100, monthly_cap=1000
    )
    assert response.status_code == 302
    grant = KeyGrant.objects.get()
    assert grant.actions == ["browse", "generate"] and grant.daily_cap == 100
    event = AuditEvent.objects.get(action="grant.created")
    assert event.detail["member"] == "operator" and event.detail["daily_cap"] == 100


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"daily_cap": 0}, "at least 1 credit"),
        ({"monthly_cap": -5}, "at least 1 credit"),
        ({"daily_cap": "ten"}, "Enter a whole number"),
        ({"actions": []}, "This field is required"),
        ({"actions": ["launch_rockets"]}, "Select a valid choice"),
        ({"expires_at": "2001-01-01T00:00"}, "in the future"),
    ],
)
def test_bad_grant_input_is_refused_inline(clients, members, vault_key, fields, message):
    response = post_grant(
        clients[Role.OWNER], vault_key, member=members[Role.OPERATOR].pk, **fields
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not KeyGrant.objects.exists()


def test_a_deactivated_member_cannot_be_granted(clients, vault_key):
    gone = make_member(Role.OPERATOR, "gone")
    gone.is_active = False
    gone.save()
    response = post_grant(clients[Role.OWNER], vault_key, member=gone.pk)
    assert response.status_code == 400
    assert not KeyGrant.objects.exists()


def test_actions_the_key_lacks_are_refused(clients, members, vault_key):
    vault_key.scopes = {"webhooks:manage": "denied"}
    vault_key.save()
    response = post_grant(
        clients[Role.OWNER],
        vault_key,
        member=members[Role.OPERATOR].pk,
        actions=["browse", "manage_webhooks"],
    )
    assert response.status_code == 400
    assert "lacks the scopes for: Manage webhooks" in response.content.decode()


def test_htmx_gets_the_form_partial(clients, members, vault_key):
    response = clients[Role.OWNER].post(
        reverse("grant-create", args=[vault_key.pk]),
        {"member": members[Role.OPERATOR].pk, "actions": ["browse"], "daily_cap": 0},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert body.lstrip().startswith('<form id="grant-form"') and "<html" not in body
    done = clients[Role.OWNER].post(
        reverse("grant-create", args=[vault_key.pk]),
        {"member": members[Role.OPERATOR].pk, "actions": ["browse"]},
        HTTP_HX_REQUEST="true",
    )
    assert done["HX-Redirect"] == reverse("key-detail", args=[vault_key.pk])
    assert KeyGrant.objects.filter(member=members[Role.OPERATOR]).exists()


def test_edit_and_revoke(clients, members, vault_key):
    grant = grant_for(members[Role.OPERATOR], vault_key)
    admin = clients[Role.ADMIN]
    url = reverse("grant-edit", args=[grant.pk])
    assert admin.get(url).status_code == 200
    response = admin.post(url, {"actions": ["chat"], "monthly_cap": 7})
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.actions == ["chat"] and grant.monthly_cap == 7 and grant.daily_cap is None
    assert admin.post(url, {"actions": ["chat"], "daily_cap": 0}).status_code == 400
    admin.post(reverse("grant-revoke", args=[grant.pk]))
    assert not KeyGrant.objects.exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"grant.changed", "grant.revoked"} <= actions


def test_operator_sees_their_grant_and_spend(clients, members, vault_key):
    operator = members[Role.OPERATOR]
    grant_for(operator, vault_key, daily_cap=100)
    spend(operator, vault_key, 12, at=timezone.now())
    page = clients[Role.OPERATOR].get(reverse("keys")).content.decode()
    assert "Your grants" in page and "12 / 100" in page


def test_the_grant_form_lists_viewers_with_their_role(clients, members, vault_key):
    page = clients[Role.ADMIN].get(reverse("key-detail", args=[vault_key.pk])).content.decode()
    assert f'<option value="{members[Role.VIEWER].pk}">viewer (Viewer)</option>' in page
    assert f'<option value="{members[Role.OPERATOR].pk}">operator (Operator)</option>' in page


@pytest.mark.parametrize("htmx", [False, True])
def test_a_viewer_is_granted_read_only_actions_only(clients, members, vault_key, htmx):
    viewer = members[Role.VIEWER]
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    refused = clients[Role.ADMIN].post(
        reverse("grant-create", args=[vault_key.pk]),
        {"member": viewer.pk, "actions": ["browse", "generate"]},
        **headers,
    )
    assert refused.status_code == 400
    assert "a viewer&#x27;s grant holds read-only actions only" in refused.content.decode()
    assert not KeyGrant.objects.exists()
    granted = post_grant(
        clients[Role.ADMIN], vault_key, member=viewer.pk, actions=["browse", "read_history"]
    )
    assert granted.status_code == 302
    grant = KeyGrant.objects.get(member=viewer)
    changed = clients[Role.ADMIN].post(
        reverse("grant-edit", args=[grant.pk]), {"actions": ["read_history", "chat"]}
    )
    assert changed.status_code == 400 and "read-only actions only" in changed.content.decode()
    grant.refresh_from_db()
    assert grant.actions == ["browse", "read_history"]

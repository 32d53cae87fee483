"""Replay sends only header names that are HTTP tokens and values that are HTTP field values."""

import pytest
from django.urls import reverse

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.webhooks import forwarding
from rivya_dashboard.webhooks.models import ForwardAttempt, Inbox, InboxRequest
from tests.views.test_inbox import target  # noqa: F401
from tests.views.test_inbox_receiver import event_body, post, signed, signed_inbox


@pytest.fixture
def inbox(members) -> Inbox:
    return signed_inbox(members[Role.ADMIN])


@pytest.mark.parametrize(
    "line",
    ["X Note: 1", "X(Note): 1", "X-Note\u00e9: 1", "X/Note: 1", "{X}: 1", 'X"N: 1'],
)
def test_it_refuses_a_header_name_that_is_not_a_token(clients, inbox, settings, target, line):  # noqa: F811
    settings.RIVYA_ALLOW_LOCAL_FORWARD = True
    body = event_body()
    post(inbox, body, **signed(body))
    row = InboxRequest.objects.get()

    response = clients[Role.ADMIN].post(
        reverse("inbox-replay", args=[row.pk]),
        {"target_url": target.url, "headers": line, "body": body.decode()},
    )

    assert response.status_code == 400
    assert "A header name may hold only letters, digits" in response.content.decode()
    assert not target.received and not ForwardAttempt.objects.exists()


@pytest.mark.parametrize("value", ["a\x7fb", "a\x01b", "tab\tin\x1bside"])
def test_it_refuses_a_header_value_with_control_characters(clients, inbox, settings, target, value):  # noqa: F811
    settings.RIVYA_ALLOW_LOCAL_FORWARD = True
    body = event_body()
    post(inbox, body, **signed(body))
    row = InboxRequest.objects.get()

    response = clients[Role.ADMIN].post(
        reverse("inbox-replay", args=[row.pk]),
        {"target_url": target.url, "headers": f"X-Note: {value}", "body": body.decode()},
    )

    assert response.status_code == 400
    assert "may not hold control characters" in response.content.decode()
    assert not target.received and not ForwardAttempt.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Odd!#$%&'*+-.^_`|~": "v"},
        {"X-Note": "inner spaces\tand tabs"},
        {"X-Latin": "caf\u00e9"},
        {"X-Empty": ""},
    ],
)
def test_it_accepts_every_token_and_field_value(headers):
    assert forwarding.sendable(headers) == headers

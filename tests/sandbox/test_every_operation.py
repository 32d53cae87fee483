"""The errors every operation documents, checked on every declared operation (B's included)."""

import re

import pytest
from django.test import Client

from rivya_dashboard.sandbox.api import OPERATIONS
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.urls import ENDPOINT_MODULES
from tests.sandbox.conftest import BASE, error_code

assert ENDPOINT_MODULES  # importing the URL map registers every operation
AUTHENTICATED = [op for op in OPERATIONS if not op.public]


def url(operation) -> str:
    return BASE + re.sub(r"\{\w+\}", "some_id", operation.path)


def send(operation, headers: dict[str, str]):
    client = Client()
    if operation.method == "GET":
        return client.get(url(operation), headers=headers)
    method = getattr(client, operation.method.lower())
    return method(url(operation), "{}", content_type="application/json", headers=headers)


def ids(operations) -> list[str]:
    return [op.operation_id for op in operations]


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids(OPERATIONS))
def test_the_kill_switch_closes_every_operation(operation, sandbox_settings):
    sandbox_settings.public_api_disabled = True
    sandbox_settings.save()
    response = send(operation, {"Authorization": f"Bearer {issue_key()}"})
    assert response.status_code == 503
    assert error_code(response) == "public_api_disabled"


@pytest.mark.parametrize("operation", AUTHENTICATED, ids=ids(AUTHENTICATED))
def test_every_authenticated_operation_needs_a_key(operation, db):
    response = send(operation, {})
    assert response.status_code == 401
    assert error_code(response) == "api_key_missing"


@pytest.mark.parametrize("operation", AUTHENTICATED, ids=ids(AUTHENTICATED))
def test_every_authenticated_operation_checks_its_scope(operation, db):
    others = ["models:read"] if operation.scope != "models:read" else ["chat:read"]
    response = send(operation, {"Authorization": f"Bearer {issue_key(scopes=others)}"})
    assert response.status_code == 403
    assert error_code(response) == "api_scope_denied"
    assert operation.scope in response.json()["error"]["message"]


@pytest.mark.parametrize("operation", AUTHENTICATED, ids=ids(AUTHENTICATED))
def test_every_authenticated_operation_is_rate_limited(operation, sandbox_settings):
    sandbox_settings.rate_limit = 1
    sandbox_settings.save()
    headers = {"Authorization": f"Bearer {issue_key()}"}
    first = send(operation, headers)
    assert first["X-RateLimit-Limit"] == "1"
    limited = send(operation, headers)
    assert limited.status_code == 429
    assert error_code(limited) == "rate_limited"
    assert int(limited["Retry-After"]) >= 1

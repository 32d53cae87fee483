"""The sandbox's control API: minting a key over HTTP, for this console only."""

import json

import pytest
from django.conf import settings
from django.test import Client

from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.rivya.errors import AuthError, InvalidRequest
from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.keys import find_key, issue_key
from rivya_dashboard.sandbox.models import Account, RequestLog
from tests.inprocess import in_process_session
from tests.sandbox.conftest import error_code

pytestmark = pytest.mark.django_db
URL = "/sandbox/api/control/keys"


def mint(body: object = None, token: str | None = None, method: str = "post"):
    token = settings.RIVYA_SANDBOX_CONTROL_TOKEN if token is None else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = json.dumps(body) if body is not None else ""
    return getattr(Client(), method)(URL, data, content_type="application/json", headers=headers)


def test_the_console_mints_a_key_with_its_own_account():
    response = mint({"name": "Console", "credits": 250, "scopes": ["credits:read"]})
    assert response.status_code == 201
    minted = response.json()
    key = find_key(minted["key"])
    assert key.name == "Console" and key.scopes == ["credits:read"]
    assert key.account.credits == 250 and minted["prefix"] == key.prefix
    assert RequestLog.objects.get().status == 201  # logged without the key


def test_an_empty_body_mints_a_key_with_every_scope():
    minted = mint().json()
    key = find_key(minted["key"])
    assert key.scopes == list(choices.SCOPES)
    assert key.account.credits == choices.DEFAULT_ACCOUNT_CREDITS


@pytest.mark.parametrize(
    "token, code", [("", "api_key_missing"), ("rvya_ctl_guess", "api_key_invalid")]
)
def test_nobody_but_the_console_may_mint(token, code):
    response = mint({}, token=token)
    assert response.status_code == 401 and error_code(response) == code
    assert not Account.objects.exists()


def test_a_sandbox_api_key_is_not_the_control_token():
    response = mint({}, token=issue_key())
    assert response.status_code == 401 and Account.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [{"credits": -1}, {"scopes": ["everything"]}, {"scopes": []}, {"owner": "x"}, [1]],
)
def test_bad_input_is_refused_and_mints_nothing(body):
    response = mint(body)
    assert response.status_code == 400 and error_code(response) == "validation_failed"
    assert not Account.objects.exists()


def test_only_post_mints():
    response = mint(method="get")
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_the_client_mints_through_the_control_api():
    client = RivyaClient(
        "http://testserver/sandbox/api/control",
        settings.RIVYA_SANDBOX_CONTROL_TOKEN,
        session=in_process_session(),
    )
    minted = client.create_sandbox_key(name="Console", credits=5)
    assert find_key(minted["key"]).account.credits == 5
    with pytest.raises(InvalidRequest):
        client.create_sandbox_key(credits=-5)
    outsider = RivyaClient(
        "http://testserver/sandbox/api/control", "rvya_ctl_no", session=in_process_session()
    )
    with pytest.raises(AuthError):
        outsider.create_sandbox_key()

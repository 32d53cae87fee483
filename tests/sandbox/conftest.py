"""Fixtures for the sandbox tests: a raw key and a small JSON client for /sandbox/api/v1."""

import json
from typing import Any

import pytest
from django.test import Client

from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import SandboxSettings

BASE = "/sandbox/api/v1"


class Api:
    """Django's test Client with the bearer key and JSON encoding filled in."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.key = key

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return {**headers, **(extra or {})}

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any):
        return self.client.get(BASE + path, params, headers=self.headers(headers))

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.client.post(
            BASE + path, data, content_type="application/json", headers=self.headers(headers), **kw
        )

    def upload(self, data: dict, headers: dict[str, str] | None = None):
        return self.client.post(BASE + "/files", data, headers=self.headers(headers))


@pytest.fixture
def raw_key(db) -> str:
    return issue_key(credits=1000)


@pytest.fixture
def api(raw_key) -> Api:
    return Api(raw_key)


@pytest.fixture
def sandbox_settings(db) -> SandboxSettings:
    return SandboxSettings.load()


def error_code(response) -> str:
    body = response.json()
    assert body["error"]["requestId"] == response["X-Request-Id"]
    return body["error"]["code"]

"""Shared fixtures: members of every role, signed-in clients, and a guard against real network."""

import socket

import pytest
from django.test import Client

from rivya_dashboard.accounts.models import Role, User

PASSWORD = "correct-horse-battery-9"
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}

_real_connect = socket.socket.connect


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _loopback_only_connect(self: socket.socket, address) -> None:
    host = address[0] if isinstance(address, tuple) else address
    is_inet = self.family in (socket.AF_INET, socket.AF_INET6)
    if is_inet and isinstance(host, str) and not is_loopback(host):
        raise RuntimeError(f"Tests may only connect to loopback, not {host!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def no_real_network():
    socket.socket.connect = _loopback_only_connect
    yield
    socket.socket.connect = _real_connect


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def make_member(role: str, username: str | None = None) -> User:
    username = username or role
    return User.objects.create_user(
        username=username, email=f"{username}@example.test", password=PASSWORD, role=role
    )


@pytest.fixture
def members(db) -> dict[str, User]:
    return {
        role: make_member(role) for role in (Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.VIEWER)
    }


@pytest.fixture
def clients(members) -> dict[str, Client]:
    """A signed-in client per role, plus 'outsider': a visitor who is not signed in."""
    signed_in = {}
    for role, member in members.items():
        client = Client()
        client.force_login(member)
        signed_in[role] = client
    signed_in["outsider"] = Client()
    return signed_in


@pytest.fixture
def owner_client(clients) -> Client:
    return clients[Role.OWNER]

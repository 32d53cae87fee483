"""Shared fixtures: members of every role, signed-in clients, and a guard against real network."""

import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connection, connections
from django.test import Client
from django.test.testcases import LiveServerThread

from rivya_dashboard.accounts.models import Role, User

PASSWORD = "correct-horse-battery-9"
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}

_real_connect = socket.socket.connect

# A console started in a subprocess runs as a person starts it: on its own SQLite in the data dir
# it is given, without the browser tests' async override, whatever this test run carries.
NOT_INHERITED = {"DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}


# Tests whose consoles run in subprocesses on their own SQLite behave the same in every pass of
# CI; the PostgreSQL pass leaves them to the SQLite one.
OWN_SQLITE_ONLY = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="its consoles run in subprocesses on their own SQLite; the SQLite pass runs it",
)


def subprocess_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env.update(overrides)
    return env


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class OwnConnectionsServer(ThreadedWSGIServer):
    """The live servers' WSGI server, closing only the connections a request thread opened.

    On SQLite the test thread lends its own connection to the session live server's request
    threads. Closing it is a no-op while it is the in-memory database, but a browser's keep-alive
    connection can end late, after the next test has moved that connection to a file
    (file_backed_db): closing it then would cut the next test's transaction under it, and a
    connection closed from the wrong thread ends the run with a stray thread exception. The
    test thread closes its own connection."""

    def _close_connections(self) -> None:
        for conn in connections.all(initialized_only=True):
            if not conn.allow_thread_sharing and conn._thread_ident == threading.get_ident():
                conn.close()


LiveServerThread.server_class = OwnConnectionsServer


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
    # The vault's keyring file is created in DATA_DIR on first use: never the real one.
    settings.DATA_DIR = tmp_path
    # The address serve would pass on: the test client's host, where the sandbox answers.
    settings.RIVYA_LISTEN_URL = "http://testserver"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _second_factor_optional(settings):
    """Members here sign in with a password alone, as with RIVYA_MFA_REQUIRED=0; the tests of
    the requirement turn it on themselves."""
    settings.RIVYA_MFA_REQUIRED = False


@pytest.fixture
def file_backed_db(transactional_db, tmp_path: Path) -> Iterator[None]:
    """A test database that threads share as the console's workers do: each on its own connection.

    Django's SQLite test database is a shared-cache in-memory one: every thread reaches the same
    connection cache and its table locks fail at once instead of waiting. On SQLite every
    connection of the test therefore moves to a file copy, opened with the console's options (WAL,
    IMMEDIATE transactions, busy timeout); PostgreSQL already gives each thread its own
    connection. Threads close their connections before they end."""
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    memory = connection.connection
    file_name = tmp_path / "test.sqlite3"
    with closing(sqlite3.connect(file_name)) as target:
        memory.backup(target)
    database = connections.settings["default"]
    original = database["NAME"]
    database["NAME"] = str(file_name)
    # Keep the in-memory database alive (closing its last connection would drop it).
    connection.connection = None
    yield
    connection.close()
    database["NAME"] = original
    connection.connection = memory


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


SANDBOX_BASE_URL = "http://testserver/sandbox/api/v1"


@pytest.fixture
def sandbox_key(db) -> str:
    """A raw sandbox key with every scope, on a new account holding 1000 credits."""
    from rivya_dashboard.sandbox.keys import issue_key

    return issue_key()


@pytest.fixture
def sandbox_client(sandbox_key):
    """A RivyaClient on the sandbox, in-process (no socket); retries do not sleep."""
    from rivya_dashboard.rivya.client import RivyaClient
    from tests.inprocess import in_process_session

    return RivyaClient(
        SANDBOX_BASE_URL, sandbox_key, session=in_process_session(), sleep=lambda seconds: None
    )


@pytest.fixture
def api_in_process(monkeypatch):
    """Every stored key's client reaches this project's sandbox in-process, whatever its URL."""
    from rivya_dashboard import outbound
    from rivya_dashboard.vault import transport
    from tests.inprocess import in_process_session

    session = in_process_session()
    monkeypatch.setattr(transport, "session_for", lambda base_url: session)
    monkeypatch.setattr(outbound, "session_for_url", lambda url, **kwargs: session)
    return session


@pytest.fixture
def vault_key(sandbox_key, members, api_in_process):
    """A stored team key (sandbox environment) holding `sandbox_key`, added by the owner."""
    from rivya_dashboard.vault.models import ApiKey

    key = ApiKey.objects.create(
        label="Team sandbox",
        environment="sandbox",
        base_url=SANDBOX_BASE_URL,
        added_by=members[Role.OWNER],
    )
    key.store_secret(sandbox_key)
    key.save(update_fields=["secret", "last4"])
    return key


@pytest.fixture
def grant_checks(monkeypatch) -> list[dict]:
    """The keyword arguments of every grant check the code under test makes before spending:
    the ledger's (under the grant lock), and any a caller would make on its own."""
    from rivya_dashboard.console import files, generations
    from rivya_dashboard.vault import grants, ledger

    checks: list[dict] = []
    check = grants.check_grant

    def counted(*args, **kwargs):
        checks.append(kwargs)
        return check(*args, **kwargs)

    for module in (ledger, files, generations):
        monkeypatch.setattr(module, "check_grant", counted, raising=False)
    return checks

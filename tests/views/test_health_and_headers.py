"""/healthz, the nonce Content-Security-Policy, and `check --deploy` on production settings."""

import contextlib
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.db import OperationalError, connection

from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]


def csp_directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {
        part.split()[0]: " ".join(part.split()[1:])
        for part in (piece.strip() for piece in policy.split(";"))
        if part
    }


def test_healthz_answers_ok_with_a_working_database(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_is_unreachable(client, db):
    with mock.patch.object(connection, "cursor", side_effect=OperationalError("server closed")):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}
    assert "server closed" not in response.content.decode()


@contextlib.contextmanager
def held_by_another_connection() -> Iterator[None]:
    """Another connection holds what the health check needs: SQLite's write lock (WAL lets
    readers go on), or on PostgreSQL an exclusive lock on the table it reads."""
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        if connection.vendor == "sqlite":
            other.execute("BEGIN IMMEDIATE")
        else:
            other.execute("LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        other.rollback()
        other.close()


def test_healthz_answers_503_while_the_database_would_keep_it_waiting(client, file_backed_db):
    with held_by_another_connection():
        during = client.get("/healthz")

    assert during.status_code == 503
    assert client.get("/healthz").status_code == 200
    if connection.vendor == "sqlite":
        # Pages still wait for the lock as long as the console is configured to.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout")
            waits = cursor.fetchone()[0]
        assert waits == connection.settings_dict["OPTIONS"]["timeout"] * 1000


def test_healthz_needs_no_sign_in_even_before_setup(client, db):
    response = client.get("/healthz", follow=False)

    assert response.status_code == 200


def assert_nonce_policy(response) -> None:
    """The header's script nonce is the one on the page's scripts, and nothing inline escapes it."""
    directives = csp_directives(response)
    script_src = directives["script-src"]
    header_nonce = re.fullmatch(r"'self' 'nonce-([A-Za-z0-9_-]{16,})'", script_src)
    assert header_nonce, script_src
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    html = response.content.decode()
    page_nonces = re.findall(r'<script\b[^>]*\bnonce="([^"]*)"', html)
    assert page_nonces, "the htmx script tag should carry the nonce"
    assert set(page_nonces) == {header_nonce.group(1)}
    inline_without_nonce = re.findall(r"<script\b(?![^>]*\b(?:src|nonce)=)[^>]*>", html)
    assert not inline_without_nonce


def test_the_setup_page_sends_a_nonce_csp(client, db):
    response = client.get("/setup/")

    assert response.status_code == 200
    assert_nonce_policy(response)


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [("outsider", "/accounts/login/", 200), ("owner", "/", 200), ("owner", "/no-such-page/", 404)],
)
def test_every_kind_of_page_sends_a_nonce_csp(clients, who, path, status):
    response = clients[who].get(path)

    assert response.status_code == status
    assert_nonce_policy(response)


def test_each_response_gets_a_fresh_nonce(client, db):
    first = csp_directives(client.get("/setup/"))["script-src"]
    second = csp_directives(client.get("/setup/"))["script-src"]

    assert first != second


def test_pages_refuse_framing_and_sniffing(client, db):
    response = client.get("/setup/")

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    env = subprocess_env(
        RIVYA_DATA_DIR=str(tmp_path),
        SECRET_KEY=secrets.token_urlsafe(64),
        RIVYA_SECURE_COOKIES="1",
        RIVYA_SSL_REDIRECT="1",
        RIVYA_HSTS_SECONDS="31536000",
        RIVYA_DEBUG="0",
    )

    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert check.returncode == 0, check.stdout + check.stderr
    assert "System check identified no issues (0 silenced)." in check.stdout

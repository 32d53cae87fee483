"""The canary: a stored key's raw value must appear nowhere but as ciphertext.

Stores a canary key through the add form, then requests every URL pattern of the project as
every role (full pages and htmx partials, GET and POST with bad input that carries the canary
in its secret field), captures every log line and everything written to stdout/stderr, dumps
every database table (sessions and flash cookies decoded), and looks for the raw value. A page
added later that prints a key fails here.
"""

import itertools
import logging

import pyotp
import pytest
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.http import HttpRequest
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, get_resolver, reverse
from django.urls.converters import IntConverter

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.vault.models import ApiKey, KeyGrant, LedgerEntry
from tests.inprocess import keep_db_connections
from tests.views.test_access_matrix import walk

pytestmark = pytest.mark.django_db
STREAM_CHUNKS = 64


def url_variants(name: str, pattern: URLPattern, int_values: list[int]) -> list[str]:
    converters = pattern.pattern.converters
    choices = []
    for kwarg, converter in converters.items():
        values = int_values if isinstance(converter, IntConverter) else ["canary-probe"]
        choices.append([(kwarg, value) for value in values])
    urls = []
    for combo in itertools.product(*choices):
        try:
            urls.append(reverse(name, kwargs=dict(combo)))
        except NoReverseMatch:
            continue
    return urls


def body_of(response) -> str:
    if response.streaming:
        chunks = itertools.islice(response.streaming_content, STREAM_CHUNKS)
        data = b"".join(chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in chunks)
        # Closing fires request_finished, which must not close the test's database connection.
        with keep_db_connections():
            response.close()
    else:
        data = response.content
    return data.decode("utf-8", "replace")


def response_text(response) -> str:
    parts = [body_of(response), str(dict(response.items()))]
    for morsel in response.cookies.values():
        parts.append(morsel.value)
        if morsel.key == "messages":
            decoded = CookieStorage(HttpRequest())._decode(morsel.value) or []
            parts.extend(str(message) for message in decoded)
    return "\n".join(parts)


def database_dump() -> str:
    lines = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            # Table names come from the database's own catalogue, not from input.
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                lines.append(f"{table}: " + " | ".join(map(str, row)))
    return "\n".join(lines)


def session_dump() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_data FROM django_session")
        return "\n".join(str(SessionStore().decode(row[0])) for row in cursor.fetchall())


def bad_form(canary: str) -> dict:
    return {
        "label": "",
        "secret": canary,
        "confirm": "not the label",
        "status": "bogus",
        "member": "999999",
        "actions": "bogus",
        "daily_cap": "-1",
        "environment": "bogus",
        "base_url": "http://127.0.0.1/",
        "url": "javascript:alert(1)",
        "prompt": "",
        "model": "no-such-model",
    }


def test_the_canary_appears_nowhere_but_as_ciphertext(
    members, api_in_process, caplog, capfd, settings
):
    caplog.set_level(logging.DEBUG)
    canary = issue_key(name="canary")
    owner = Client(raise_request_exception=False)
    owner.force_login(members[Role.OWNER])
    added = owner.post(
        reverse("key-add"), {"label": "Canary", "environment": "sandbox", "secret": canary}
    )
    assert added.status_code == 302, response_text(added)
    key = ApiKey.objects.get(label="Canary")
    grant = KeyGrant.objects.create(
        member=members[Role.OPERATOR], key=key, actions=["browse", "generate", "chat", "upload"]
    )
    entry = LedgerEntry.objects.filter(key=key).first()
    int_values = sorted({key.pk, grant.pk, entry.pk, 1})

    clients = {"outsider": Client(raise_request_exception=False)}
    for role, member in members.items():
        clients[role] = Client(raise_request_exception=False)
        clients[role].force_login(member)

    urls = [
        url
        for name, pattern in walk(get_resolver())
        for url in url_variants(name, pattern, int_values)
    ]
    leaks = []
    for method, htmx in (("get", False), ("get", True), ("post", False), ("post", True)):
        for url in urls:
            for who, client in clients.items():
                headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
                if method == "get":
                    response = client.get(url, **headers)
                else:
                    response = client.post(url, bad_form(canary), **headers)
                    if who != "outsider":
                        # A POST may sign the member out (logout): sign in again for the next.
                        client.force_login(members[who])
                if canary in response_text(response):
                    leaks.append(f"{method.upper()} {url} as {who} (htmx={htmx})")
    assert not leaks, "The raw key was shown by: " + ", ".join(leaks)

    captured = capfd.readouterr()
    logs = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    assert canary not in logs, "The raw key was logged"
    assert canary not in captured.out + captured.err, "The raw key reached stdout/stderr"
    dump = database_dump() + session_dump()
    assert canary not in dump, "The raw key is stored in clear in the database"
    key.refresh_from_db()
    assert key.secret.startswith("v1:") and key.reveal() == canary
    assert len(urls) > 40


def test_second_factor_pages_show_no_key_and_store_no_factor_secret_in_clear(
    members, api_in_process
):
    """Enrolment (QR code, manual key), recovery codes, passkeys, verification, password and the
    Security pages never carry a stored key; the authenticator secret and recovery codes are kept
    only as ciphertext and hashes, and show on no page after enrolment."""
    canary = issue_key(name="canary")
    owner = Client(raise_request_exception=False)
    owner.force_login(members[Role.OWNER])
    owner.post(reverse("key-add"), {"label": "Canary", "environment": "sandbox", "secret": canary})
    assert ApiKey.objects.filter(label="Canary").exists()

    enrol = owner.get(reverse("totp-enrol"))
    secret = enrol.context["secret"]
    assert secret not in session_dump(), "the pending authenticator secret is stored in clear"
    done = owner.post(reverse("totp-enrol"), {"code": pyotp.TOTP(secret).now()})
    codes = done.context["codes"]
    pages = [enrol, done]
    names = ("my-security", "security", "mfa-verify", "passkey-add", "password-change")
    pages += [owner.get(reverse(name)) for name in names]
    pages.append(owner.post(reverse("recovery-codes")))

    for response in pages:
        assert canary not in response_text(response), response.request["PATH_INFO"]
    later = [owner.get(reverse(name)) for name in ("my-security", "security", "keys")]
    for response in later:
        text = response_text(response)
        assert secret not in text and not any(code in text for code in codes)
    dump = database_dump() + session_dump()
    assert canary not in dump and secret not in dump
    assert not any(code in dump for code in codes)

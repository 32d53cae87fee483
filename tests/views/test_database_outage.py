"""The 503 page a request gets while the database does not answer (database_outage.py).

The outage is a connection that fails as a stopped server or a locked file makes it fail: from
the first query the request makes, in a middleware (loading the session) before any view runs.
tests/scale/test_faults.py shows the same over real HTTP with a real outage and the recovery.
"""

from unittest import mock

import pytest
from django.conf import settings
from django.db import InterfaceError, OperationalError, ProgrammingError, connection
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(members) -> Client:
    """An owner's browser; the page it gets, not an exception, is what the test reads."""
    client = Client(raise_request_exception=False)
    client.force_login(members["owner"])
    return client


def failing_with(error: Exception):
    return mock.patch.object(connection, "cursor", side_effect=error)


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("connection to server at 127.0.0.1 failed: Connection refused"),
        InterfaceError("connection already closed"),
    ],
)
def test_a_page_says_the_database_is_not_answering(signed_in, error):
    with failing_with(error):
        response = signed_in.get("/inbox/?page=2")

    page = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "<h1>The database is not answering</h1>" in page
    assert "Nothing was saved" in page
    assert 'href="/inbox/?page=2">Reload</a>' in page
    assert 'href="/">Back to the dashboard</a>' in page
    assert str(error) not in page


def test_a_form_sent_during_the_outage_is_not_offered_again_as_a_link(signed_in):
    with failing_with(OperationalError("database is locked")):
        response = signed_in.post("/inbox/new/", {"name": "During the outage"})

    assert response.status_code == 503
    assert "Nothing was saved" in response.content.decode()
    assert ">Reload</a>" not in response.content.decode()


def test_an_htmx_request_gets_the_message_that_replaces_the_page_content(signed_in):
    with failing_with(OperationalError("server closed the connection unexpectedly")):
        response = signed_in.get("/inbox/", headers={"HX-Request": "true"})

    fragment = response.content.decode()
    assert response.status_code == 503
    assert fragment.startswith('<div class="card" role="alert">')
    assert "<html" not in fragment and "The database is not answering" in fragment
    page = signed_in.get("/inbox/").content.decode()
    assert '"code": "503", "swap": true, "error": true, "target": "#main"' in page


def test_it_speaks_the_language_the_browser_chose(signed_in):
    signed_in.cookies[settings.LANGUAGE_COOKIE_NAME] = "ur"
    with failing_with(OperationalError("database is locked")):
        response = signed_in.get("/")

    page = response.content.decode()
    assert response.status_code == 503
    assert '<html lang="ur" dir="rtl">' in page
    assert "ڈیٹا بیس جواب نہیں دے رہا" in page
    assert "The database is not answering" not in page


def test_a_fault_in_the_console_is_still_the_500_page(signed_in):
    with failing_with(ProgrammingError('relation "webhooks_inbox" does not exist')):
        response = signed_in.get("/inbox/")

    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_the_request_is_logged_once_in_one_line_that_names_the_outage(signed_in, caplog):
    refused = OperationalError("connection to server failed: Connection refused\n\tIs it running?")
    with failing_with(refused):
        signed_in.get("/inbox/")

    (logged,) = [record for record in caplog.records if record.name == "django.request"]
    assert logged.getMessage() == (
        "Service Unavailable: /inbox/ "
        "(the database is not answering: connection to server failed: Connection refused)"
    )
    assert logged.exc_info is None
    (access,) = [record for record in caplog.records if record.name == "rivya.requests"]
    assert access.getMessage() == "GET 503 -"
    assert access.request_id == logged.request_id != ""

"""What the console does while its database does not answer, and how it notices.

An outage (PostgreSQL stopped or restarting, the network to it cut, the SQLite file locked by
another program) reaches a request as OperationalError or InterfaceError, from whichever
middleware or view touched the database first. Django then calls the 500 handler, which answers
with the 503 page from here instead: nothing of the request was saved, and the console recovers
by itself once the database is back (PostgreSQL connections are health-checked before reuse).
Other database errors (IntegrityError, ProgrammingError) are faults in the console: the 500 page.

The page is rendered without the request's context processors, which read the database.
"""

import logging

from django.db import InterfaceError, OperationalError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

# How long /healthz waits for the database before it answers 503: a page would wait up to the
# busy timeout or statement time, but a health check must answer while the proxy still listens.
PROBE_MILLISECONDS = 1000
# A real table: on SQLite `SELECT 1` touches no page and no lock.
PROBE_SQL = "SELECT 1 FROM django_migrations LIMIT 1"
RETRY_AFTER_SECONDS = 5


OUTAGE_ERRORS = (OperationalError, InterfaceError)


def is_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, OUTAGE_ERRORS)


def reason(error: BaseException) -> str:
    """The first line of the database's error: what a log line names instead of a traceback."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def database_answers() -> bool:
    """Whether the database reads a table within PROBE_MILLISECONDS and would take a write.

    On SQLite the probe takes the write lock as every writing request does (WAL lets readers go
    on whatever holds it, so only a writer finds out that the file is locked), with a short busy
    timeout; on PostgreSQL it runs under a short statement timeout on a health-checked connection.
    """
    try:
        if connection.vendor == "sqlite":
            _probe_sqlite()
        else:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {PROBE_MILLISECONDS}")
                cursor.execute(PROBE_SQL)
    except OUTAGE_ERRORS:
        return False
    return True


def _probe_sqlite() -> None:
    configured = connection.settings_dict["OPTIONS"].get("timeout", 5)
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA busy_timeout = {PROBE_MILLISECONDS}")
        try:
            # The console's transactions begin IMMEDIATE (settings.SQLITE_INIT's comment).
            with transaction.atomic():
                cursor.execute(PROBE_SQL)
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int(configured * 1000)}")


def unavailable_page(request: HttpRequest) -> HttpResponse:
    """The 503 page; to an htmx request, only its message (base.html swaps it into the page)."""
    template = "503.html#message" if request.headers.get("HX-Request") == "true" else "503.html"
    context = {"reload_url": request.get_full_path() if request.method == "GET" else ""}
    response = HttpResponse(render_to_string(template, context), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class OutageOneLine(logging.Filter):
    """A request the 503 page answered is logged in one line that names the database's error,
    without the traceback: during an outage every request fails the same way."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if getattr(record, "status_code", None) == 503 and is_outage(error):
            record.msg = f"{record.msg} (the database is not answering: %s)"
            record.args = (*record.args, reason(error))
            record.exc_info = None
            record.exc_text = None
        return True

"""Which request (or background task) a log line belongs to, and how log lines are written.

Every request gets an id (`X-Request-Id` on the response). The id, the member's id and the view's
name ride a context variable that the log filter copies onto every record, so a line logged deep
inside a view still says whose request it was; a task enqueued during the request keeps the id
(TaskOrigin), and the worker runs it under that id. With RIVYA_LOG_FORMAT=json each line is one
JSON object; a member is named by id only, never by name.
"""

import contextvars
import json
import logging
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from django.http import HttpRequest, HttpResponse

from rivya_dashboard import database_outage

ID_ALPHABET = string.ascii_letters + string.digits
logger = logging.getLogger("rivya.requests")


@dataclass(frozen=True)
class Context:
    request_id: str = ""
    member_id: int | None = None
    view: str = ""


NO_CONTEXT = Context()
CURRENT: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "rivya_context", default=None
)


def new_request_id() -> str:
    return "req_" + "".join(secrets.choice(ID_ALPHABET) for _ in range(24))


def current() -> Context:
    return CURRENT.get() or NO_CONTEXT


def bind(context: Context) -> contextvars.Token:
    return CURRENT.set(context)


def view_name(request: HttpRequest) -> str:
    match = request.resolver_match
    return match.view_name if match and match.view_name else ""


def member_id(request: HttpRequest) -> int | None:
    """The signed-in member's id; None when the database that would say is not answering (the
    request already got the 503 page; failing again here would answer it twice)."""
    user = getattr(request, "user", None)
    try:
        return user.pk if user is not None and user.is_authenticated else None
    except database_outage.OUTAGE_ERRORS:
        return None


class RequestContextMiddleware:
    """Outermost: names the request, then logs one line for it with its duration."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        token = bind(Context(request_id=new_request_id()))
        try:
            response = self.get_response(request)
            bind(replace(current(), member_id=member_id(request), view=view_name(request)))
            response.headers.setdefault("X-Request-Id", current().request_id)
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            logger.info(
                "%s %s %s",
                request.method,
                response.status_code,
                current().view or "-",
                extra={"duration_ms": duration_ms, "status": response.status_code},
            )
            return response
        finally:
            CURRENT.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current request's id, member id and view onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current()
        record.request_id = context.request_id
        record.member_id = context.member_id
        record.view = context.view
        return True


class ForbiddenOneLine(logging.Filter):
    """A refused request (403) is an answer, not a fault: Django logs it with the
    PermissionDenied traceback; keep the one line that says which path was refused."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, member id, view,
    duration (for request lines) and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or None,
            "member_id": getattr(record, "member_id", None),
            "view": getattr(record, "view", "") or None,
        }
        for name in ("duration_ms", "status"):
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The human-readable default, with the request id where there is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", "")
        return f"{text} [{request_id}]" if request_id else text


TextFormatter.converter = time.gmtime
JsonFormatter.converter = time.gmtime

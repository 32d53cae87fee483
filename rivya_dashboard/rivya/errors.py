"""Errors raised by the Rivya client, one class per thing the console does next.

The UI branches on the class only: AuthError → "check or replace the key", InsufficientCredits →
"top up", RateLimited → "try again in N s", InvalidRequest → show the API's message next to the
field, Conflict → "start over" (idempotency or chat session), NotFound → "it is gone",
Unavailable → "try again later". Everything else stays a plain RivyaError. The text of every error
carries the Rivya request id, because that id is what Rivya support asks for.
"""

import json
from email.utils import parsedate_to_datetime
from time import time

import requests


class RivyaError(Exception):
    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.message} (request id: {self.request_id or 'none'})"


class AuthError(RivyaError):
    """The key is missing, invalid, revoked, expired or lacks the scope: check or replace it."""


class InsufficientCredits(RivyaError):
    """The account's wallet cannot pay for this request."""


class RateLimited(RivyaError):
    def __init__(self, *args: object, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class InvalidRequest(RivyaError):
    def __init__(self, *args: object, param: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.param = param


class Conflict(RivyaError):
    """An Idempotency-Key reused with another body, or a chat session this turn cannot continue."""


class NotFound(RivyaError):
    """The resource does not exist, or belongs to another account."""


class Unavailable(RivyaError):
    """Rivya cannot answer right now: no connection, a timeout, a 5xx, or the API switched off."""


ERRORS_BY_CODE: dict[str, type[RivyaError]] = {
    "api_key_missing": AuthError,
    "api_key_invalid": AuthError,
    "api_key_revoked": AuthError,
    "api_key_expired": AuthError,
    "api_scope_denied": AuthError,
    "insufficient_credits": InsufficientCredits,
    "rate_limited": RateLimited,
    "validation_failed": InvalidRequest,
    "webhook_url_rejected": InvalidRequest,
    "chat_model_not_supported": InvalidRequest,
    "chat_attachment_not_supported": InvalidRequest,
    "idempotency_conflict": Conflict,
    "chat_session_conflict": Conflict,
    "not_found": NotFound,
    "public_api_disabled": Unavailable,
}

# New error codes may appear at any time (contract §1.2); they fall back on their HTTP status.
ERRORS_BY_STATUS: dict[int, type[RivyaError]] = {
    400: InvalidRequest,
    401: AuthError,
    402: InsufficientCredits,
    403: AuthError,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
}


def error_class(code: str | None, status: int | None) -> type[RivyaError]:
    if code in ERRORS_BY_CODE:
        return ERRORS_BY_CODE[code]
    if status is not None and status >= 500:
        return Unavailable
    return ERRORS_BY_STATUS.get(status, RivyaError)


def make_error(
    message: str,
    *,
    status: int | None,
    code: str | None,
    request_id: str | None,
    param: str | None = None,
    retry_after: float | None = None,
) -> RivyaError:
    cls = error_class(code, status)
    extra: dict[str, object] = {}
    if cls is RateLimited:
        extra["retry_after"] = retry_after
    elif cls is InvalidRequest:
        extra["param"] = param
    return cls(message, status=status, code=code, request_id=request_id, **extra)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    # isdigit() alone also accepts digits like "²" that float() then refuses.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time() if now is None else now))


def error_from_response(response: requests.Response) -> RivyaError:
    """The error for a non-2xx answer, clear even when the body is not the error envelope."""
    status = response.status_code
    request_id = response.headers.get("X-Request-Id")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    try:
        envelope = json.loads(response.content)
        error = envelope["error"]
        code = error.get("code")
        message = error.get("message") or f"Rivya answered HTTP {status} ({code})."
    except (ValueError, TypeError, KeyError, AttributeError):
        return make_error(
            f"Rivya answered HTTP {status} with a body that is not its JSON error envelope.",
            status=status,
            code=None,
            request_id=request_id,
            retry_after=retry_after,
        )
    return make_error(
        message,
        status=status,
        code=code if isinstance(code, str) else None,
        request_id=error.get("requestId") or request_id,
        param=error.get("param"),
        retry_after=retry_after,
    )

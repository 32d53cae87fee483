"""The sandbox API's request pipeline: one declaration per operation, one error shape.

Declare an endpoint in a feature module and list that module in ENDPOINT_MODULES (urls.py):

    from rivya_dashboard.sandbox.api import Call, endpoint, paginate, LIST_QUERY, component

    WEBHOOK = component("WebhookEndpoint", {"type": "object", "properties": {...}})

    @endpoint(
        "GET", "/webhooks/{endpointId}", operation_id="getWebhook", summary="Fetch an endpoint",
        scope="webhooks:manage", response=WEBHOOK, errors=(404,),
    )
    def get_webhook(call: Call, endpointId: str) -> dict:
        endpoint = find_or_404(...)   # raise ApiError(404, "not_found", "...") when missing
        return serialize(endpoint)    # a dict becomes JSON with the declared success status

The pipeline (dispatch) runs, in this order: kill-switch (503), Authorization (401), scope
(403), injected faults (latency, then an error status), the rate limit (429), query
parameters and the JSON body checked against the declared schemas (400/413), idempotency
(§5.1, when `idempotent=True`), then the handler.
Every response carries X-Request-Id; every authenticated one carries X-RateLimit-*; every
error is the §3.1 envelope with requestId equal to the X-Request-Id header. The same
declarations feed openapi.json, so the document cannot drift from what is enforced.
"""

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from rivya_dashboard.sandbox import choices, faults, idempotency, ids, ratelimit
from rivya_dashboard.sandbox.errors import ApiError, not_found, validation_failed
from rivya_dashboard.sandbox.keys import find_key
from rivya_dashboard.sandbox.models import RequestLog, SandboxKey, SandboxSettings
from rivya_dashboard.sandbox.schema import SchemaViolation, check

__all__ = [
    "ApiError",
    "Call",
    "component",
    "endpoint",
    "not_found",
    "paginate",
    "validation_failed",
]

logger = logging.getLogger(__name__)

JSON = "application/json"
MULTIPART = "multipart/form-data"
EVENT_STREAM = "text/event-stream"
# The auth scheme name is case-insensitive (RFC 9110 §11.1).
BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)


@dataclass
class Call:
    """One API request as the handler sees it: who is asking, and the checked input."""

    request: HttpRequest
    request_id: str
    key: SandboxKey | None = None
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    faults: dict[str, Any] = field(default_factory=dict)
    rate: ratelimit.RateState | None = None
    idempotency: Any = None

    @property
    def account(self) -> Any:
        assert self.key is not None, "only authenticated operations have an account"
        return self.key.account


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Callable[..., Any]
    operation_id: str
    summary: str
    scope: str | None
    public: bool
    body: dict | None
    body_required: bool
    body_content: str
    query: tuple[dict, ...]
    success: int
    response: dict | None
    response_content: str
    errors: tuple[int, ...]
    idempotent: bool
    replay: Callable[..., HttpResponse] | None
    tag: str
    rate_limited: bool


OPERATIONS: list[Operation] = []
COMPONENTS: dict[str, dict] = {}


def component(name: str, schema: dict) -> dict:
    """Register a named schema for openapi.json and return a $ref to it."""
    COMPONENTS[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def closed_object(name: str, properties: dict) -> dict:
    """Register an object schema whose every property is always present; return its $ref."""
    return component(
        name, {"type": "object", "properties": properties, "required": list(properties)}
    )


def resolve(schema: dict) -> dict:
    if "$ref" in schema:
        return COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


LIST_QUERY = (
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Page size.",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": choices.LIST_MAX_LIMIT,
            "default": choices.LIST_DEFAULT_LIMIT,
        },
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "Opaque cursor from the previous page's next_cursor.",
        "schema": {"type": "string", "maxLength": 500},
    },
)


def endpoint(
    method: str,
    path: str,
    *,
    operation_id: str,
    summary: str,
    scope: str | None = None,
    public: bool = False,
    body: dict | None = None,
    body_required: bool = True,
    body_content: str = JSON,
    query: tuple[dict, ...] = (),
    success: int = 200,
    response: dict | None = None,
    response_content: str = JSON,
    errors: tuple[int, ...] = (),
    idempotent: bool = False,
    replay: Callable[..., HttpResponse] | None = None,
    tag: str = "",
    rate_limited: bool = True,
) -> Callable:
    """Declare an API operation; `public=True` means no key is needed (a sent key must be valid).

    With `body_required=False` an empty request body is allowed and reaches the handler as None.
    `rate_limited=False` serves it outside the key's rate limit (openapi.json).
    """

    def register(handler: Callable) -> Callable:
        OPERATIONS.append(
            Operation(
                method=method,
                path=path,
                handler=handler,
                operation_id=operation_id,
                summary=summary,
                scope=scope,
                public=public,
                body=body,
                body_required=body_required,
                body_content=body_content,
                query=query,
                success=success,
                response=response,
                response_content=response_content,
                errors=errors,
                idempotent=idempotent,
                replay=replay,
                tag=tag or path.strip("/").split("/")[0],
                rate_limited=rate_limited,
            )
        )
        return handler

    return register


def error_response(call: Call, error: ApiError) -> JsonResponse:
    envelope = {
        "error": {"code": error.code, "message": error.message, "requestId": call.request_id}
    }
    response = JsonResponse(envelope, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def dispatcher(path: str) -> Callable[..., HttpResponse]:
    """The Django view for one API path; it picks the operation declared for the method."""

    @csrf_exempt
    @login_not_required
    def view(request: HttpRequest, **path_params: str) -> HttpResponse:
        return answer(request, lambda call: dispatch(path, call, path_params))

    return view


@csrf_exempt
@login_not_required
def unrouted(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under /sandbox/api/ gets the JSON envelope, never the console's HTML 404."""

    def refuse(call: Call) -> HttpResponse:
        raise ApiError(404, "not_found", f"No API operation exists at {request.path!r}.")

    return answer(request, refuse)


def answer(request: HttpRequest, handle: Callable[[Call], HttpResponse]) -> HttpResponse:
    """Run handle for one API request; every outcome becomes a response with a request id."""
    if not settings.RIVYA_SANDBOX:
        raise Http404("The sandbox is switched off.")
    call = Call(request=request, request_id=ids.request_id())
    try:
        response = handle(call)
    except ApiError as error:
        response = error_response(call, error)
    except Exception:
        logger.exception("Sandbox request %s failed", call.request_id)
        error = ApiError(500, "internal_error", "The sandbox failed unexpectedly.")
        response = error_response(call, error)
    finish(call, response)
    return response


def dispatch(path: str, call: Call, path_params: dict[str, str]) -> HttpResponse:
    method = call.request.method
    operation = next((op for op in OPERATIONS if op.path == path and op.method == method), None)
    if operation is None:
        allowed = sorted(op.method for op in OPERATIONS if op.path == path)
        raise ApiError(
            405,
            "method_not_allowed",
            f"{method} is not supported here; use {', '.join(allowed)}.",
            {"Allow": ", ".join(allowed)},
        )
    return run(operation, call, path_params)


def finish(call: Call, response: HttpResponse) -> None:
    response["X-Request-Id"] = call.request_id
    if call.rate is not None:
        for name, value in call.rate.headers().items():
            response[name] = value
    row = RequestLog.objects.create(
        method=call.request.method or "",
        path=call.request.path.replace("\x00", "\N{REPLACEMENT CHARACTER}")[:255],
        status=response.status_code,
        request_id=call.request_id,
        key=call.key,
        key_prefix=call.key.prefix if call.key else "",
    )
    ratelimit.trim_log(row.pk)


def run(operation: Operation, call: Call, path_params: dict[str, str]) -> HttpResponse:
    sandbox = SandboxSettings.load()
    if sandbox.public_api_disabled:
        raise ApiError(503, "public_api_disabled", "The public API is temporarily switched off.")
    authenticate(operation, call)
    header_faults = faults.parse_header(call.request.headers.get(choices.FAULT_HEADER, ""))
    call.faults = faults.merged(sandbox, call.key, header_faults)
    faults.apply_latency(call.faults)
    faults.raise_status_fault(call.faults)
    if call.key is not None and operation.rate_limited:
        call.rate = ratelimit.hit(call.key, sandbox.rate_limit)
    reject_nul([*path_params.values(), *call.request.GET.values()])
    call.query = parse_query(operation, call.request)
    if operation.body is not None and operation.body_content == JSON:
        call.body = parse_json_body(call.request, operation.body, operation.body_required)
    key = idempotency.read_key(call.request.headers) if operation.idempotent else None
    if key is None:
        return respond(operation, call, path_params)
    record = idempotency.begin(call.account, operation.method, operation.path, key, call.body)
    if not record.in_flight:
        return replayed(operation, call, record)
    call.idempotency = record
    try:
        response = respond(operation, call, path_params)
    except BaseException:
        idempotency.release(record)
        raise
    # A stream stores its own outcome when it ends; see chat.py.
    if not response.streaming:
        if 200 <= response.status_code < 300:
            idempotency.store(record, response.status_code, response.content.decode())
        else:
            idempotency.release(record)
    return response


def replayed(operation: Operation, call: Call, record: Any) -> HttpResponse:
    if operation.replay is not None:
        response = operation.replay(call, record)
    else:
        response = HttpResponse(
            record.response_body, status=record.response_status, content_type=JSON
        )
    response["Idempotent-Replayed"] = "true"
    return response


def respond(operation: Operation, call: Call, path_params: dict[str, str]) -> HttpResponse:
    result = operation.handler(call, **path_params)
    if isinstance(result, HttpResponseBase):
        return result
    return JsonResponse(result, status=operation.success)


def authenticate(operation: Operation, call: Call) -> None:
    header = call.request.headers.get("Authorization")
    if header is None and operation.public:
        return
    match = BEARER.match(header or "")
    if match is None:
        raise ApiError(401, "api_key_missing", "A valid Bearer API key is required.")
    key = find_key(match.group(1))
    if key is None:
        raise ApiError(401, "api_key_invalid", "This API key cannot be verified.")
    if key.status == SandboxKey.Status.REVOKED:
        raise ApiError(401, "api_key_revoked", "This API key was revoked; create a new one.")
    if key.status == SandboxKey.Status.EXPIRED:
        raise ApiError(401, "api_key_expired", "This API key has expired; create a new one.")
    if operation.scope and operation.scope not in key.scopes:
        raise ApiError(403, "api_scope_denied", f"This API key lacks the {operation.scope} scope.")
    call.key = key


def reject_nul(values: list[str]) -> None:
    # PostgreSQL text cannot hold NUL; refusing it everywhere keeps both databases alike.
    if any("\x00" in value for value in values):
        raise validation_failed("Identifiers and query parameters must not contain NUL characters.")


def parse_query(operation: Operation, request: HttpRequest) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for parameter in operation.query:
        name, schema = parameter["name"], parameter["schema"]
        raw = request.GET.get(name)
        if raw is None:
            if "default" in schema:
                values[name] = schema["default"]
            continue
        value: Any = raw
        if schema.get("type") == "integer":
            try:
                value = int(raw)
            except ValueError:
                raise validation_failed(f"{name}: must be a whole number") from None
        try:
            check(value, schema, name)
        except SchemaViolation as exc:
            raise validation_failed(str(exc)) from None
        values[name] = value
    return values


def parse_json_body(request: HttpRequest, schema: dict, required: bool) -> Any:
    declared = request.headers.get("Content-Length") or "0"
    if declared.isdigit() and int(declared) > choices.MAX_JSON_BODY_BYTES:
        raise body_too_large()
    raw = request.read(choices.MAX_JSON_BODY_BYTES + 1)
    if len(raw) > choices.MAX_JSON_BODY_BYTES:
        raise body_too_large()
    if not raw and not required:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise validation_failed("The request body must be a JSON object.") from None
    check_storable(body)
    try:
        check(body, resolve(schema))
    except SchemaViolation as exc:
        message = str(exc) if exc.field else "The request body " + exc.problem
        raise validation_failed(message) from None
    return body


def check_storable(body: Any) -> None:
    """Refuse what a database cannot store: NUL, unpaired surrogates, NaN and infinities
    (Python's json reads 1e999 and NaN, but JSON columns reject them)."""
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise validation_failed("Numbers in the body must be finite.") from None
    try:
        text.encode()
    except UnicodeEncodeError:
        raise validation_failed("Strings in the body must be valid Unicode text.") from None
    if "\\u0000" in json.dumps(body):
        raise validation_failed("Strings in the body must not contain NUL characters.")


def body_too_large() -> ApiError:
    limit = choices.MAX_JSON_BODY_BYTES // 1024
    return ApiError(
        413, choices.PAYLOAD_TOO_LARGE_CODE, f"The JSON body must be at most {limit} KB."
    )


def encode_cursor(created_at: Any, pk: int) -> str:
    signed = signing.dumps([created_at.isoformat(), pk], salt="sandbox-cursor", compress=True)
    return base64.urlsafe_b64encode(signed.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        signed = base64.urlsafe_b64decode(padded.encode()).decode()
        created_at, pk = signing.loads(signed, salt="sandbox-cursor")
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, signing.BadSignature):
        raise validation_failed("cursor: is not a cursor this list returned") from None
    return created_at, int(pk)


def paginate(call: Call, queryset: QuerySet, serialize: Callable[[Any], dict]) -> dict:
    """The §1.4 list envelope, newest first, with an opaque signed cursor."""
    limit = call.query.get("limit", choices.LIST_DEFAULT_LIMIT)
    queryset = queryset.order_by("-created_at", "-pk")
    if call.query.get("cursor"):
        created_at, pk = decode_cursor(call.query["cursor"])
        queryset = queryset.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk)
        )
    rows = list(queryset[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].pk) if has_more else None
    return {
        "object": "list",
        "data": [serialize(row) for row in rows],
        "has_more": has_more,
        "next_cursor": next_cursor,
    }


def timestamp(value: Any) -> str | None:
    """ISO-8601 UTC with milliseconds, as in the contract's examples."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

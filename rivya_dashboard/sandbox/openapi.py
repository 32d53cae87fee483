"""GET /openapi.json: the OpenAPI 3.1 document built from the declared operations (api.py)."""

import re
from dataclasses import dataclass

from django.urls import reverse

from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.api import (
    COMPONENTS,
    JSON,
    OPERATIONS,
    Call,
    Operation,
    component,
    endpoint,
)

ERROR = component(
    "Error",
    {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "requestId": {"type": "string"},
                },
                "required": ["code", "message", "requestId"],
            }
        },
        "required": ["error"],
    },
)
ERROR_MEANINGS = {
    400: "Invalid request (validation_failed and the chat codes)",
    401: "Missing, invalid, revoked or expired API key",
    402: "Not enough credits (insufficient_credits)",
    403: "The key lacks the required scope (api_scope_denied)",
    404: "Not found, or not owned by the key's account (not_found)",
    405: "Method not allowed on this path (method_not_allowed)",
    409: "Idempotency or chat session conflict",
    413: "Body or file too large",
    429: "Rate limited (rate_limited); see Retry-After",
    500: "Unexpected sandbox fault (internal_error)",
    502: "Injected upstream fault (bad_gateway)",
    503: "Public API switched off (public_api_disabled)",
}
# A public operation checks a key only when one is sent: it never answers 403.
COMMON_ERRORS = (401, 405, 500, 502, 503)
HEADERS = {
    "X-Request-Id": {
        "description": "req_ + 24 base62; equals error.requestId",
        "schema": {"type": "string"},
    },
}
RATE_HEADERS = {
    name: {"description": meaning, "schema": {"type": "integer"}}
    for name, meaning in (
        ("X-RateLimit-Limit", "Requests allowed per window for this key"),
        ("X-RateLimit-Remaining", "Requests left in the current window"),
        ("X-RateLimit-Reset", "Unix time when the window frees up"),
    )
}
PATH_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class PathId:
    """A path parameter's id format, and the operation whose response carries new ids."""

    prefix: str
    created_by: str
    pointer: str

    @property
    def pattern(self) -> str:
        return f"^{self.prefix}[0-9a-z]{{{choices.PUBLIC_ID_LENGTH}}}$"


# Ids the sandbox mints (ids.public_id); an id of another shape is simply not found (404).
PATH_IDS = {
    "taskId": PathId(choices.TASK_PREFIX, "createGeneration", "/id"),
    "fileId": PathId(choices.FILE_PREFIX, "uploadFile", "/id"),
    "sessionId": PathId(choices.SESSION_PREFIX, "createChatCompletion", "/session_id"),
    "endpointId": PathId(choices.WEBHOOK_ENDPOINT_PREFIX, "createWebhook", "/id"),
}


def error_response(status: int) -> dict:
    return {
        "description": ERROR_MEANINGS[status],
        "headers": HEADERS,
        "content": {JSON: {"schema": ERROR}},
    }


def success_response(operation: Operation) -> dict:
    headers = HEADERS if operation.public else {**HEADERS, **RATE_HEADERS}
    content = {operation.response_content: {"schema": operation.response or {}}}
    response = {"description": operation.summary, "headers": headers, "content": content}
    found = links(operation)
    if found:
        response["links"] = found
    return response


def links(operation: Operation) -> dict:
    """create → get/update/delete/…: every operation whose path takes the id this one mints."""
    found = {}
    for name, path_id in PATH_IDS.items():
        if path_id.created_by != operation.operation_id:
            continue
        for target in OPERATIONS:
            if "{" + name + "}" in target.path:
                found[target.operation_id] = {
                    "operationId": target.operation_id,
                    "parameters": {name: f"$response.body#{path_id.pointer}"},
                }
    return found


def path_parameter(name: str) -> dict:
    schema: dict = {"type": "string", "minLength": 1}
    if name in PATH_IDS:
        schema = {"type": "string", "pattern": PATH_IDS[name].pattern}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def request_body(operation: Operation) -> dict:
    return {
        "required": operation.body_required,
        "content": {operation.body_content: {"schema": operation.body}},
    }


def parameters(operation: Operation) -> list[dict]:
    found = [path_parameter(name) for name in PATH_PARAMETER.findall(operation.path)]
    found += list(operation.query)
    if operation.idempotent:
        found.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Retry safely: same key and body replay the first response.",
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": choices.MAX_IDEMPOTENCY_KEY_LENGTH,
                    "pattern": "^[\\x20-\\x7e]+$",
                },
            }
        )
    return found


def operation_object(operation: Operation) -> dict:
    statuses = set(COMMON_ERRORS) | set(operation.errors)
    if not operation.public:
        statuses.add(403)
    if operation.rate_limited:
        statuses.add(429)
    if PATH_PARAMETER.search(operation.path):
        statuses.add(404)
    if operation.body is not None or operation.query:
        statuses.add(400)
    if operation.body is not None:
        statuses.add(413)
    responses = {str(operation.success): success_response(operation)}
    responses.update({str(status): error_response(status) for status in sorted(statuses)})
    document = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "parameters": parameters(operation),
        "responses": responses,
        "security": [{}, {"bearerAuth": []}] if operation.public else [{"bearerAuth": []}],
    }
    if operation.body is not None:
        document["requestBody"] = request_body(operation)
    return document


def document(server_url: str) -> dict:
    paths: dict[str, dict] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method.lower()] = operation_object(operation)
    return {
        "openapi": choices.OPENAPI_VERSION,
        "info": {
            "title": choices.API_TITLE,
            "version": "v1",
            "description": "The Rivya Console's built-in emulator of the Rivya API v1. "
            "Shapes the real API leaves unspecified follow the console's proposed contract.",
        },
        "x-sandbox": True,
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": dict(COMPONENTS),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "rvya_sk_..."}
            },
        },
    }


@endpoint(
    "GET",
    "/openapi.json",
    operation_id="getOpenApi",
    summary="This OpenAPI 3.1 document",
    public=True,
    response={"type": "object"},
    rate_limited=False,
)
def get_openapi(call: Call) -> dict:
    base = call.request.build_absolute_uri(reverse("sandbox-api:openapi.json"))
    return document(base.removesuffix("/openapi.json"))

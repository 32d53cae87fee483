"""Another API that follows the contract's OpenAPI shape, but is not the sandbox: a small WSGI app
the workbench tests reach in-process (or over loopback), to show nothing in the explorer is
written for the sandbox's operations."""

import json
from collections.abc import Iterable
from typing import Any

FAKE_BASE_URL = "https://fake-rivya.example/v2"

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Fake Rivya", "version": "v2"},
    "paths": {
        "/gadgets": {
            "get": {
                "operationId": "listGadgets",
                "summary": "List the gadgets",
                "tags": ["gadgets"],
                "security": [{"bearerAuth": ["credits:read"]}],
                "parameters": [
                    {
                        "name": "colour",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["red", "blue"]},
                    }
                ],
                "responses": {"200": {"description": "ok"}},
            },
            "post": {
                "operationId": "buildGadget",
                "summary": "Build a gadget",
                "tags": ["gadgets"],
                "security": [{"bearerAuth": ["gadgets:create"]}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Gadget"}}
                    },
                },
                "responses": {"201": {"description": "built"}},
            },
        },
        "/notes/{noteId}": {
            "get": {
                "operationId": "readNote",
                "summary": "A note as plain text",
                "tags": ["notes"],
                "security": [{"bearerAuth": ["credits:read"]}],
                "parameters": [{"name": "noteId", "in": "path", "required": True}],
                "responses": {"200": {"description": "text"}},
            }
        },
        "/broken": {
            "post": {
                "operationId": "brokenBody",
                "summary": "A body whose schema points nowhere",
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/nope"}}}
                },
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/ignored": "not an object",
    },
    "components": {
        "schemas": {
            "Gadget": {
                "type": "object",
                "required": ["name", "size"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "maxLength": 20},
                    "shiny": {"type": "boolean"},
                    "size": {
                        "type": "object",
                        "required": ["width"],
                        "additionalProperties": False,
                        "properties": {"width": {"type": "integer", "minimum": 1}},
                    },
                },
            }
        }
    },
}


class FakeApi:
    """Answers the document, the operations above, and records what it was sent."""

    def __init__(self, document: dict | None = None) -> None:
        self.document = document if document is not None else DOCUMENT
        self.requests: list[dict] = []

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        path = environ["PATH_INFO"].removeprefix("/v2")
        self.requests.append({"method": environ["REQUEST_METHOD"], "path": path, "body": body})
        headers = [("X-Request-Id", f"req_fake{len(self.requests)}")]
        if path == "/openapi.json":
            return self._json(start_response, 200, self.document, headers)
        if path.startswith("/notes/"):
            start_response("200 OK", [("Content-Type", "text/plain"), *headers])
            return [b"plain text, not JSON \xff"]
        if path == "/gadgets" and environ["REQUEST_METHOD"] == "POST":
            return self._json(start_response, 201, {"built": json.loads(body)}, headers)
        query = environ.get("QUERY_STRING", "")
        return self._json(start_response, 200, {"data": [], "query": query}, headers)

    def _json(self, start_response: Any, status: int, payload: Any, headers: list) -> list[bytes]:
        start_response(f"{status} X", [("Content-Type", "application/json"), *headers])
        return [json.dumps(payload).encode()]

"""GET /openapi.json: built from the declared operations, and the server keeps its promises.

The schemathesis run drives every operation on a live server with generated input and checks
that nothing answers 5xx and every response matches the document (status, content type,
headers, body schema).
"""

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rivya_dashboard.sandbox.api import OPERATIONS
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import SandboxSettings
from rivya_dashboard.sandbox.openapi import document
from rivya_dashboard.sandbox.urls import ENDPOINT_MODULES
from tests.sandbox.conftest import Api

CONTRACT_PATHS = {
    "/models",
    "/generations",
    "/generations/{taskId}",
    "/credits",
    "/files",
    "/files/{fileId}",
    "/chat/completions",
    "/chat/completions/stream",
    "/chat/sessions",
    "/chat/sessions/{sessionId}",
    "/webhooks",
    "/webhooks/{endpointId}",
    "/webhooks/{endpointId}/rotate-secret",
    "/webhooks/{endpointId}/test",
    "/webhooks/{endpointId}/deliveries",
    "/webhook-events",
    "/openapi.json",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 20
SCHEMA = schemathesis.openapi.from_dict(document("http://localhost/sandbox/api/v1"))


def test_it_serves_an_openapi_31_document_marked_as_the_sandbox(db):
    response = Api(None).get("/openapi.json")
    assert response.status_code == 200
    body = response.json()
    assert body["openapi"] == "3.1.0"
    assert body["x-sandbox"] is True
    assert body["servers"] == [{"url": "http://testserver/sandbox/api/v1"}]
    assert body["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "PublicApiFile" in body["components"]["schemas"]


def test_it_covers_all_twenty_endpoints_of_the_contract(db):
    assert "rivya_dashboard.sandbox.webhooks" in ENDPOINT_MODULES
    paths = Api(None).get("/openapi.json").json()["paths"]
    assert set(paths) >= CONTRACT_PATHS
    methods = sum(len(operations) for operations in paths.values())
    assert methods == len(OPERATIONS) >= 20


def test_every_operation_declares_its_errors_in_the_envelope(db):
    paths = Api(None).get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            errors = {status for status in operation["responses"] if status.startswith(("4", "5"))}
            assert {"429", "500", "503"} <= errors, (method, path)
            if operation["security"] == [{"bearerAuth": []}]:
                assert {"401", "403"} <= errors, (method, path)
            for status in errors:
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}


def test_the_documented_body_schema_is_the_one_enforced(api):
    generation = document("x")["components"]["schemas"]["GenerationRequest"]
    assert generation["required"] == ["model"]
    assert generation["additionalProperties"] is False
    response = api.post("/generations", {"model": "z-image", "prompt": "x", "extra": 1})
    assert response.status_code == 400


def test_it_documents_the_optional_rotation_body_and_keeps_other_bodies_required():
    paths = document("x")["paths"]
    rotate = paths["/webhooks/{endpointId}/rotate-secret"]["post"]
    assert rotate["requestBody"] == {
        "required": False,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/WebhookSecretRotation"}}
        },
    }
    assert {"400", "413"} <= rotate["responses"].keys()
    assert paths["/generations"]["post"]["requestBody"]["required"] is True
    assert paths["/webhooks"]["post"]["requestBody"]["required"] is True


@pytest.mark.parametrize("operation_id", sorted(op.operation_id for op in OPERATIONS))
def test_the_live_server_conforms_to_its_document(live_server, transactional_db, operation_id):
    sandbox = SandboxSettings.load()
    sandbox.rate_limit = 100_000
    sandbox.token_delay_ms = 0
    sandbox.save()
    auth = {"Authorization": f"Bearer {issue_key(credits=1_000_000)}"}
    base_url = f"{live_server.url}/sandbox/api/v1"
    operation = SCHEMA.find_operation_by_id(operation_id)

    @given(case=operation.as_strategy())
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=auth, timeout=30)
        case.validate_response(response, checks=CHECKS, headers=auth)

    conforms()

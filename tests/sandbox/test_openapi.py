"""GET /openapi.json: built from the declared operations, and the server keeps its promises.

The schemathesis run drives every operation on a live server through its examples, coverage,
fuzzing and stateful phases (following the documented links from creates to the operations that
use their ids) with every check but positive-data acceptance: nothing answers 5xx, every
response matches the document (status, content type, headers, body schema), invalid input is
refused, and every path under the API answers in the JSON error shape.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rivya_dashboard.sandbox.api import OPERATIONS
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import SandboxSettings
from rivya_dashboard.sandbox.openapi import document
from rivya_dashboard.sandbox.urls import ENDPOINT_MODULES
from tests.sandbox.conftest import Api, error_code

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
            assert {"500", "503"} <= errors, (method, path)
            assert ("429" in errors) is (path != "/openapi.json"), (method, path)
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


SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Every check but positive-data acceptance: the sandbox may refuse well-formed input for reasons
# a schema cannot say (a prompt a model requires, a file's real bytes, an unknown model id).
# And but use-after-free: DELETE /webhooks/{id} revokes (contract: 200 with status "revoked"
# and revoked_at set), so the endpoint stays readable, as revoked, like the API's.
PHASES = "examples,coverage,fuzzing,stateful"
EXAMPLES_PER_OPERATION = 10


def test_schemathesis_finds_nothing_in_any_phase(live_server, transactional_db, tmp_path):
    sandbox = SandboxSettings.load()
    sandbox.rate_limit = 100_000
    sandbox.token_delay_ms = 0
    sandbox.save()
    key = issue_key(credits=100_000_000)

    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{live_server.url}/sandbox/api/v1/openapi.json",
            f"--header=Authorization: Bearer {key}",
            "--checks=all",
            "--exclude-checks=positive_data_acceptance,use_after_free",
            f"--phases={PHASES}",
            f"--max-examples={EXAMPLES_PER_OPERATION}",
            "--generation-deterministic",
            "--suppress-health-check=all",
            "--request-timeout=30",
            # One at a time: the test database on SQLite is shared in memory across threads.
            "--workers=1",
            "--no-color",
            f"--report-dir={tmp_path}",
        ],
        # Schemathesis keeps a crash cache in its working directory: not in the checkout.
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in run.stdout, summary
    assert key not in run.stdout


@pytest.mark.parametrize(
    "path",
    [
        "/generations/a%0Ab",
        "/webhooks/%C2%87%0A%C3%9B/deliveries",
        "/chat/sessions/%0A",
        "/no-such-operation",
        "/generations/task_x/extra/parts",
        "",
    ],
)
def test_every_unroutable_path_gets_the_json_not_found(api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert error_code(response) == "not_found"


def test_a_path_outside_v1_under_the_api_is_json_too(api):
    response = api.client.get("/sandbox/api/v2/models")

    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json()["error"]["requestId"] == response["X-Request-Id"]


def test_openapi_json_is_served_outside_the_rate_limit(api, sandbox_settings):
    sandbox_settings.rate_limit = 1
    sandbox_settings.save()
    assert api.get("/credits").status_code == 200
    assert api.get("/credits").status_code == 429

    response = api.get("/openapi.json")

    assert response.status_code == 200
    assert "X-RateLimit-Remaining" not in response


def test_creates_declare_links_to_what_uses_their_ids():
    paths = document("x")["paths"]
    links = paths["/webhooks"]["post"]["responses"]["201"]["links"]
    assert set(links) == {
        "getWebhook",
        "updateWebhook",
        "deleteWebhook",
        "rotateWebhookSecret",
        "sendTestWebhook",
        "listWebhookDeliveries",
    }
    assert links["getWebhook"]["parameters"] == {"endpointId": "$response.body#/id"}
    chat = paths["/chat/completions"]["post"]["responses"]["200"]["links"]
    assert chat["getChatSession"]["parameters"] == {"sessionId": "$response.body#/session_id"}
    assert "getGeneration" in paths["/generations"]["post"]["responses"]["202"]["links"]
    assert "getFile" in paths["/files"]["post"]["responses"]["201"]["links"]


def test_path_ids_declare_the_format_the_sandbox_mints(api):
    parameter = document("x")["paths"]["/generations/{taskId}"]["get"]["parameters"][0]
    pattern = re.compile(parameter["schema"]["pattern"])
    created = api.post("/generations", {"model": "z-image", "prompt": "a lighthouse"}).json()

    assert pattern.fullmatch(created["id"])
    assert not pattern.fullmatch("task_" + "A" * 24)
    assert "404" in document("x")["paths"]["/generations/{taskId}"]["get"]["responses"]


def test_webhook_urls_declare_the_https_rule():
    url = document("x")["components"]["schemas"]["WebhookEndpointCreate"]["properties"]["url"]
    assert re.match(url["pattern"], "https://hooks.example.com/x")
    assert not re.match(url["pattern"], "ftp://hooks.example.com/x")

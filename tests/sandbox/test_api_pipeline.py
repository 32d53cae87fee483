"""The request pipeline shared by every endpoint: §2.4 auth order, §3.1 errors, §3.3 limits."""

import re
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from rivya_dashboard.sandbox import choices, faults
from rivya_dashboard.sandbox.keys import find_key, hash_key, issue_key
from rivya_dashboard.sandbox.models import RequestLog, SandboxKey
from tests.sandbox.conftest import Api, error_code

REQUEST_ID = re.compile(r"^req_[0-9A-Za-z]{24}$")


def test_it_issues_keys_in_the_proposed_format_and_keeps_only_a_hash(db):
    raw_key = issue_key(scopes=["credits:read"], credits=5)
    assert re.fullmatch(r"rvya_sk_[A-Za-z0-9]{40}", raw_key)
    key = SandboxKey.objects.get()
    assert key.prefix == raw_key[:12]
    assert key.key_hash == hash_key(raw_key) != raw_key
    assert raw_key not in str(list(SandboxKey.objects.values()))
    assert key.account.credits == 5
    assert find_key(raw_key) == key


def test_it_rejects_unknown_scopes(db):
    with pytest.raises(ValueError, match="nope"):
        issue_key(scopes=["nope"])


def test_the_command_prints_the_key_alone_on_the_last_line(db):
    out = StringIO()
    call_command("sandbox_key", "--scopes", "credits:read,chat:read", "--credits", "7", stdout=out)
    raw_key = out.getvalue().strip().splitlines()[-1]
    key = find_key(raw_key)
    assert key.scopes == ["credits:read", "chat:read"]
    assert key.account.credits == 7
    assert Api(raw_key).get("/credits").json() == {"current_credits": 7}


def test_the_command_refuses_unknown_scopes(db):
    with pytest.raises(CommandError, match="Known scopes"):
        call_command("sandbox_key", "--scopes", "everything", stdout=StringIO())


def test_every_response_carries_a_request_id_equal_to_the_error_request_id(api):
    ok = api.get("/credits")
    assert REQUEST_ID.match(ok["X-Request-Id"])
    missing = api.get("/generations/task_nothing")
    assert REQUEST_ID.match(missing["X-Request-Id"])
    assert missing.json()["error"]["requestId"] == missing["X-Request-Id"]
    assert ok["X-Request-Id"] != missing["X-Request-Id"]


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic abc", "Bearer  ", "rvya_sk_x"],
)
def test_a_missing_or_garbled_authorization_is_api_key_missing(db, header):
    api = Api(None)
    headers = {} if header is None else {"Authorization": header}
    response = api.get("/credits", headers=headers)
    assert response.status_code == 401
    assert error_code(response) == "api_key_missing"


def test_the_auth_scheme_name_is_case_insensitive(api, raw_key):
    response = api.get("/credits", headers={"Authorization": f"bearer {raw_key}"})
    assert response.status_code == 200


def test_an_unknown_key_is_api_key_invalid(db):
    response = Api("rvya_sk_" + "A" * 40).get("/credits")
    assert response.status_code == 401
    assert error_code(response) == "api_key_invalid"


@pytest.mark.parametrize(
    ("status", "code"), [("revoked", "api_key_revoked"), ("expired", "api_key_expired")]
)
def test_revoked_and_expired_keys_are_refused(api, raw_key, status, code):
    SandboxKey.objects.update(status=status)
    response = api.get("/credits")
    assert response.status_code == 401
    assert error_code(response) == code


def test_a_missing_scope_is_api_scope_denied(db):
    api = Api(issue_key(scopes=["chat:read"]))
    response = api.get("/credits")
    assert response.status_code == 403
    assert error_code(response) == "api_scope_denied"
    assert "credits:read" in response.json()["error"]["message"]


def test_the_kill_switch_comes_before_authentication(db, sandbox_settings):
    sandbox_settings.public_api_disabled = True
    sandbox_settings.save()
    response = Api(None).get("/credits")
    assert response.status_code == 503
    assert error_code(response) == "public_api_disabled"


def test_authentication_comes_before_the_fault_header_is_read(db):
    response = Api(None).get("/credits", headers={"X-Sandbox-Fault": "explode"})
    assert response.status_code == 401
    assert error_code(response) == "api_key_missing"


def test_the_scope_check_comes_before_the_rate_limit(db, sandbox_settings):
    sandbox_settings.rate_limit = 1
    sandbox_settings.save()
    api = Api(issue_key(scopes=["chat:read"]))
    assert api.get("/chat/sessions").status_code == 200
    assert api.get("/credits").status_code == 403
    assert api.get("/chat/sessions").status_code == 429


def test_the_rate_limit_counts_a_sliding_window_per_key(api, raw_key, sandbox_settings):
    sandbox_settings.rate_limit = 3
    sandbox_settings.save()
    first = api.get("/credits")
    assert first["X-RateLimit-Limit"] == "3"
    assert first["X-RateLimit-Remaining"] == "2"
    assert int(first["X-RateLimit-Reset"]) >= int(time.time())
    assert api.get("/credits")["X-RateLimit-Remaining"] == "1"
    assert api.get("/credits")["X-RateLimit-Remaining"] == "0"
    limited = api.get("/credits")
    assert limited.status_code == 429
    assert error_code(limited) == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited["X-RateLimit-Remaining"] == "0"
    assert Api(issue_key()).get("/credits").status_code == 200, "other keys are not limited"
    RequestLog.objects.update(created_at="2000-01-01T00:00:00Z")
    assert api.get("/credits").status_code == 200, "the window slides on"


def test_models_need_no_key_but_a_sent_key_must_be_valid(db):
    assert Api(None).get("/models").status_code == 200
    response = Api("rvya_sk_" + "B" * 40).get("/models")
    assert response.status_code == 401
    assert error_code(response) == "api_key_invalid"


def test_an_unsupported_method_is_405_in_the_envelope(api):
    response = api.client.delete("/sandbox/api/v1/credits", headers=api.headers())
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"
    assert response["Allow"] == "GET"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "must be a JSON object"),
        (b"[1, 2]", "must be of type object"),
        (b"\xff\xfe", "must be a JSON object"),
        (b"", "must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "must be a JSON object"),
        (b'{"model": "z-image", "prompt": "x", "client_request_id": NaN}', "finite"),
        (
            b'{"model": "z-image", "params": {"referenceMediaItems": [{"url": "https://a.example/'
            b'x.png", "kind": "image", "durationSeconds": 1e999}]}}',
            "finite",
        ),
    ],
)
def test_malformed_json_is_validation_failed(api, body, message):
    response = api.post("/generations", body)
    assert response.status_code == 400
    assert error_code(response) == "validation_failed"
    assert message in response.json()["error"]["message"]


def test_a_body_over_one_megabyte_is_413(api):
    body = '{"model": "z-image", "prompt": "' + "x" * (1024 * 1024) + '"}'
    response = api.post("/generations", body)
    assert response.status_code == 413
    assert error_code(response) == choices.PAYLOAD_TOO_LARGE_CODE == "payload_too_large"


def test_the_switch_off_makes_every_sandbox_url_404(api, settings):
    settings.RIVYA_SANDBOX = False
    for path in ("/models", "/credits", "/openapi.json", "/generations/task_x"):
        assert api.get(path).status_code == 404, path
    assert api.post("/generations", {"model": "z-image"}).status_code == 404
    assert api.client.get("/sandbox/api/media/task_x.png").status_code == 404


def test_requests_are_logged_without_key_material(api, raw_key):
    api.get("/credits")
    row = RequestLog.objects.get()
    assert (row.method, row.path, row.status) == ("GET", "/sandbox/api/v1/credits", 200)
    assert row.key_prefix == raw_key[:12]
    assert raw_key not in str(RequestLog.objects.values().get())


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("429", "rate_limited"),
        ("500", "internal_error"),
        ("502", "bad_gateway"),
        ("503", "public_api_disabled"),
    ],
)
def test_the_fault_header_injects_an_error_status(api, status, code):
    response = api.get("/credits", headers={"X-Sandbox-Fault": f"status={status}"})
    assert response.status_code == int(status)
    assert error_code(response) == code


def test_the_fault_header_adds_latency(api):
    started = time.monotonic()
    assert api.get("/credits", headers={"X-Sandbox-Fault": "latency=150"}).status_code == 200
    assert time.monotonic() - started >= 0.15


def test_an_unknown_fault_is_a_validation_error(api):
    response = api.get("/credits", headers={"X-Sandbox-Fault": "explode"})
    assert response.status_code == 400
    assert "explode" in response.json()["error"]["message"]
    response = api.get("/credits", headers={"X-Sandbox-Fault": "status=418"})
    assert response.status_code == 400


def test_faults_can_be_set_globally_and_per_key(api, raw_key):
    other = Api(issue_key())
    faults.set_key_faults(find_key(raw_key), {"status": 502})
    assert api.get("/credits").status_code == 502
    assert other.get("/credits").status_code == 200
    faults.set_key_faults(find_key(raw_key), {})
    faults.set_global_faults({"status": "503"})
    assert api.get("/credits").status_code == 503
    assert other.get("/models").status_code == 503
    faults.set_global_faults({})
    faults.set_key_faults(find_key(raw_key), {"latency": 120})
    started = time.monotonic()
    assert api.get("/credits").status_code == 200
    assert time.monotonic() - started >= 0.12
    with pytest.raises(ValueError, match="Unknown fault"):
        faults.set_global_faults({"boom": True})


def test_a_stored_fault_can_be_limited_to_the_next_requests(api, raw_key):
    faults.set_key_faults(find_key(raw_key), {"status": 503, "times": 2})
    assert [api.get("/credits").status_code for _ in range(3)] == [503, 503, 200]
    assert find_key(raw_key).faults == {}
    faults.set_global_faults({"status": 500, "times": 1})
    assert [api.get("/credits").status_code for _ in range(2)] == [500, 200]
    response = api.get("/credits", headers={"X-Sandbox-Fault": "status=503, times=1"})
    assert response.status_code == 400
    with pytest.raises(ValueError, match="number of requests"):
        faults.set_global_faults({"status": 500, "times": 0})


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/generations", '{"model": "z-image", "prompt": "a\\u0000b"}', "NUL"),
        ("/generations", '{"model": "z-image", "prompt": "\\ud800"}', "valid Unicode"),
        ("/chat/completions", '{"model": "gpt-5-2-chat", "message": "\\udfff"}', "valid Unicode"),
    ],
)
def test_text_a_database_cannot_store_is_refused(api, path, body, message):
    response = api.post(path, body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_nul_in_identifiers_and_query_parameters_is_refused(api):
    assert api.get("/generations/task_%00x").status_code == 400
    assert api.get("/chat/sessions", model="a\x00b").status_code == 400

"""The contract's curl examples (§1.4, §4-§10), run with curl against a live sandbox.

Each answer must have exactly the keys of the documented example, so a renamed or missing
field fails here before it reaches a client.
"""

import json
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from rivya_dashboard.sandbox.media import prompt_png
from rivya_dashboard.sandbox.models import SandboxSettings

MODEL_KEYS = {
    "id",
    "display_name",
    "category",
    "runtime",
    "base_credits",
    "billing_type",
    "supported_modes",
    "max_prompt_length",
    "reference_media",
    "params",
    "api_status",
    "api_input_status",
    "supported_api_inputs",
    "requires_files_api",
    "requires_upload_for_modes",
    "url_input_supported",
    "file_kinds",
    "chat_capabilities",
    "notices",
}
GENERATION_KEYS = {
    "id",
    "status",
    "model",
    "reserved_credits",
    "final_credits",
    "created_at",
    "updated_at",
    "result",
    "error",
}
FILE_KEYS = {
    "id",
    "object",
    "kind",
    "name",
    "mime_type",
    "size_bytes",
    "model",
    "url",
    "duration_seconds",
    "duration_token",
    "client_request_id",
    "created_at",
    "expires_at",
}
COMPLETION_KEYS = {
    "id",
    "object",
    "session_id",
    "model",
    "created_at",
    "message",
    "usage",
    "credits",
}


@pytest.fixture
def curl(live_server, transactional_db):
    sandbox = SandboxSettings.load()
    sandbox.token_delay_ms = 0
    sandbox.save()
    out = StringIO()
    call_command("sandbox_key", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    base = f"{live_server.url}/sandbox/api/v1"

    def run(path: str, *args: str, auth: bool = True) -> str:
        command = ["curl", "-sS", "--max-time", "20", *args, base + path]
        if auth:
            command[1:1] = ["-H", f"Authorization: Bearer {key}"]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    return run


def test_models_list(curl):
    body = json.loads(curl("/models", auth=False))
    assert body["object"] == "list"
    assert len(body["data"]) == 39
    z_image = next(row for row in body["data"] if row["id"] == "z-image")
    assert set(z_image) == MODEL_KEYS
    assert z_image["params"][0]["key"] == "aspect_ratio"


def test_generation_create_status_and_credits(curl):
    request = {
        "model": "nano-banana-2",
        "prompt": "Restyle this product photo for a clean editorial catalog page",
        "client_request_id": "order-123-preview",
    }
    created = json.loads(
        curl(
            "/generations",
            "-H",
            "Content-Type: application/json",
            "-H",
            "Idempotency-Key: order-123-preview",
            "-d",
            json.dumps(request),
        )
    )
    assert set(created) == GENERATION_KEYS
    assert created["status"] == "queued"
    status = json.loads(curl(f"/generations/{created['id']}"))
    assert set(status) == GENERATION_KEYS
    assert json.loads(curl("/credits")) == {"current_credits": 1000 - 5}


def test_file_upload_and_fetch(curl, tmp_path: Path):
    image = tmp_path / "reference.png"
    image.write_bytes(prompt_png("reference"))
    uploaded = json.loads(
        curl("/files", "-F", f"file=@{image}", "-F", "kind=image", "-F", "model=nano-banana-2")
    )
    assert set(uploaded) == FILE_KEYS
    assert json.loads(curl(f"/files/{uploaded['id']}")) == uploaded


def test_chat_completion_stream_and_sessions(curl):
    turn = {"model": "gpt-5-2-chat", "message": "Write a concise launch plan"}
    headers = ("-H", "Content-Type: application/json", "-H", "Idempotency-Key: chat-1")
    completion = json.loads(curl("/chat/completions", *headers, "-d", json.dumps(turn)))
    assert set(completion) == COMPLETION_KEYS
    assert set(completion["usage"]) == {"input_tokens", "output_tokens", "total_tokens"}
    assert set(completion["credits"]) == {"reserved", "final"}
    follow_up = {**turn, "session_id": completion["session_id"], "message": "Shorter please"}
    stream = curl(
        "/chat/completions/stream",
        "-N",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps(follow_up),
    )
    events = [block.split("\n")[0] for block in stream.strip().split("\n\n")]
    assert events[0] == "event: session" and events[-1] == "event: done"
    sessions = json.loads(curl("/chat/sessions"))
    assert set(sessions) == {"object", "data", "has_more", "next_cursor"}
    detail = json.loads(curl(f"/chat/sessions/{completion['session_id']}"))
    assert detail["message_count"] == 4


def test_errors_carry_the_request_id_header(curl):
    output = curl("/credits", "-i", auth=False)
    head, body = output.split("\n\n", 1)
    request_id = next(
        line.split(": ", 1)[1]
        for line in head.splitlines()
        if line.lower().startswith("x-request-id")
    )
    assert json.loads(body) == {
        "error": {
            "code": "api_key_missing",
            "message": "A valid Bearer API key is required.",
            "requestId": request_id,
        }
    }

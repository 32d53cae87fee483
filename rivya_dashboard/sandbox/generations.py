"""Generations (§5, §6): submit with reservation, status advanced from elapsed time, settlement.

No background process advances a task: every read computes where it should be from
(now - created_at) x clock speed and persists any step forward. The step to a terminal state
is a conditional UPDATE, so exactly one reader settles credits and sends `generation_finished`.
"""

import random
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import django.dispatch
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.sandbox import choices, credits
from rivya_dashboard.sandbox.api import Call, component, endpoint, timestamp
from rivya_dashboard.sandbox.catalogue import check_params, check_prompt, find_model
from rivya_dashboard.sandbox.errors import not_found, validation_failed
from rivya_dashboard.sandbox.files import DURATION_SALT
from rivya_dashboard.sandbox.ids import public_id
from rivya_dashboard.sandbox.models import Generation, SandboxSettings, UploadedFile

# Sent once per generation when it becomes succeeded or failed (kwargs: generation).
generation_finished = django.dispatch.Signal()

MEDIA_EXTENSIONS = {"image": ".png", "audio": ".wav", "video": ".webm"}

REFERENCE_ITEM = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "minLength": 1, "maxLength": 2000},
        "kind": {"type": "string", "enum": ["image", "video", "audio"]},
        "name": {"type": "string", "maxLength": 255},
        "mimeType": {"type": "string", "maxLength": 100},
        "durationSeconds": {"type": "number", "minimum": 0},
        "durationToken": {"type": "string", "maxLength": 500},
    },
    "required": ["url", "kind"],
    "additionalProperties": False,
}
GENERATION_REQUEST = component(
    "GenerationRequest",
    {
        "type": "object",
        "properties": {
            "model": {"type": "string", "minLength": 1, "maxLength": 100},
            "prompt": {"type": "string"},
            "params": {
                "type": "object",
                "description": "Keys per model (GET /models params); reference media in "
                "referenceMediaItems.",
                "properties": {
                    "referenceMediaItems": {"type": "array", "items": REFERENCE_ITEM},
                },
            },
            "client_request_id": {
                "type": "string",
                "maxLength": choices.MAX_CLIENT_REQUEST_ID_LENGTH,
            },
        },
        "required": ["model"],
        "additionalProperties": False,
        "examples": [{"model": "z-image", "prompt": "a lighthouse at dawn"}],
    },
)
PUBLIC_ERROR = {
    "type": ["object", "null"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["code", "message"],
}
GENERATION = component(
    "Generation",
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": [s.value for s in Generation.Status]},
            "model": {"type": "string"},
            "reserved_credits": {"type": "integer"},
            "final_credits": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "result": {
                "type": ["object", "null"],
                "properties": {
                    "primary_url": {"type": "string"},
                    "urls": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["primary_url", "urls"],
            },
            "error": PUBLIC_ERROR,
        },
        "required": [
            "id",
            "status",
            "model",
            "reserved_credits",
            "final_credits",
            "created_at",
            "updated_at",
            "result",
            "error",
        ],
    },
)


@endpoint(
    "POST",
    "/generations",
    operation_id="createGeneration",
    summary="Submit an image, video or audio generation",
    scope="generations:create",
    body=GENERATION_REQUEST,
    success=202,
    response=GENERATION,
    errors=(400, 402, 409),
    idempotent=True,
)
def create_generation(call: Call) -> dict:
    body = call.body
    row = find_model(body["model"])
    if row["category"] == "chat":
        raise validation_failed(f"model: {row['id']} is a chat model; use POST /chat/completions")
    if row["api_status"] != "available":
        raise validation_failed(f"model: {row['id']} is {row['api_status']} in the Public API")
    check_params(row, body.get("params"))
    check_prompt(row, body.get("prompt"), body.get("params"))
    check_references(row, (body.get("params") or {}).get("referenceMediaItems"), call)
    generation = do_submit(call, row, body)
    return serialize(generation)


def do_submit(call: Call, row: dict, body: dict) -> Generation:
    sandbox = SandboxSettings.load()
    prompt = body.get("prompt", "")
    with transaction.atomic():
        credits.reserve(call.account, row["base_credits"])
        return Generation.objects.create(
            public_id=public_id(choices.TASK_PREFIX),
            account=call.account,
            model=row["id"],
            category=row["category"],
            prompt=prompt,
            params=body.get("params") or {},
            client_request_id=body.get("client_request_id", ""),
            will_fail=choices.FAIL_MARKER in prompt or random.random() < sandbox.failure_rate,
            reserved_credits=row["base_credits"],
            media_base_url=call.request.build_absolute_uri(
                reverse("sandbox-api:media", args=["-"])
            )[:-1],
        )


def check_references(row: dict, items: list | None, call: Call) -> None:
    if not items:
        return
    rules = row["reference_media"]
    if rules is None:
        raise validation_failed(f"params.referenceMediaItems: {row['id']} takes no reference media")
    if len(items) > rules["max_files"]:
        raise validation_failed(
            f"params.referenceMediaItems: at most {rules['max_files']} items for {row['id']}"
        )
    for index, item in enumerate(items):
        field = f"params.referenceMediaItems[{index}]"
        if item["kind"] not in rules["file_kinds"]:
            kinds = ", ".join(rules["file_kinds"])
            raise validation_failed(f"{field}.kind: {row['id']} accepts {kinds}")
        upload = uploaded_file_for(item["url"], call)
        if item["kind"] in rules["duration_token_required_for"]:
            check_duration_token(field, item.get("durationToken"), upload)


def check_duration_token(field: str, token: str | None, upload: UploadedFile | None) -> None:
    expected = upload.duration_token if upload is not None else None
    try:
        valid = bool(token) and (
            token == expected if expected else signing.loads(token, salt=DURATION_SALT)
        )
    except signing.BadSignature:
        valid = False
    if not valid:
        raise validation_failed(
            f"{field}.durationToken: send the duration_token that POST /files returned"
        )


def uploaded_file_for(url: str, call: Call) -> UploadedFile | None:
    """The sandbox upload a reference URL points at; unknown or expired ones fail validation."""
    media_path = reverse("sandbox-api:media", args=["-"])[:-1]
    try:
        path = urlsplit(url).path
    except ValueError:
        raise validation_failed(f"params.referenceMediaItems: {url!r} is not a URL") from None
    if not path.startswith(media_path):
        return None
    name = path[len(media_path) :]
    upload = UploadedFile.objects.filter(
        account=call.account, storage_name=name, expires_at__gt=timezone.now()
    ).first()
    if upload is None:
        raise validation_failed(f"params.referenceMediaItems: {url} is not a current upload")
    return upload


@endpoint(
    "GET",
    "/generations/{taskId}",
    operation_id="getGeneration",
    summary="Status and result of a generation",
    scope="generations:read",
    response=GENERATION,
    errors=(404,),
)
def get_generation(call: Call, taskId: str) -> dict:
    generation = Generation.objects.filter(account=call.account, public_id=taskId).first()
    if generation is None:
        raise not_found("generation", taskId)
    return serialize(advance(generation))


def stage_durations(generation: Generation) -> tuple[float, float]:
    """Seconds from creation to processing and to the end, at the current clock speed."""
    speed = SandboxSettings.load().clock_speed
    queued = choices.QUEUED_SECONDS / speed
    processing = choices.PROCESSING_SECONDS[generation.category] / speed
    return queued, queued + processing


def advance(generation: Generation) -> Generation:
    if generation.is_terminal:
        return generation
    to_processing, to_end = stage_durations(generation)
    elapsed = (timezone.now() - generation.created_at).total_seconds()
    if elapsed >= to_end:
        finish(generation, generation.created_at + timedelta(seconds=to_end))
    elif elapsed >= to_processing and generation.status == Generation.Status.QUEUED:
        moved_at = generation.created_at + timedelta(seconds=to_processing)
        Generation.objects.filter(pk=generation.pk, status=Generation.Status.QUEUED).update(
            status=Generation.Status.PROCESSING, updated_at=moved_at
        )
    generation.refresh_from_db()
    return generation


def finish(generation: Generation, finished_at: Any) -> None:
    failed = generation.will_fail
    status = Generation.Status.FAILED if failed else Generation.Status.SUCCEEDED
    with transaction.atomic():
        won = Generation.objects.filter(
            pk=generation.pk,
            status__in=[Generation.Status.QUEUED, Generation.Status.PROCESSING],
        ).update(
            status=status,
            updated_at=finished_at,
            final_credits=0 if failed else generation.reserved_credits,
        )
        if won and failed:
            credits.refund(generation.account_id, generation.reserved_credits)
    if won:
        generation.refresh_from_db()
        generation_finished.send(sender=Generation, generation=generation)


def result_urls(generation: Generation) -> list[str]:
    name = generation.public_id + MEDIA_EXTENSIONS[generation.category]
    return [generation.media_base_url + name]


def serialize(generation: Generation) -> dict:
    succeeded = generation.status == Generation.Status.SUCCEEDED
    urls = result_urls(generation) if succeeded else []
    failed = generation.status == Generation.Status.FAILED
    return {
        "id": generation.public_id,
        "status": generation.status,
        "model": generation.model,
        "reserved_credits": generation.reserved_credits,
        "final_credits": generation.final_credits,
        "created_at": timestamp(generation.created_at),
        "updated_at": timestamp(generation.updated_at),
        "result": {"primary_url": urls[0], "urls": urls} if succeeded else None,
        "error": {"code": "generation_failed", "message": "The generation failed."}
        if failed
        else None,
    }

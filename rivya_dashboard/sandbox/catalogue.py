"""The model catalogue (§4, §11) from data/models.json, GET /models, and per-model param checks."""

import json
from functools import cache
from pathlib import Path
from typing import Any

from rivya_dashboard.sandbox.api import Call, component, endpoint
from rivya_dashboard.sandbox.errors import validation_failed

DATA_FILE = Path(__file__).resolve().parent / "data" / "models.json"
CATEGORIES = ("image", "video", "audio", "chat")
API_STATUSES = ("available", "coming_soon", "studio_only")


@cache
def catalogue() -> dict[str, dict]:
    with DATA_FILE.open() as handle:
        return {row["id"]: row for row in json.load(handle)["models"]}


def public_model(row: dict) -> dict:
    """The served object: everything except the sandbox's own `sandbox` rules block."""
    return {name: value for name, value in row.items() if name != "sandbox"}


PARAM = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "type": {"type": "string", "enum": ["select", "number", "text", "dialogue"]},
        "required": {"type": "boolean"},
        "default": {"type": ["string", "number", "null"]},
        "options": {"type": ["array", "null"], "items": {"type": "string"}},
        "min": {"type": ["number", "null"]},
        "max": {"type": ["number", "null"]},
        "step": {"type": ["number", "null"]},
        "label": {"type": "string"},
    },
    "required": ["key", "type", "required", "default", "options", "min", "max", "step", "label"],
}
REFERENCE_MEDIA = {
    "type": ["object", "null"],
    "properties": {
        "rule": {"type": "string"},
        "max_files": {"type": "integer"},
        "file_kinds": {"type": "array", "items": {"type": "string"}},
        "limits": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string"},
                    "max_bytes": {"type": "integer"},
                    "mime_types": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["kind", "max_bytes", "mime_types"],
            },
        },
        "duration_token_required_for": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["rule", "max_files", "file_kinds", "limits", "duration_token_required_for"],
}
CHAT_CAPABILITIES = {
    "type": ["object", "null"],
    "properties": {
        "non_streaming": {"type": "boolean"},
        "streaming": {"type": "boolean"},
        "web_search": {"type": "boolean"},
        "image_attachments": {"type": "boolean"},
        "thoughts": {"type": "boolean"},
        "reasoning_efforts": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["non_streaming", "streaming", "web_search", "image_attachments", "thoughts"],
}
STRINGS = {"type": "array", "items": {"type": "string"}}
MODEL = component(
    "Model",
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "display_name": {"type": "string"},
            "category": {"type": "string"},
            "runtime": {"type": "string"},
            "base_credits": {"type": "number"},
            "billing_type": {"type": "string", "enum": ["FIXED", "METERED", "TOKEN_BASED"]},
            "supported_modes": STRINGS,
            "max_prompt_length": {"type": ["integer", "null"]},
            "reference_media": REFERENCE_MEDIA,
            "params": {"type": "array", "items": PARAM},
            "api_status": {"type": "string"},
            "api_input_status": {"type": "string"},
            "supported_api_inputs": STRINGS,
            "requires_files_api": {"type": "boolean"},
            "requires_upload_for_modes": STRINGS,
            "url_input_supported": {"type": "boolean"},
            "file_kinds": STRINGS,
            "chat_capabilities": CHAT_CAPABILITIES,
            "notices": STRINGS,
        },
        "required": ["id", "display_name", "category", "base_credits", "params", "api_status"],
    },
)
MODEL_LIST = component(
    "ModelList",
    {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": MODEL},
        },
        "required": ["object", "data"],
    },
)
MODELS_QUERY = (
    {
        "name": "category",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": list(CATEGORIES)},
    },
    {
        "name": "api_status",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": list(API_STATUSES)},
    },
)


@endpoint(
    "GET",
    "/models",
    operation_id="listModels",
    summary="List the public model catalogue (no key needed; a sent key must be valid)",
    public=True,
    query=MODELS_QUERY,
    response=MODEL_LIST,
)
def list_models(call: Call) -> dict:
    rows = [
        public_model(row)
        for row in catalogue().values()
        if call.query.get("category") in (None, row["category"])
        and call.query.get("api_status") in (None, row["api_status"])
    ]
    return {"object": "list", "data": rows}


def find_model(model_id: str, *, field: str = "model") -> dict:
    row = catalogue().get(model_id)
    if row is None:
        raise validation_failed(f"{field}: unknown model {model_id!r}; see GET /models")
    return row


def check_prompt(row: dict, prompt: str | None, params: dict | None) -> None:
    rules = row["sandbox"]
    if prompt and not prompt.strip():
        raise validation_failed("prompt: must contain more than whitespace")
    if not prompt and rules["prompt_required"]:
        raise validation_failed(f"prompt: is required for model {row['id']}")
    if not prompt and not params:
        raise validation_failed(f"prompt: send a prompt or params for model {row['id']}")
    if row["requires_files_api"] and not (params or {}).get("referenceMediaItems"):
        kinds = " or ".join(row["file_kinds"])
        raise validation_failed(
            f"params.referenceMediaItems: {row['id']} needs an uploaded {kinds} file"
        )
    limit = row["max_prompt_length"]
    if prompt and limit is not None and len(prompt) > limit:
        raise validation_failed(f"prompt: must be at most {limit} characters for {row['id']}")


def check_params(row: dict, params: dict | None) -> None:
    """Validate `params` against the model's schema; messages name the offending field."""
    if params is None:
        if row["sandbox"]["params_required"]:
            raise validation_failed(f"params: is required for model {row['id']}")
        params = {}
    definitions = {param["key"]: param for param in row["params"]}
    for key, value in params.items():
        if key == "referenceMediaItems":
            continue
        if key not in definitions:
            known = ", ".join(definitions) or "none"
            raise validation_failed(
                f"params.{key}: is not a parameter of {row['id']} (known: {known})"
            )
        check_param(definitions[key], value)
    for key, param in definitions.items():
        if param["required"] and key not in params:
            raise validation_failed(f"params.{key}: is required for model {row['id']}")


def check_param(param: dict, value: Any) -> None:
    field = f"params.{param['key']}"
    kind = param["type"]
    if kind == "select":
        if not isinstance(value, str) or value not in param["options"]:
            options = ", ".join(param["options"])
            raise validation_failed(f"{field}: must be one of {options} (sent as a string)")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise validation_failed(f"{field}: must be a number")
        if param["min"] is not None and value < param["min"]:
            raise validation_failed(f"{field}: must be at least {param['min']}")
        if param["max"] is not None and value > param["max"]:
            raise validation_failed(f"{field}: must be at most {param['max']}")
    elif kind == "text":
        if not isinstance(value, str):
            raise validation_failed(f"{field}: must be a string")
    else:
        check_dialogue(field, value)


def check_dialogue(field: str, value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise validation_failed(f'{field}: must be a list of {{"voice", "text"}} lines')
    for index, line in enumerate(value):
        if (
            not isinstance(line, dict)
            or not isinstance(line.get("voice"), str)
            or not isinstance(line.get("text"), str)
        ):
            raise validation_failed(f"{field}[{index}]: needs string voice and text")

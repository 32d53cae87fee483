"""Public shapes of contract §9: endpoint, event and delivery objects, and their schemas.

The schemas are registered with api.component so openapi.json documents exactly these shapes;
the webhook views validate request bodies against the same dicts.
"""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.api import closed_object, component, timestamp
from rivya_dashboard.sandbox.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

TEST_EVENT_MODEL = "z-image"
STAMP = {"type": ["string", "null"], "format": "date-time"}
EVENT_TYPE = {"type": "string", "enum": list(choices.WEBHOOK_EVENT_TYPES)}
EVENT_TYPES = {
    "type": "array",
    "minItems": 1,
    "maxItems": len(choices.WEBHOOK_EVENT_TYPES),
    "items": EVENT_TYPE,
}
NAME = {"type": "string", "minLength": 1, "maxLength": choices.WEBHOOK_NAME_MAX_LENGTH}
URL = {
    "type": "string",
    "format": "uri",
    # Enforced with its reasons by webhooks_targets.check_target: https only, except http while
    # the sandbox allows local targets.
    "pattern": "^https?://[^/?#@\\s]+",
    "description": "https:// (http:// only while the sandbox allows local targets); "
    "no credentials, no #fragment, a public host.",
    "minLength": 1,
    "maxLength": choices.WEBHOOK_URL_MAX_LENGTH,
}

CREATE_BODY = component(
    "WebhookEndpointCreate",
    {
        "type": "object",
        "properties": {"name": NAME, "url": URL, "event_types": EVENT_TYPES},
        "required": ["name", "url", "event_types"],
        "additionalProperties": False,
        "examples": [
            {
                "name": "Production",
                "url": "https://hooks.example.com/rivya",
                "event_types": ["generation.succeeded", "generation.failed"],
            }
        ],
    },
)
UPDATE_BODY = component(
    "WebhookEndpointUpdate",
    {
        "type": "object",
        "properties": {
            "name": NAME,
            "url": URL,
            "event_types": EVENT_TYPES,
            "status": {"type": "string", "enum": ["active", "disabled"]},
        },
        "additionalProperties": False,
    },
)
ROTATE_BODY = component(
    "WebhookSecretRotation",
    {
        "type": "object",
        "properties": {
            "overlap_seconds": {
                "type": "integer",
                "minimum": 0,
                "maximum": choices.WEBHOOK_MAX_ROTATION_OVERLAP_SECONDS,
                "description": "Sandbox extension: keep the old secret signing this long.",
            }
        },
        "additionalProperties": False,
    },
)

ENDPOINT_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "object": {"const": "webhook_endpoint"},
    "name": {"type": "string"},
    "url": {"type": "string"},
    "event_types": {"type": "array", "items": EVENT_TYPE},
    "status": {"type": "string", "enum": [s.value for s in WebhookEndpoint.Status]},
    "secret_preview": {"type": "string"},
    "last_success_at": STAMP,
    "last_failure_at": STAMP,
    "failure_count": {"type": "integer", "minimum": 0},
    "created_at": STAMP,
    "updated_at": STAMP,
    "disabled_at": STAMP,
    "revoked_at": STAMP,
}
ENDPOINT = closed_object("WebhookEndpoint", ENDPOINT_PROPERTIES)
ENDPOINT_WITH_SECRET = closed_object(
    "WebhookEndpointWithSecret", {**ENDPOINT_PROPERTIES, "signing_secret": {"type": "string"}}
)
EVENT_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "object": {"const": "event"},
    "type": EVENT_TYPE,
    "api_version": {"type": "string"},
    "created_at": STAMP,
    "data": {"$ref": "#/components/schemas/Generation"},
    "test": {"type": "boolean"},
}
EVENT = closed_object("WebhookEvent", EVENT_PROPERTIES)
DELIVERY_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "object": {"const": "webhook_delivery"},
    "endpoint_id": {"type": "string"},
    "event_id": {"type": "string"},
    "event_type": EVENT_TYPE,
    "status": {"type": "string", "enum": [s.value for s in WebhookDelivery.Status]},
    "attempt": {"type": "integer", "minimum": 0},
    "response_status": {"type": ["integer", "null"]},
    "error": {"type": ["string", "null"]},
    "duration_ms": {"type": ["integer", "null"]},
    "next_retry_at": STAMP,
    "created_at": STAMP,
    "completed_at": STAMP,
}
DELIVERY = closed_object("WebhookDelivery", DELIVERY_PROPERTIES)


def list_of(name: str, item: dict) -> dict:
    return component(
        name,
        {
            "type": "object",
            "properties": {
                "object": {"const": "list"},
                "data": {"type": "array", "items": item},
                "has_more": {"type": "boolean"},
                "next_cursor": {"type": ["string", "null"]},
            },
            "required": ["object", "data", "has_more", "next_cursor"],
        },
    )


ENDPOINT_LIST = list_of("WebhookEndpointList", ENDPOINT)
EVENT_LIST = list_of("WebhookEventList", EVENT)
DELIVERY_LIST = list_of("WebhookDeliveryList", DELIVERY)


def endpoint_object(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict:
    data = {
        "id": endpoint.public_id,
        "object": "webhook_endpoint",
        "name": endpoint.name,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "status": endpoint.status,
        "secret_preview": endpoint.secret_preview,
        "last_success_at": timestamp(endpoint.last_success_at),
        "last_failure_at": timestamp(endpoint.last_failure_at),
        "failure_count": endpoint.failure_count,
        "created_at": timestamp(endpoint.created_at),
        "updated_at": timestamp(endpoint.updated_at),
        "disabled_at": timestamp(endpoint.disabled_at),
        "revoked_at": timestamp(endpoint.revoked_at),
    }
    if with_secret:
        data["signing_secret"] = endpoint.signing_secret
    return data


def event_object(event: WebhookEvent) -> dict:
    return {
        "id": event.public_id,
        "object": "event",
        "type": event.type,
        "api_version": choices.WEBHOOK_API_VERSION,
        "created_at": timestamp(event.created_at),
        "data": event.data,
        "test": event.test,
    }


def delivery_object(delivery: WebhookDelivery) -> dict:
    return {
        "id": delivery.public_id,
        "object": "webhook_delivery",
        "endpoint_id": delivery.endpoint.public_id,
        "event_id": delivery.event.public_id,
        "event_type": delivery.event.type,
        "status": delivery.status,
        "attempt": delivery.attempt,
        "response_status": delivery.response_status,
        "error": delivery.error or None,
        "duration_ms": delivery.duration_ms,
        "next_retry_at": timestamp(delivery.next_retry_at),
        "created_at": timestamp(delivery.created_at),
        "completed_at": timestamp(delivery.completed_at),
    }


def test_generation(request: HttpRequest, task_id: str) -> dict:
    """The `data` of a test event (§9.7): a succeeded generation that never existed."""
    now = timestamp(timezone.now())
    media = request.build_absolute_uri(reverse("sandbox-api:media", args=[task_id + ".png"]))
    return {
        "id": task_id,
        "status": "succeeded",
        "model": TEST_EVENT_MODEL,
        "reserved_credits": 1,
        "final_credits": 1,
        "created_at": now,
        "updated_at": now,
        "result": {"primary_url": media, "urls": [media]},
        "error": None,
    }

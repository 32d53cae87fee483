"""Webhook endpoint management, test events, deliveries and the event list (contract §9.7).

Shapes and codes are the PROPOSED ones of §9.7: create 201 with the signing secret (shown only
here and on rotate-secret), delete 200 with status "revoked", test 202 with the delivery.
"""

from datetime import timedelta

from django.utils import timezone

from rivya_dashboard.sandbox import choices, ids
from rivya_dashboard.sandbox.api import LIST_QUERY, Call, endpoint, paginate
from rivya_dashboard.sandbox.errors import ApiError, not_found, validation_failed
from rivya_dashboard.sandbox.models import WebhookDelivery, WebhookEndpoint, WebhookSettings
from rivya_dashboard.sandbox.webhooks_delivery import (
    emit,
    emit_generation_events,
    stop_pending,
)
from rivya_dashboard.sandbox.webhooks_payloads import (
    CREATE_BODY,
    DELIVERY,
    DELIVERY_LIST,
    ENDPOINT,
    ENDPOINT_LIST,
    ENDPOINT_WITH_SECRET,
    EVENT_LIST,
    ROTATE_BODY,
    UPDATE_BODY,
    delivery_object,
    endpoint_object,
    event_object,
    test_generation,
)
from rivya_dashboard.sandbox.webhooks_targets import TargetRejected, check_target

SCOPE = "webhooks:manage"
TAG = "webhooks"
ENDPOINT_ID = "/webhooks/{endpointId}"
DELIVERY_STATUS_QUERY = {
    "name": "status",
    "in": "query",
    "required": False,
    "description": "Only deliveries in this status.",
    "schema": {"type": "string", "enum": [s.value for s in WebhookDelivery.Status]},
}
EVENT_TYPE_QUERY = {
    "name": "type",
    "in": "query",
    "required": False,
    "description": "Only events of this type.",
    "schema": {"type": "string", "enum": list(choices.WEBHOOK_EVENT_TYPES)},
}


def find_endpoint(call: Call, endpoint_id: str) -> WebhookEndpoint:
    found = call.account.webhook_endpoints.filter(public_id=endpoint_id).first()
    if found is None:
        raise not_found("webhook endpoint", endpoint_id)
    return found


def changeable(webhook: WebhookEndpoint) -> WebhookEndpoint:
    if webhook.status == WebhookEndpoint.Status.REVOKED:
        raise validation_failed(
            f"Webhook endpoint {webhook.public_id!r} is revoked; create a new endpoint instead."
        )
    return webhook


def checked_url(url: str) -> str:
    try:
        # An offline sandbox still takes a name it cannot resolve; its deliveries say why not.
        allow_local = WebhookSettings.load().allow_local_targets
        return check_target(url, allow_local=allow_local, must_resolve=False)
    except TargetRejected as error:
        raise ApiError(400, "webhook_url_rejected", f"url: {error}") from None


def checked_name(name: str) -> str:
    if not name.strip():
        raise validation_failed("name: must not be blank")
    return name.strip()


@endpoint(
    "GET",
    "/webhooks",
    operation_id="listWebhooks",
    summary="List the account's webhook endpoints, newest first",
    scope=SCOPE,
    query=LIST_QUERY,
    response=ENDPOINT_LIST,
    errors=(400,),
    tag=TAG,
)
def list_webhooks(call: Call) -> dict:
    return paginate(call, call.account.webhook_endpoints.all(), endpoint_object)


@endpoint(
    "POST",
    "/webhooks",
    operation_id="createWebhook",
    summary="Create a webhook endpoint; the response is the only one with the signing secret",
    scope=SCOPE,
    body=CREATE_BODY,
    success=201,
    response=ENDPOINT_WITH_SECRET,
    errors=(400, 413),
    tag=TAG,
)
def create_webhook(call: Call) -> dict:
    webhook = WebhookEndpoint.objects.create(
        account=call.account,
        created_by_key=call.key,
        name=checked_name(call.body["name"]),
        url=checked_url(call.body["url"]),
        event_types=list(dict.fromkeys(call.body["event_types"])),
    )
    return endpoint_object(webhook, with_secret=True)


@endpoint(
    "GET",
    ENDPOINT_ID,
    operation_id="getWebhook",
    summary="Fetch one webhook endpoint",
    scope=SCOPE,
    response=ENDPOINT,
    errors=(404,),
    tag=TAG,
)
def get_webhook(call: Call, endpointId: str) -> dict:
    return endpoint_object(find_endpoint(call, endpointId))


@endpoint(
    "PATCH",
    ENDPOINT_ID,
    operation_id="updateWebhook",
    summary="Change name, url, event types, or status (active/disabled)",
    scope=SCOPE,
    body=UPDATE_BODY,
    response=ENDPOINT,
    errors=(400, 404, 413),
    tag=TAG,
)
def update_webhook(call: Call, endpointId: str) -> dict:
    webhook = changeable(find_endpoint(call, endpointId))
    changes = call.body
    if "name" in changes:
        webhook.name = checked_name(changes["name"])
    if "url" in changes:
        webhook.url = checked_url(changes["url"])
    if "event_types" in changes:
        webhook.event_types = list(dict.fromkeys(changes["event_types"]))
    if changes.get("status", webhook.status) != webhook.status:
        set_status(webhook, changes["status"])
    webhook.save()
    return endpoint_object(webhook)


def set_status(webhook: WebhookEndpoint, status: str) -> None:
    webhook.status = status
    if status == WebhookEndpoint.Status.DISABLED:
        webhook.disabled_at = timezone.now()
        stop_pending(webhook, "The endpoint was disabled; delivery stopped.")
    else:
        # A re-enabled endpoint starts a fresh count towards auto-disable.
        webhook.disabled_at = None
        webhook.failed_events_in_a_row = 0


@endpoint(
    "DELETE",
    ENDPOINT_ID,
    operation_id="deleteWebhook",
    summary="Revoke a webhook endpoint; it receives nothing more",
    scope=SCOPE,
    response=ENDPOINT,
    errors=(404,),
    tag=TAG,
)
def delete_webhook(call: Call, endpointId: str) -> dict:
    webhook = find_endpoint(call, endpointId)
    if webhook.status != WebhookEndpoint.Status.REVOKED:
        webhook.status = WebhookEndpoint.Status.REVOKED
        webhook.revoked_at = timezone.now()
        webhook.save()
        stop_pending(webhook, "The endpoint was revoked; delivery stopped.")
    return endpoint_object(webhook)


@endpoint(
    "POST",
    ENDPOINT_ID + "/rotate-secret",
    operation_id="rotateWebhookSecret",
    summary="Replace the signing secret; optionally the old one keeps signing for a while",
    scope=SCOPE,
    body=ROTATE_BODY,
    body_required=False,
    response=ENDPOINT_WITH_SECRET,
    errors=(400, 404, 413),
    tag=TAG,
)
def rotate_webhook_secret(call: Call, endpointId: str) -> dict:
    webhook = changeable(find_endpoint(call, endpointId))
    do_rotate_secret(webhook, (call.body or {}).get("overlap_seconds", 0))
    return endpoint_object(webhook, with_secret=True)


def do_rotate_secret(webhook: WebhookEndpoint, overlap_seconds: int) -> None:
    old_secret = webhook.signing_secret
    webhook.signing_secret = ""  # save() draws a fresh one
    if overlap_seconds:
        webhook.previous_secret = old_secret
        webhook.previous_secret_until = timezone.now() + timedelta(seconds=overlap_seconds)
    else:
        webhook.previous_secret = ""
        webhook.previous_secret_until = None
    webhook.save()


@endpoint(
    "POST",
    ENDPOINT_ID + "/test",
    operation_id="sendTestWebhook",
    summary="Send a safe test event (generation.succeeded with test: true) to this endpoint",
    scope=SCOPE,
    success=202,
    response=DELIVERY,
    errors=(400, 404),
    tag=TAG,
)
def send_test_webhook(call: Call, endpointId: str) -> dict:
    webhook = changeable(find_endpoint(call, endpointId))
    data = test_generation(call.request, ids.public_id("task_test_"))
    _, deliveries = emit(
        call.account, "generation.succeeded", data, test_endpoint=webhook, faults=call.faults
    )
    delivery = deliveries[0]
    delivery.refresh_from_db()
    return delivery_object(delivery)


@endpoint(
    "GET",
    ENDPOINT_ID + "/deliveries",
    operation_id="listWebhookDeliveries",
    summary="Deliveries to this endpoint, newest first",
    scope=SCOPE,
    query=(*LIST_QUERY, DELIVERY_STATUS_QUERY),
    response=DELIVERY_LIST,
    errors=(400, 404),
    tag=TAG,
)
def list_webhook_deliveries(call: Call, endpointId: str) -> dict:
    webhook = find_endpoint(call, endpointId)
    emit_generation_events(call.account)
    deliveries = webhook.deliveries.select_related("endpoint", "event")
    if call.query.get("status"):
        deliveries = deliveries.filter(status=call.query["status"])
    return paginate(call, deliveries, delivery_object)


@endpoint(
    "GET",
    "/webhook-events",
    operation_id="listWebhookEvents",
    summary="Events of the account (generation.succeeded, generation.failed), newest first",
    scope=SCOPE,
    query=(*LIST_QUERY, EVENT_TYPE_QUERY),
    response=EVENT_LIST,
    errors=(400,),
    tag=TAG,
)
def list_webhook_events(call: Call) -> dict:
    emit_generation_events(call.account)
    events = call.account.webhook_events.all()
    if call.query.get("type"):
        events = events.filter(type=call.query["type"])
    return paginate(call, events, event_object)

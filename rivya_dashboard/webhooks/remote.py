"""Remote webhook endpoints at Rivya, managed through a team key (contract §9.7).

Every call checks the member's grant for "manage webhooks", is written to the ledger, and every
write is audited by endpoint id and name; signing secrets go to the screen once (and into a
linked inbox, encrypted), never into the audit trail.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.models import User
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.grants import usable_keys
from rivya_dashboard.vault.models import Action, ApiKey
from rivya_dashboard.webhooks import inboxes
from rivya_dashboard.webhooks.models import Inbox

EVENT_TYPES = ("generation.succeeded", "generation.failed")
SCOPE = "webhooks:manage"


def webhook_keys(user: User) -> list[ApiKey]:
    """Keys the member may manage webhooks with, leaving out keys Rivya refused the scope for."""
    return [
        k for k in usable_keys(user, Action.MANAGE_WEBHOOKS) if k.scope_state(SCOPE) != "denied"
    ]


def call(user: User | None, key: ApiKey, operation: str, fn: Callable[[RivyaClient], Any]) -> Any:
    client = key.client()
    action = Action.MANAGE_WEBHOOKS if user is not None else None
    with ledger.recording(user, key, f"webhooks.{operation}", action=action, client=client):
        return fn(client)


def list_endpoints(user: User, key: ApiKey) -> list[dict]:
    return call(user, key, "list", lambda c: list(c.iterate(c.list_webhooks)))


def get_endpoint(user: User, key: ApiKey, endpoint_id: str) -> dict:
    return call(user, key, "get", lambda c: c.get_webhook(endpoint_id))


def list_deliveries(user: User, key: ApiKey, endpoint_id: str, status: str = "") -> list[dict]:
    def fetch(client: RivyaClient) -> list[dict]:
        page = client.list_webhook_deliveries(endpoint_id, limit=100, status=status or None)
        return page.get("data") or []

    return call(user, key, "deliveries", fetch)


def list_events(user: User, key: ApiKey, event_type: str = "") -> list[dict]:
    def fetch(client: RivyaClient) -> list[dict]:
        page = client.list_webhook_events(limit=100, event_type=event_type or None)
        return page.get("data") or []

    return call(user, key, "events", fetch)


def endpoint_detail(endpoint: dict) -> dict:
    return {
        "endpoint_id": endpoint.get("id"),
        "name": endpoint.get("name"),
        "url": endpoint.get("url"),
        "event_types": endpoint.get("event_types"),
        "status": endpoint.get("status"),
    }


def do_create_endpoint(
    user: User,
    key: ApiKey,
    *,
    name: str,
    url: str,
    event_types: list[str],
    inbox: Inbox | None = None,
    request: HttpRequest | None = None,
) -> dict:
    endpoint = call(user, key, "create", lambda c: c.create_webhook(name, url, event_types))
    record(user, "webhook.created", name, request=request, **endpoint_detail(endpoint))
    if inbox is not None and endpoint.get("signing_secret"):
        inboxes.do_link_endpoint(user, inbox, key, endpoint, request=request)
    return endpoint


def do_update_endpoint(
    user: User, key: ApiKey, endpoint_id: str, *, request: HttpRequest | None = None, **fields: Any
) -> dict:
    endpoint = call(user, key, "update", lambda c: c.update_webhook(endpoint_id, **fields))
    action = "webhook.edited"
    if set(fields) == {"status"}:
        action = "webhook.enabled" if fields["status"] == "active" else "webhook.disabled"
    detail = endpoint_detail(endpoint) | {"changed": sorted(fields)}
    record(user, action, endpoint.get("name") or endpoint_id, request=request, **detail)
    return endpoint


def do_rotate_secret(
    user: User, key: ApiKey, endpoint_id: str, *, request: HttpRequest | None = None
) -> tuple[dict, list[Inbox]]:
    """Rotate at Rivya; inboxes linked to the endpoint get the new secret as current."""
    endpoint = call(user, key, "rotate_secret", lambda c: c.rotate_webhook_secret(endpoint_id))
    name = endpoint.get("name") or endpoint_id
    record(user, "webhook.secret_rotated", name, request=request, endpoint_id=endpoint_id)
    linked = list(Inbox.objects.filter(key=key, endpoint_id=endpoint_id))
    secret = endpoint.get("signing_secret") or ""
    for inbox in linked if secret else []:
        inboxes.do_add_secret(
            user, inbox, secret, request=request, why=_("rotated at %(name)s") % {"name": name}
        )
    return endpoint, linked


def do_delete_endpoint(
    user: User, key: ApiKey, endpoint_id: str, *, request: HttpRequest | None = None
) -> dict:
    endpoint = call(user, key, "delete", lambda c: c.delete_webhook(endpoint_id))
    record(
        user,
        "webhook.deleted",
        endpoint.get("name") or endpoint_id,
        request=request,
        **endpoint_detail(endpoint),
    )
    return endpoint


def do_send_test(
    user: User, key: ApiKey, endpoint_id: str, *, request: HttpRequest | None = None
) -> dict:
    delivery = call(user, key, "test", lambda c: c.send_test_webhook(endpoint_id))
    record(
        user,
        "webhook.test_sent",
        endpoint_id,
        request=request,
        endpoint_id=endpoint_id,
        delivery_id=delivery.get("id"),
    )
    return delivery

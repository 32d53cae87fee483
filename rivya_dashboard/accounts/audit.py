"""Write audit rows. Callers pass names and ids, never secret values."""

import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from rivya_dashboard.accounts.models import AuditEvent, User


def client_ip(request: HttpRequest) -> str | None:
    """The address the request came from; behind proxies, the one the outermost proxy saw.

    Each trusted proxy appends the address it received the request from, so with N proxies the
    client is the Nth X-Forwarded-For entry from the right; anything further left was sent by the
    client and could be forged. A header with fewer entries (or a garbled one) did not come
    through every proxy, so the direct peer is recorded instead.
    """
    peer = request.META.get("REMOTE_ADDR") or None
    if not settings.RIVYA_BEHIND_PROXY:
        return peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    if len(forwarded) < settings.RIVYA_PROXY_COUNT:
        return peer
    candidate = forwarded[-settings.RIVYA_PROXY_COUNT].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


def record(
    actor: User | None,
    action: str,
    target: str = "",
    *,
    request: HttpRequest | None = None,
    **detail: Any,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor else "system",
        action=action,
        target=target[:200],
        detail=detail,
        ip=client_ip(request) if request else None,
    )

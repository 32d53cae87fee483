"""Write audit rows. Callers pass names and ids, never secret values."""

from typing import Any

from django.http import HttpRequest

from rivya_dashboard.accounts.models import AuditEvent, User


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


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

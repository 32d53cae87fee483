"""Failure alerts: an endpoint that fails often, or that Rivya disabled, gets a banner for admins.

Checks run in the background at most once a minute, started by an admin's page view, so no page
waits for the API; the banner shows what the last check found until someone acknowledges it.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.crypto import DecryptionError
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks.models import FailureAlert

logger = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 60
CHECK_LOCK = "webhooks:endpoint-check"
SCOPE = "webhooks:manage"


def failure_banner(request: HttpRequest) -> dict:
    """Read only when a page shows the banner, not for partials."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_role(Role.ADMIN):
        return {}
    return {"webhook_alerts": SimpleLazyObject(open_alerts)}


def open_alerts() -> list[FailureAlert]:
    schedule_check()
    return list(FailureAlert.objects.filter(acknowledged_at__isnull=True)[:5])


def schedule_check() -> None:
    if not cache.add(CHECK_LOCK, 1, CHECK_EVERY_SECONDS):
        return
    from rivya_dashboard.webhooks.tasks import check_endpoints

    if checked_keys():
        check_endpoints.enqueue()


def checked_keys() -> list[ApiKey]:
    active = ApiKey.objects.filter(status="active")
    return [key for key in active if key.scope_state(SCOPE) != "denied"]


def recent_failures(deliveries: list[dict], since: datetime) -> int:
    count = 0
    for delivery in deliveries:
        when = parse_datetime(str(delivery.get("completed_at") or delivery.get("created_at") or ""))
        failed = delivery.get("status") == "failed" or bool(delivery.get("error"))
        if failed and when is not None and when >= since:
            count += 1
    return count


def failure_reason(endpoint: dict, deliveries: list[dict], now: datetime) -> str:
    if endpoint.get("status") == "disabled" and endpoint.get("failure_count"):
        return _("Rivya disabled it after repeated failed deliveries.")
    minutes = settings.RIVYA_WEBHOOK_ALERT_MINUTES
    failures = recent_failures(deliveries, now - timedelta(minutes=minutes))
    if failures >= settings.RIVYA_WEBHOOK_ALERT_FAILURES:
        return ngettext(
            "%(count)s failed delivery in the last %(minutes)s minutes.",
            "%(count)s failed deliveries in the last %(minutes)s minutes.",
            failures,
        ) % {
            "count": failures,
            "minutes": minutes,
        }
    return ""


def check_key(key: ApiKey, now: datetime | None = None) -> list[FailureAlert]:
    from rivya_dashboard.webhooks.remote import call

    now = now or timezone.now()
    raised = []
    endpoints = call(None, key, "list", lambda c: list(c.iterate(c.list_webhooks)))
    for endpoint in endpoints:
        if endpoint.get("status") == "revoked":
            continue
        deliveries = call(
            None,
            key,
            "deliveries",
            lambda c, e=endpoint: c.list_webhook_deliveries(e["id"], limit=100).get("data") or [],
        )
        reason = failure_reason(endpoint, deliveries, now)
        alert = raise_alert(key, endpoint, reason) if reason else None
        if alert is not None:
            raised.append(alert)
    return raised


def raise_alert(key: ApiKey, endpoint: dict, reason: str) -> FailureAlert | None:
    try:
        with transaction.atomic():
            return FailureAlert.objects.create(
                key=key,
                endpoint_id=str(endpoint["id"])[:100],
                endpoint_name=str(endpoint.get("name") or endpoint["id"])[:100],
                reason=reason[:300],
            )
    except IntegrityError:
        return None  # an open alert for this endpoint is already showing


def check_all() -> int:
    raised = 0
    for key in checked_keys():
        try:
            raised += len(check_key(key))
        except (RivyaError, DecryptionError) as error:
            logger.warning("webhook endpoint check for key %s failed: %s", key.pk, error)
    return raised


def do_acknowledge(user: User, alert: FailureAlert, *, request: HttpRequest | None = None) -> None:
    FailureAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=user
    )
    record(
        user,
        "webhook.alert_acknowledged",
        alert.endpoint_name,
        request=request,
        endpoint_id=alert.endpoint_id,
        reason=alert.reason,
    )

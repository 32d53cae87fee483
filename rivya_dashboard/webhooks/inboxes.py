"""Inboxes: create, keep their signing secrets (encrypted), settings, and search their requests."""

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from rivya_dashboard import outbound
from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.models import User
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks import doctor, inbox_limits
from rivya_dashboard.webhooks.models import Inbox, InboxRequest, SecretState
from rivya_dashboard.webhooks.receiver import forget_inbox

# Secrets rotated out are kept (for the doctor to recognise) up to this many.
RETIRED_KEPT = 5


def receiver_url(inbox: Inbox, request: HttpRequest | None) -> str:
    path = reverse("inbox-receive", args=[inbox.token])
    if settings.RIVYA_PUBLIC_URL:
        return settings.RIVYA_PUBLIC_URL + path
    return request.build_absolute_uri(path) if request else path


def delivery_url(inbox: Inbox, key: ApiKey, request: HttpRequest | None) -> str:
    """The receiver URL an endpoint of `key` delivers to: this console's own sandbox reaches
    the inbox at the console's own address, never at one taken from a request."""
    origin = outbound.own_origin()
    if key.is_own_sandbox and origin:
        return origin + reverse("inbox-receive", args=[inbox.token])
    return receiver_url(inbox, request)


def preview(secret: str) -> str:
    return f"{secret[:8]}…{secret[-4:]}" if len(secret) > 16 else f"{secret[:4]}…"


@transaction.atomic
def do_create_inbox(
    user: User, *, name: str, key: ApiKey | None, request: HttpRequest | None = None
) -> Inbox:
    inbox = Inbox.objects.create(name=name, key=key, created_by=user)
    record(user, "inbox.created", name, request=request, inbox_id=inbox.pk, key_id=inbox.key_id)
    return inbox


@transaction.atomic
def do_add_secret(
    user: User, inbox: Inbox, secret: str, *, request: HttpRequest | None = None, why: str = ""
) -> None:
    """The new secret becomes current; the current one stays accepted as previous (overlap)
    and an older previous one is rotated out."""
    inbox = Inbox.objects.select_for_update().get(pk=inbox.pk)
    values, meta = inbox.reveal_secrets(), list(inbox.secret_meta)
    for entry in meta:
        entry["state"] = {
            SecretState.CURRENT: SecretState.PREVIOUS,
            SecretState.PREVIOUS: SecretState.RETIRED,
        }.get(entry["state"], entry["state"])
    entry = {
        "preview": preview(secret),
        "state": SecretState.CURRENT,
        "added_at": timezone.now().isoformat(),
    }
    values, meta = [secret, *values], [entry, *meta]
    values, meta = trim_retired(values, meta)
    inbox.store_secrets(values, meta)
    inbox.save(update_fields=["secrets_blob", "secret_meta"])
    forget_inbox(inbox.token)
    record(
        user, "inbox.secret_added", inbox.name, request=request, preview=entry["preview"], why=why
    )


def trim_retired(values: list[str], meta: list[dict]) -> tuple[list[str], list[dict]]:
    kept_values, kept_meta, retired = [], [], 0
    for value, entry in zip(values, meta, strict=True):
        if entry["state"] == SecretState.RETIRED:
            retired += 1
            if retired > RETIRED_KEPT:
                continue
        kept_values.append(value)
        kept_meta.append(entry)
    return kept_values, kept_meta


@transaction.atomic
def do_end_overlap(user: User, inbox: Inbox, *, request: HttpRequest | None = None) -> int:
    """Stop accepting previous secrets; they stay known to the doctor as rotated out."""
    inbox = Inbox.objects.select_for_update().get(pk=inbox.pk)
    values, meta = inbox.reveal_secrets(), list(inbox.secret_meta)
    ended = [m for m in meta if m["state"] == SecretState.PREVIOUS]
    for entry in ended:
        entry["state"] = SecretState.RETIRED
    inbox.store_secrets(*trim_retired(values, meta))
    inbox.save(update_fields=["secrets_blob", "secret_meta"])
    forget_inbox(inbox.token)
    record(
        user,
        "inbox.overlap_ended",
        inbox.name,
        request=request,
        previews=[m["preview"] for m in ended],
    )
    return len(ended)


@transaction.atomic
def do_forget_secrets(user: User, inbox: Inbox, *, request: HttpRequest | None = None) -> None:
    inbox.store_secrets([], [])
    inbox.save(update_fields=["secrets_blob", "secret_meta"])
    forget_inbox(inbox.token)
    record(user, "inbox.secrets_removed", inbox.name, request=request)


def do_link_endpoint(
    user: User, inbox: Inbox, key: ApiKey, endpoint: dict, *, request: HttpRequest | None = None
) -> None:
    Inbox.objects.filter(pk=inbox.pk).update(key=key, endpoint_id=endpoint["id"])
    forget_inbox(inbox.token)
    inbox.key, inbox.endpoint_id = key, endpoint["id"]
    do_add_secret(
        user, inbox, endpoint["signing_secret"], request=request, why=f"endpoint {endpoint['id']}"
    )


@transaction.atomic
def do_update_settings(
    user: User, inbox: Inbox, changes: dict, *, request: HttpRequest | None = None
) -> None:
    from rivya_dashboard.webhooks.forwarding import may_reach_local

    changed = sorted(name for name, value in changes.items() if getattr(inbox, name) != value)
    for name, value in changes.items():
        setattr(inbox, name, value)
    if "forward_url" in changed or "forward_enabled" in changed:
        inbox.forward_allows_local = may_reach_local(user)
    inbox.save()
    forget_inbox(inbox.token)
    # A lowered limit applies now, not at the next delivery.
    inbox_limits.do_enforce(inbox)
    detail = {name: changes[name] for name in changed if name != "key"}
    if "key" in changed:
        detail["key_id"] = inbox.key_id
    record(user, "inbox.settings_changed", inbox.name, request=request, **detail)


@transaction.atomic
def do_delete_inbox(user: User, inbox: Inbox, *, request: HttpRequest | None = None) -> None:
    count = inbox.requests.count()
    record(user, "inbox.deleted", inbox.name, request=request, requests=count)
    inbox.delete()
    forget_inbox(inbox.token)


def candidates(inbox: Inbox) -> list[doctor.Candidate]:
    labels = {
        SecretState.CURRENT: _("current secret"),
        SecretState.PREVIOUS: _("previous secret"),
        SecretState.RETIRED: _("rotated-out secret"),
    }
    return [
        doctor.Candidate(value, meta["state"], f"{labels[meta['state']]} {meta['preview']}")
        for value, meta in zip(inbox.reveal_secrets(), inbox.secret_meta, strict=True)
    ]


def reference_body(row: InboxRequest | None, inbox: Inbox, event_id: str) -> bytes | None:
    """The acknowledged copy of the same event, to find where a changed body differs."""
    if not event_id:
        return None
    copies = InboxRequest.objects.filter(inbox=inbox, acked_event_id=event_id)
    if row is not None:
        copies = copies.exclude(pk=row.pk)
    found = copies.only("body").first()
    return found.body_bytes if found else None


def filtered_requests(inbox: Inbox, data: dict) -> QuerySet[InboxRequest]:
    rows = inbox.requests.all()
    if data.get("verdict"):
        rows = rows.filter(verdict=data["verdict"])
    if data.get("event_type"):
        rows = rows.filter(event_type=data["event_type"])
    if data.get("q"):
        words = data["q"]
        rows = rows.filter(
            Q(body_text__icontains=words)
            | Q(event_id__icontains=words)
            | Q(headers__icontains=words)
        )
    return rows

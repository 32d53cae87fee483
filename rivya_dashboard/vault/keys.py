"""Adding, testing, replacing, disabling and deleting team keys; each write is audited.

A key is tested against the API before it is stored: `GET /credits` must answer, and cheap
reads tell which scopes the key holds (a 403 `api_scope_denied` means the scope is missing, a
404 for a made-up id means the scope is there). Create scopes cannot be probed without
creating something, so they stay "unchecked" until first use.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from rivya_dashboard import outbound
from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.models import User
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.rivya.errors import AuthError, NotFound, RivyaError, Unavailable
from rivya_dashboard.vault import ledger, transport
from rivya_dashboard.vault.models import (
    KEY_PREFIX,
    PRODUCTION_BASE_URL,
    ApiKey,
    Environment,
    KeyStatus,
    LedgerEntry,
)

logger = logging.getLogger(__name__)

# Sent once a key is stored (the Keys form, "Use the sandbox", manage.py add_key), with key= and
# actor=: the console reads the catalogue and the balance through it at once (console/first_reads).
key_added = Signal()

KEY_FORMAT = re.compile(rf"^{KEY_PREFIX}[A-Za-z0-9_-]{{8,200}}$")
SCOPE_DENIED = "api_scope_denied"

# Scope -> (a cheap read needing it, whether a 404 proves the scope: true for made-up ids).
SCOPE_PROBES: dict[str, tuple[Callable[[RivyaClient], object], bool]] = {
    "credits:read": (lambda client: client.get_credits(), False),
    "generations:read": (lambda client: client.get_generation("gen_console_scope_probe"), True),
    "files:read": (lambda client: client.get_file("file_console_scope_probe"), True),
    "webhooks:manage": (lambda client: client.list_webhooks(limit=1), False),
    "chat:read": (lambda client: client.list_chat_sessions(limit=1), False),
}
UNPROBED_SCOPES = ("generations:create", "files:create", "chat:create")


class KeyRejected(Exception):
    """The key cannot be stored or used; the message says what to do."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


def rejection_text(exc: KeyRejected) -> str:
    if exc.request_id:
        return _("%(message)s (Rivya request id: %(id)s)") % {
            "message": exc.message,
            "id": exc.request_id,
        }
    return exc.message


@dataclass
class ProbeResult:
    scopes: dict[str, str] = field(default_factory=dict)
    entry_ids: list[int] = field(default_factory=list)


def check_key_format(raw: str) -> str:
    raw = raw.strip()
    if not KEY_FORMAT.match(raw):
        raise KeyRejected(
            _(
                "That does not look like a Rivya API key: it starts with %(prefix)s, then letters "
                "and digits, no spaces. Copy it again from Settings → API Keys."
            )
            % {"prefix": KEY_PREFIX}
        )
    return raw


def own_sandbox_url() -> str:
    """Where this console's own sandbox is, from settings only: never from a request's Host."""
    if not settings.RIVYA_SANDBOX:
        raise KeyRejected(_("The built-in sandbox is switched off (RIVYA_SANDBOX=0)."))
    url = outbound.own_sandbox_url()
    if not url:
        raise KeyRejected(
            _(
                "The console does not know its own address: start it with manage.py serve, or "
                "set RIVYA_PUBLIC_URL."
            )
        )
    return url


def resolve_base_url(environment: str, custom_url: str) -> str:
    if environment == Environment.SANDBOX:
        return own_sandbox_url()
    if environment == Environment.CUSTOM:
        if outbound.is_own_sandbox_api(custom_url):
            # This console's own sandbox: reached on the sandbox's session, which goes nowhere
            # else, so it needs no loopback exception.
            return custom_url.rstrip("/")
        try:
            return outbound.check_url(
                custom_url,
                advice=_("Use the API's public base URL, ending in /api/v1."),
            )
        except outbound.UnsafeURL as exc:
            raise KeyRejected(str(exc)) from None
    return PRODUCTION_BASE_URL


def probe_scope(client: RivyaClient, scope: str) -> tuple[str, RivyaError | None]:
    """The scope's state and the error that told it; raises when the key itself is refused."""
    call, missing_proves_scope = SCOPE_PROBES[scope]
    try:
        call(client)
    except NotFound as exc:
        return ("ok" if missing_proves_scope else "unchecked"), exc
    except AuthError as exc:
        if exc.code == SCOPE_DENIED:
            return "denied", exc
        raise
    except RivyaError as exc:
        if scope == "credits:read":
            raise
        return "unchecked", exc
    return "ok", None


def refusal_message(key: ApiKey, exc: RivyaError) -> str:
    if isinstance(exc, Unavailable) and exc.status is None:
        # The transport's own wording names pools and sockets; the member needs the address.
        return _(
            "Could not reach %(url)s. Check the address and the server's network, then try again."
        ) % {"url": key.base_url}
    if isinstance(exc, AuthError):
        return _("Rivya did not accept this key: %(message)s") % {"message": exc.message}
    return _("Rivya could not test this key: %(message)s") % {"message": exc.message}


def probe_key(key: ApiKey, client: RivyaClient, actor: User | None) -> ProbeResult:
    """Test the key (saved or not) through its client. Every call is a ledger row."""
    result = ProbeResult()
    for scope in SCOPE_PROBES:
        try:
            with ledger.recording(actor, key, f"keys.test.{scope}", client=client) as entry:
                result.entry_ids.append(entry.pk)
                state, answer = probe_scope(client, scope)
                if answer is not None:
                    ledger.settle_failure(entry, answer)
        except RivyaError as exc:
            raise KeyRejected(refusal_message(key, exc), request_id=exc.request_id) from None
        result.scopes[scope] = state
    result.scopes.update({scope: "unchecked" for scope in UNPROBED_SCOPES})
    return result


def attach_entries(key: ApiKey, probe: ProbeResult) -> None:
    LedgerEntry.objects.filter(pk__in=probe.entry_ids, key__isnull=True).update(key=key)


def record_refusal(
    actor: User | None,
    action: str,
    label: str,
    exc: KeyRejected,
    request: HttpRequest | None,
    **detail: object,
) -> None:
    """A refused key is audited too, with the Rivya request id that support asks for."""
    record(actor, action, label, request=request, request_id=exc.request_id or "", **detail)


def do_add_key(
    actor: User | None,
    *,
    label: str,
    environment: str,
    raw: str,
    base_url: str = "",
    request: HttpRequest | None = None,
) -> ApiKey:
    raw = check_key_format(raw)
    key = ApiKey(
        label=label,
        environment=environment,
        base_url=resolve_base_url(environment, base_url),
        added_by=actor,
    )
    try:
        probe = probe_key(key, transport.build_client(key, raw), actor)
    except KeyRejected as exc:
        record_refusal(actor, "key.add_refused", label, exc, request, environment=environment)
        raise
    with transaction.atomic():
        key.scopes, key.tested_at = probe.scopes, timezone.now()
        key.save()
        key.store_secret(raw)
        key.save(update_fields=["secret", "last4"])
        attach_entries(key, probe)
        record(
            actor,
            "key.added",
            key.label,
            request=request,
            environment=environment,
            base_url=key.base_url,
            key_id=key.pk,
        )
    announce_key_added(key, actor)
    return key


def announce_key_added(key: ApiKey, actor: User | None) -> None:
    """Tell the apps that read through keys (the console reads the catalogue and the balance);
    a receiver's failure is logged, never undoes the stored key."""
    for receiver, outcome in key_added.send_robust(sender=ApiKey, key=key, actor=actor):
        if isinstance(outcome, Exception):
            logger.error(
                "After adding key %s, %s failed: %r", key.pk, receiver.__qualname__, outcome
            )


def do_test_key(
    actor: User,
    key: ApiKey,
    *,
    request: HttpRequest | None = None,
) -> ProbeResult:
    """Re-test a stored key and refresh its scopes; DecryptionError if it cannot be read."""
    client = key.client()
    try:
        probe = probe_key(key, client, actor)
    except KeyRejected as exc:
        record_refusal(actor, "key.test_failed", key.label, exc, request, key_id=key.pk)
        raise
    key.scopes, key.tested_at = probe.scopes, timezone.now()
    key.save(update_fields=["scopes", "tested_at"])
    record(
        actor,
        "key.tested",
        key.label,
        request=request,
        key_id=key.pk,
        denied=key.denied_scopes(),
    )
    return probe


def do_replace_key(
    actor: User,
    key: ApiKey,
    raw: str,
    *,
    request: HttpRequest | None = None,
) -> ProbeResult:
    """Store a new value for the key (after a rotation at Rivya); grants and ledger stay."""
    raw = check_key_format(raw)
    try:
        probe = probe_key(key, transport.build_client(key, raw), actor)
    except KeyRejected as exc:
        record_refusal(actor, "key.replace_refused", key.label, exc, request, key_id=key.pk)
        raise
    with transaction.atomic():
        key.store_secret(raw)
        key.scopes, key.tested_at, key.replaced_at = probe.scopes, timezone.now(), timezone.now()
        key.save(update_fields=["secret", "last4", "scopes", "tested_at", "replaced_at"])
        record(actor, "key.replaced", key.label, request=request, key_id=key.pk)
    return probe


@transaction.atomic
def do_set_status(actor: User, key: ApiKey, status: str, *, request: HttpRequest) -> None:
    if key.status == status:
        return
    key.status = status
    key.save(update_fields=["status"])
    action = "key.enabled" if status == KeyStatus.ACTIVE else "key.disabled"
    record(actor, action, key.label, request=request, key_id=key.pk)


@transaction.atomic
def do_delete_key(actor: User, key: ApiKey, *, request: HttpRequest) -> None:
    """Ledger rows keep the label (their key link becomes empty); grants go with the key."""
    label, pk, grants = key.label, key.pk, key.grants.count()
    key.delete()
    record(actor, "key.deleted", label, request=request, key_id=pk, grants_removed=grants)


def sandbox_label() -> str:
    label, number = "Sandbox", 1
    while ApiKey.objects.filter(label=label).exists():
        number += 1
        label = f"Sandbox {number}"
    return label


def do_add_sandbox_key(actor: User, *, request: HttpRequest | None) -> ApiKey:
    """Mint a key from the sandbox's control API over HTTP, as any API client would (the vault
    imports no sandbox code), then test and store it like a pasted key."""
    own_sandbox_url()  # says why not when the sandbox is off or the console has no address
    try:
        minted = transport.sandbox_control_client().create_sandbox_key(name="Console")
    except RivyaError as exc:
        raise KeyRejected(
            _("The sandbox could not make a key: %(message)s") % {"message": exc.message},
            request_id=exc.request_id,
        ) from None
    raw = minted.get("key") if isinstance(minted, dict) else None
    if not isinstance(raw, str):
        raise KeyRejected(_("The sandbox answered without a key; try again."))
    return do_add_key(
        actor,
        label=sandbox_label(),
        environment=Environment.SANDBOX,
        raw=raw,
        request=request,
    )

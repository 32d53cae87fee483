"""Team API keys (stored encrypted), the grants that share them, and the ledger of every call."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rivya_dashboard import outbound
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.vault import crypto, transport

KEY_PREFIX = "rvya_sk_"
PRODUCTION_BASE_URL = "https://rivya.ai/api/v1"


class Environment(models.TextChoices):
    PRODUCTION = "production", _("Production (rivya.ai)")
    SANDBOX = transport.SANDBOX, _("Built-in sandbox")
    CUSTOM = "custom", _("Custom base URL")


class KeyStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    DISABLED = "disabled", _("Disabled")


class Action(models.TextChoices):
    BROWSE = "browse", _("Browse models and credits")
    GENERATE = "generate", _("Generate")
    UPLOAD = "upload", _("Upload files")
    CHAT = "chat", _("Chat")
    READ_HISTORY = "read_history", _("Read history")
    MANAGE_WEBHOOKS = "manage_webhooks", _("Manage webhooks")


# The only actions a viewer's grant may hold: they read, never call what spends or changes.
READ_ONLY_ACTIONS: tuple[str, ...] = (Action.BROWSE, Action.READ_HISTORY)


# The API scopes each console action needs (contract §2.3).
ACTION_SCOPES: dict[str, tuple[str, ...]] = {
    Action.BROWSE: ("credits:read",),
    Action.GENERATE: ("generations:create", "generations:read"),
    Action.UPLOAD: ("files:create", "files:read"),
    Action.CHAT: ("chat:create", "chat:read"),
    Action.READ_HISTORY: ("generations:read",),
    Action.MANAGE_WEBHOOKS: ("webhooks:manage",),
}


class ApiKey(models.Model):
    """One Rivya API key of the team. The raw value exists only inside `client()`."""

    label = models.CharField(_("label"), max_length=100, unique=True)
    environment = models.CharField(
        _("environment"), max_length=16, choices=Environment.choices, default=Environment.PRODUCTION
    )
    base_url = models.CharField(_("base URL"), max_length=300)
    secret = crypto.EncryptedTextField(blank=True)
    last4 = models.CharField(max_length=4)
    # Scope name -> "ok" | "denied" | "unchecked", from the last test against the API.
    scopes = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=KeyStatus.choices, default=KeyStatus.ACTIVE)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)
    replaced_at = models.DateTimeField(null=True, blank=True)
    tested_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label

    @property
    def display(self) -> str:
        return f"{KEY_PREFIX}…{self.last4}"

    @property
    def is_own_sandbox(self) -> bool:
        """A key for this console's own sandbox, however it was added (the setup page's button,
        `add_key --sandbox`, or a custom base URL that is the sandbox's)."""
        return self.environment == Environment.SANDBOX or outbound.is_own_sandbox_api(self.base_url)

    @property
    def is_active(self) -> bool:
        return self.status == KeyStatus.ACTIVE

    def store_secret(self, raw: str) -> None:
        """Encrypt raw into this saved row; the binding needs the primary key."""
        self.secret = crypto.encrypt(raw, row=crypto.binding(self, "secret"))
        self.last4 = raw[-4:]

    def reveal(self) -> str:
        return crypto.decrypt(self.secret, row=crypto.binding(self, "secret"))

    def client(self, session: outbound.Session | None = None) -> RivyaClient:
        """A RivyaClient for this key, the only way its value leaves the database decrypted.

        Raises DecryptionError when the stored value cannot be read. Tests pass `session` to
        route the calls in-process.
        """
        return transport.build_client(self, self.reveal(), session=session)

    def scope_state(self, scope: str) -> str:
        return self.scopes.get(scope, "unchecked")

    def denied_scopes(self) -> list[str]:
        return sorted(scope for scope, state in self.scopes.items() if state == "denied")

    def denied_actions(self) -> set[str]:
        return {
            action
            for action, needed in ACTION_SCOPES.items()
            if any(self.scope_state(scope) == "denied" for scope in needed)
        }


class KeyGrant(models.Model):
    """Lets one member use one key for some actions, within optional credit caps."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="key_grants"
    )
    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="grants")
    actions = models.JSONField(default=list)
    daily_cap = models.PositiveIntegerField(null=True, blank=True)
    monthly_cap = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key__label", "member__username"]
        constraints = [
            models.UniqueConstraint(fields=["member", "key"], name="one_grant_per_member_and_key")
        ]

    def __str__(self) -> str:
        return f"{self.member} on {self.key}"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def action_labels(self) -> list[str]:
        labels = dict(Action.choices)
        return [str(labels[action]) for action in self.actions if action in labels]


class LedgerEntry(models.Model):
    """One API call made through the console, written before the call and settled after it."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    member_name = models.CharField(max_length=150, blank=True)
    key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="ledger_entries"
    )
    key_label = models.CharField(max_length=100, blank=True)
    operation = models.CharField(max_length=64, db_index=True)
    model = models.CharField(max_length=128, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    credits_reserved = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    credits_final = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["member", "key", "at"], name="ledger_member_key_at"),
            # Covers the usage report's grouped sums over a date range, so they are answered
            # from the index alone instead of from every row in the range.
            models.Index(
                fields=[
                    "at",
                    "member_name",
                    "key_label",
                    "model",
                    "operation",
                    "http_status",
                    "credits_final",
                    "credits_reserved",
                ],
                name="ledger_usage",
            ),
        ]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.member_name} {self.operation}"

    @property
    def succeeded(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300

    @property
    def credits(self) -> Decimal | None:
        return self.credits_final if self.credits_final is not None else self.credits_reserved

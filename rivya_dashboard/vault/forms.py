"""Forms of the Keys section: add and replace a key, grants, and the ledger filters."""

from collections.abc import Iterator
from datetime import datetime

from django import forms
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.date_range import DateRangeForm
from rivya_dashboard.vault.models import (
    READ_ONLY_ACTIONS,
    Action,
    ApiKey,
    Environment,
    KeyGrant,
    KeyStatus,
    LedgerEntry,
)


class SecretInput(forms.PasswordInput):
    """Never renders the value back: a re-shown form must not carry the key into the page."""

    def __init__(self) -> None:
        # dir: a key reads left to right even on a right-to-left page.
        attrs = {"autocomplete": "off", "spellcheck": "false", "dir": "ltr"}
        super().__init__(render_value=False, attrs=attrs)


def environment_choices() -> list[tuple[str, str]]:
    if settings.RIVYA_SANDBOX:
        return list(Environment.choices)
    return [c for c in Environment.choices if c[0] != Environment.SANDBOX]


class KeyAddForm(forms.Form):
    label = forms.CharField(
        label=_("Label"),
        max_length=100,
        help_text=_("A name the team recognises, e.g. “Production - marketing”."),
    )
    environment = forms.ChoiceField(label=_("Environment"), choices=Environment.choices)
    base_url = forms.CharField(
        label=_("Custom base URL"),
        widget=forms.TextInput({"dir": "ltr"}),
        required=False,
        max_length=300,
        help_text=_("Only for a custom environment: the API root including /api/v1."),
    )
    secret = forms.CharField(label=_("API key"), widget=SecretInput(), max_length=300)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["environment"].choices = environment_choices()

    def clean_label(self) -> str:
        label = self.cleaned_data["label"].strip()
        if ApiKey.objects.filter(label__iexact=label).exists():
            raise forms.ValidationError(_("Another key has this label; choose another."))
        return label

    def clean(self) -> dict:
        data = super().clean()
        if data.get("environment") == Environment.CUSTOM and not data.get("base_url"):
            self.add_error("base_url", _("Enter the API root URL for a custom environment."))
        return data


class KeyReplaceForm(forms.Form):
    secret = forms.CharField(label=_("New API key"), widget=SecretInput(), max_length=300)


class KeyDeleteForm(forms.Form):
    confirm = forms.CharField(label=_("Type the key's label to confirm"), max_length=100)

    def __init__(self, *args, key: ApiKey, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.key = key

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"].strip()
        if typed != self.key.label:
            raise forms.ValidationError(_("Type the label exactly as shown to delete the key."))
        return typed


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=KeyStatus.choices)


def cap_field(label: str, help_text: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=1,
        help_text=help_text,
        error_messages={"min_value": _("A cap is at least 1 credit; leave it empty for none.")},
    )


def member_label(member: User) -> str:
    return f"{member.get_username()} ({member.get_role_display()})"


class GrantForm(forms.ModelForm):
    actions = forms.MultipleChoiceField(
        label=_("Allowed actions"),
        choices=Action.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    daily_cap = cap_field(_("Credit cap per day"), _("Leave empty for no daily cap."))
    monthly_cap = cap_field(_("Credit cap per month"), _("Leave empty for no monthly cap."))
    expires_at = forms.DateTimeField(
        label=_("Expires (UTC)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    class Meta:
        model = KeyGrant
        fields = ["member", "actions", "daily_cap", "monthly_cap", "expires_at"]
        labels = {"member": _("Member")}

    def __init__(self, *args, key: ApiKey, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.key = key
        if self.instance.pk:
            del self.fields["member"]
        else:
            # Owners and admins use every key already; viewers may hold read-only actions.
            taken = key.grants.values("member")
            self.fields["member"].queryset = (
                User.objects.filter(role__in=[Role.OPERATOR, Role.VIEWER], is_active=True)
                .exclude(pk__in=taken)
                .order_by("username")
            )
            self.fields["member"].label_from_instance = member_label

    def clean_member(self) -> User:
        member = self.cleaned_data["member"]
        if not member.is_active:
            raise forms.ValidationError(_("This member is deactivated; reactivate them first."))
        return member

    def clean_actions(self) -> list[str]:
        actions = self.cleaned_data["actions"]
        denied = self.key.denied_actions() & set(actions)
        if denied:
            labels = ", ".join(str(Action(a).label) for a in sorted(denied))
            raise forms.ValidationError(
                _("The key lacks the scopes for: %(actions)s. Untick them or use another key.")
                % {"actions": labels}
            )
        return [a for a in Action.values if a in actions]

    def clean(self) -> dict:
        data = super().clean()
        member = self.instance.member if self.instance.pk else data.get("member")
        beyond = set(data.get("actions") or []) - set(READ_ONLY_ACTIONS)
        if member is not None and member.role == Role.VIEWER and beyond:
            allowed = ", ".join(str(Action(a).label) for a in READ_ONLY_ACTIONS)
            self.add_error(
                "actions",
                _(
                    "%(name)s is a viewer: a viewer's grant holds read-only actions only "
                    "(%(allowed)s). Untick the others, or make them an operator on the Team page."
                )
                % {"name": member.get_username(), "allowed": allowed},
            )
        return data

    def clean_expires_at(self) -> datetime | None:
        expires = self.cleaned_data.get("expires_at")
        if expires is not None and expires <= timezone.now():
            raise forms.ValidationError(_("Pick a time in the future, or leave it empty."))
        return expires


class LedgerFilterForm(DateRangeForm):
    member = forms.ModelChoiceField(
        label=_("Member"),
        queryset=User.objects.order_by("username"),
        required=False,
        empty_label=_("Anyone"),
    )
    key = forms.CharField(label=_("Key label"), required=False, max_length=100)
    operation = forms.CharField(label=_("Operation"), required=False, max_length=64)
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        required=False,
        choices=[("", _("Any")), ("ok", _("Succeeded")), ("failed", _("Failed"))],
    )

    def __init__(self, entries: QuerySet[LedgerEntry], *args, **kwargs) -> None:
        """entries: the rows the member may see; the filters narrow them, never widen them."""
        super().__init__(*args, **kwargs)
        self.entries = entries
        members = User.objects.filter(pk__in=entries.values("member"))
        self.fields["member"].queryset = members.order_by("username")

    def all_rows(self) -> QuerySet[LedgerEntry]:
        return self.entries

    def narrow(self, entries: QuerySet[LedgerEntry], data: dict) -> QuerySet[LedgerEntry]:
        if data["member"]:
            entries = entries.filter(member=data["member"])
        if data["key"]:
            entries = entries.filter(key_label__iexact=data["key"].strip())
        if data["operation"]:
            entries = entries.filter(operation__startswith=data["operation"].strip())
        ok = Q(http_status__gte=200, http_status__lt=300)
        if data["outcome"] == "ok":
            entries = entries.filter(ok)
        elif data["outcome"] == "failed":
            entries = entries.exclude(ok)
        return entries


LEDGER_COLUMNS = [
    "time_utc",
    "member",
    "key",
    "operation",
    "model",
    "http_status",
    "request_id",
    "idempotency_key",
    "credits_reserved",
    "credits_final",
    "latency_ms",
    "error_code",
]


def ledger_csv_rows(entries: QuerySet[LedgerEntry]) -> Iterator[list]:
    yield LEDGER_COLUMNS
    for e in entries.iterator(chunk_size=500):
        yield [
            e.at.isoformat(),
            e.member_name,
            e.key_label,
            e.operation,
            e.model,
            e.http_status if e.http_status is not None else "",
            e.request_id,
            e.idempotency_key,
            e.credits_reserved if e.credits_reserved is not None else "",
            e.credits_final if e.credits_final is not None else "",
            e.latency_ms if e.latency_ms is not None else "",
            e.error_code,
        ]

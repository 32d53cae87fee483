"""Forms of the Webhooks and Inbox pages."""

import ipaddress
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.rivya import signing
from rivya_dashboard.vault.forms import SecretInput
from rivya_dashboard.vault.grants import visible_keys
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks.forwarding import (
    TargetRefused,
    check_target,
    may_reach_local,
    parse_header_lines,
    sendable,
)
from rivya_dashboard.webhooks.models import Inbox, Verdict
from rivya_dashboard.webhooks.remote import EVENT_TYPES

EVENT_CHOICES = [(t, t) for t in EVENT_TYPES]
DELIVERY_STATUSES = [
    ("", _("Any status")),
    ("pending", _("Pending")),
    ("succeeded", _("Succeeded")),
    ("failed", _("Failed")),
]
ANSWER_STATUSES = [200, 202, 204, 400, 401, 404, 409, 410, 429, 500, 502, 503]
LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal")
# Inbox limit fields: the setting that gives the default, and the largest value accepted.
LIMIT_DEFAULTS = {
    "max_requests": ("RIVYA_INBOX_MAX_REQUESTS", 1_000_000),
    "max_megabytes": ("RIVYA_INBOX_MAX_MB", 100_000),
    "retention_days": ("RIVYA_INBOX_RETENTION_DAYS", 3650),
    "rate_per_minute": ("RIVYA_INBOX_RATE_PER_MINUTE", 1_000_000),
}


def contract_url_problem(url: str) -> str:
    """Contract §9.2 rules that need no DNS lookup: the API still checks what resolves where."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return str(_("This is not a valid URL; paste the full address."))
    if parts.scheme != "https":
        return str(_("Rivya delivers only to https:// addresses."))
    if parts.username is not None or parts.password is not None:
        return str(_("Remove the user name and password from the URL."))
    if parts.fragment or url.endswith("#"):
        return str(_("Remove the #fragment from the URL."))
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return str(_("The URL has no host name."))
    if host == "localhost" or host.endswith(LOCAL_NAMES):
        return str(_("Rivya does not deliver to local host names; use a public address."))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return ""
    if not address.is_global:
        return str(_("Rivya does not deliver to private, loopback or reserved addresses."))
    return ""


class EndpointForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    url = forms.CharField(
        label=_("URL"),
        widget=forms.TextInput({"dir": "ltr"}),
        max_length=2048,
        help_text=_("HTTPS only; no credentials, fragments, local or private addresses."),
    )
    event_types = forms.MultipleChoiceField(
        label=_("Events"),
        choices=EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        initial=list(EVENT_TYPES),
    )

    def __init__(self, *args, key: ApiKey, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.key = key

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if url:
            self.check_url(url)
        return url

    def check_url(self, url: str) -> None:
        # This console's own sandbox may be set to accept local targets (demos): it answers for
        # itself, whichever way its key was added.
        problem = "" if self.key.is_own_sandbox else contract_url_problem(url)
        if problem:
            raise forms.ValidationError(problem)


class EndpointCreateForm(EndpointForm):
    inbox = forms.ModelChoiceField(
        label=_("Verify in inbox"),
        queryset=Inbox.objects.all(),
        required=False,
        empty_label=_("No inbox"),
        help_text=_(
            "Store the new signing secret in this inbox (encrypted), so it verifies the "
            "deliveries. Leave the URL empty to use the inbox's receiver URL."
        ),
    )
    field_order = ["name", "inbox", "url", "event_types"]

    def __init__(self, *args, receiver_url=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["url"].required = False
        self.receiver_url = receiver_url

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("url") and "url" not in self.errors:
            inbox = data.get("inbox")
            if inbox is None:
                self.add_error("url", _("Enter the URL, or pick an inbox to deliver to."))
                return data
            url = self.receiver_url(inbox)
            try:
                self.check_url(url)
            except forms.ValidationError as error:
                self.add_error("url", inbox_url_refused(error))
            else:
                data["url"] = url
        return data


def inbox_url_refused(error: forms.ValidationError) -> str:
    return _(
        "The inbox's receiver URL cannot receive from Rivya: %(problem)s Give the console a "
        "public https:// address (RIVYA_PUBLIC_URL), or enter another URL."
    ) % {"problem": " ".join(error.messages)}


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=DELIVERY_STATUSES, required=False)
    event_type = forms.ChoiceField(
        label=_("Event"), choices=[("", _("Any event")), *EVENT_CHOICES], required=False
    )
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput({"type": "date"})
    )
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput({"type": "date"}))
    generation = forms.CharField(label=_("Generation id"), required=False, max_length=100)

    def matches(self, delivery: dict, event_generation: dict[str, str]) -> bool:
        data = self.cleaned_data
        if data.get("event_type") and delivery.get("event_type") != data["event_type"]:
            return False
        created = str(delivery.get("created_at") or "")[:10]
        if data.get("since") and created < data["since"].isoformat():
            return False
        if data.get("until") and created > data["until"].isoformat():
            return False
        wanted = (data.get("generation") or "").strip()
        return not wanted or event_generation.get(delivery.get("event_id") or "") == wanted


class InboxCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    key = forms.ModelChoiceField(
        label=_("Update jobs of key"),
        queryset=ApiKey.objects.none(),
        required=False,
        empty_label=_("None"),
        help_text=_("Verified generation events update this key's tracked jobs."),
    )

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key"].queryset = visible_keys(user)


class InboxSettingsForm(forms.ModelForm):
    response_status = forms.TypedChoiceField(
        label=_("Answer with"),
        coerce=int,
        choices=[(code, str(code)) for code in ANSWER_STATUSES],
        help_text=_("Answer 500 or 503 to rehearse the sender's retries; 2xx acknowledges."),
    )

    class Meta:
        model = Inbox
        fields = [
            "name",
            "key",
            "response_status",
            "forward_url",
            "forward_enabled",
            *LIMIT_DEFAULTS,
        ]
        help_texts = {
            "forward_url": _("e.g. a local dev server; every request is sent on and logged.")
        }
        widgets = {"forward_url": forms.TextInput({"dir": "ltr"})}

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["key"].queryset = visible_keys(user)
        self.fields["key"].label = _("Update jobs of key")
        for name, (setting, largest) in LIMIT_DEFAULTS.items():
            field = self.fields[name]
            default = getattr(settings, setting)
            field.min_value, field.max_value = 1, largest
            field.validators += [MinValueValidator(1), MaxValueValidator(largest)]
            field.widget.attrs.update({"min": 1, "max": largest, "placeholder": default})
            field.help_text = _("Empty: the default, %(default)s.") % {"default": default}

    def clean_forward_url(self) -> str:
        url = self.cleaned_data["forward_url"].strip()
        if url:
            try:
                check_target(url, allow_local=may_reach_local(self.user))
            except TargetRefused as error:
                raise forms.ValidationError(str(error)) from None
        return url

    def clean(self) -> dict:
        data = super().clean()
        if data.get("forward_enabled") and not data.get("forward_url"):
            self.add_error(
                "forward_url", _("Enter the target to forward to, or untick forwarding.")
            )
        return data


def checked_secret(value: str) -> str:
    value = value.strip()
    if value.startswith(signing.API_KEY_PREFIX):
        raise forms.ValidationError(
            _("This is a Rivya API key; paste the endpoint's whsec_ signing secret instead.")
        )
    if not value.startswith(signing.SECRET_PREFIX) or len(value) < 12:
        raise forms.ValidationError(
            _("Paste the endpoint's signing secret; it starts with whsec_.")
        )
    return value


class InboxSecretForm(forms.Form):
    secret = forms.CharField(label=_("Signing secret"), widget=SecretInput(), max_length=200)

    def clean_secret(self) -> str:
        return checked_secret(self.cleaned_data["secret"])


class RequestFilterForm(forms.Form):
    q = forms.CharField(label=_("Search headers and body"), required=False, max_length=200)
    verdict = forms.ChoiceField(
        label=_("Verdict"), choices=[("", _("Any verdict")), *Verdict.choices], required=False
    )
    event_type = forms.ChoiceField(
        label=_("Event"), choices=[("", _("Any event")), *EVENT_CHOICES], required=False
    )


class ReplayForm(forms.Form):
    # dir: URLs, header lines and JSON read left to right even on a right-to-left page.
    target_url = forms.CharField(
        label=_("Send to"), widget=forms.TextInput({"dir": "ltr"}), max_length=500
    )
    headers = forms.CharField(
        label=_("Headers"), widget=forms.Textarea({"rows": 6, "dir": "ltr"}), required=False
    )
    body = forms.CharField(
        label=_("Body"),
        widget=forms.Textarea({"rows": 10, "dir": "ltr"}),
        required=False,
        strip=False,
    )
    resign = forms.TypedChoiceField(
        label=_("Signature"),
        coerce=int,
        empty_value=None,
        required=False,
        help_text=_("Re-sign with a stored secret (fresh timestamp) after editing the body."),
    )

    def __init__(self, *args, secret_choices: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["resign"].choices = [("", _("Keep the original headers")), *secret_choices]

    def clean_headers(self) -> dict[str, str]:
        try:
            return sendable(parse_header_lines(self.cleaned_data["headers"]))
        except TargetRefused as error:
            raise forms.ValidationError(str(error)) from None


class BulkReplayForm(RequestFilterForm):
    target_url = forms.CharField(
        label=_("Send to"), widget=forms.TextInput({"dir": "ltr"}), max_length=500
    )
    confirm_count = forms.IntegerField(required=False, widget=forms.HiddenInput)


class DoctorForm(forms.Form):
    headers = forms.CharField(
        label=_("Headers"),
        widget=forms.Textarea({"rows": 5, "spellcheck": "false", "dir": "ltr"}),
        help_text=_("One Name: value per line, as received."),
    )
    body = forms.CharField(
        label=_("Raw body"),
        widget=forms.Textarea({"rows": 8, "spellcheck": "false", "dir": "ltr"}),
        strip=False,
    )
    secret = forms.CharField(
        label=_("Also try this secret"),
        widget=SecretInput(),
        required=False,
        max_length=200,
        help_text=_("Optional; used for this check only and not stored."),
    )

    def clean_headers(self) -> dict[str, str]:
        try:
            return parse_header_lines(self.cleaned_data["headers"])
        except TargetRefused as error:
            raise forms.ValidationError(str(error)) from None


class CurlForm(forms.Form):
    secret = forms.TypedChoiceField(label=_("Sign with"), coerce=int)

    def __init__(self, *args, secret_choices: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["secret"].choices = secret_choices

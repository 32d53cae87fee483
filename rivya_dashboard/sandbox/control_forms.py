"""Forms of the sandbox control page; each one maps to one do_ action in control_actions.py."""

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.sandbox import choices, faults
from rivya_dashboard.sandbox.models import Account, SandboxKey, SandboxSettings, WebhookSettings

MAX_TOP_UP = 1_000_000
MAX_CLOCK_SPEED = 10_000
MAX_RATE_LIMIT = 1_000_000
MAX_TOKEN_DELAY_MS = 10_000


class PageQueryForm(forms.Form):
    """The page's address: ?faults=<key number> opens that key's faults."""

    faults = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class TopUpForm(forms.Form):
    amount = forms.IntegerField(
        label=_("Credits to add"), min_value=1, max_value=MAX_TOP_UP, initial=100
    )


class KeyCreateForm(forms.Form):
    name = forms.CharField(label=_("Key name"), max_length=100, required=False)
    account = forms.ModelChoiceField(
        label=_("Account"),
        queryset=Account.objects.order_by("name", "pk"),
        required=False,
        empty_label=_("A new account"),
    )
    credits = forms.IntegerField(
        label=_("Credits of a new account"),
        min_value=0,
        max_value=MAX_TOP_UP,
        initial=choices.DEFAULT_ACCOUNT_CREDITS,
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=[(scope, scope) for scope in choices.SCOPES],
        initial=list(choices.SCOPES),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Tick at least one scope; a key without scopes can't call anything.")
        },
    )


class BehaviourForm(forms.ModelForm):
    failure_percent = forms.IntegerField(
        label=_("Generations that fail (%)"), min_value=0, max_value=100
    )

    class Meta:
        model = SandboxSettings
        fields = ["clock_speed", "rate_limit", "token_delay_ms", "public_api_disabled"]
        labels = {
            "clock_speed": _("Clock speed (times real time)"),
            "rate_limit": _("Requests per key per 60 s"),
            "token_delay_ms": _("Pause between chat deltas (ms)"),
            "public_api_disabled": _("Switch the public API off (every call gets 503)"),
        }
        help_texts = {"clock_speed": _("60 makes a 20 s video job finish in a third of a second.")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["failure_percent"].initial = round(self.instance.failure_rate * 100)
        bounds = {
            "clock_speed": (0.01, MAX_CLOCK_SPEED),
            "rate_limit": (1, MAX_RATE_LIMIT),
            "token_delay_ms": (0, MAX_TOKEN_DELAY_MS),
        }
        for name, (low, high) in bounds.items():
            field = self.fields[name]
            field.validators += [MinValueValidator(low), MaxValueValidator(high)]
            field.widget.attrs.update({"min": low, "max": high})


class FaultForm(forms.Form):
    """One field per fault of faults.FAULTS; the target is global or one key."""

    target = forms.CharField(widget=forms.HiddenInput, initial="global")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, (kind, label) in faults.FAULTS.items():
            if kind == faults.FLAG:
                field: forms.Field = forms.BooleanField(label=label, required=False)
            elif kind == faults.STATUS:
                options = [("", _("No error"))] + [(s, s) for s in choices.STATUS_FAULTS]
                field = forms.ChoiceField(label=label, choices=options, required=False)
            else:
                field = forms.IntegerField(
                    label=label, required=False, min_value=0, max_value=faults.MAX_LATENCY_MS
                )
            self.fields[name] = field

    def clean_target(self) -> SandboxKey | None:
        target = self.cleaned_data["target"]
        if target == "global":
            return None
        key = SandboxKey.objects.filter(pk=target if target.isdigit() else None).first()
        if key is None:
            raise forms.ValidationError(_("That key no longer exists; reload the page."))
        return key

    def fault_set(self) -> dict[str, Any]:
        chosen = {
            name: self.cleaned_data[name]
            for name in faults.FAULTS
            if self.cleaned_data.get(name) not in (None, "", False)
        }
        return faults.normalize(chosen)


class WebhookSettingsForm(forms.ModelForm):
    class Meta:
        model = WebhookSettings
        fields = ["allow_local_targets", "fast_retries"]
        labels = {
            "allow_local_targets": _("Allow local targets (http://127.0.0.1, localhost, private)"),
            "fast_retries": _("Fast retries (the schedule in seconds instead of minutes)"),
        }
        help_texts = {
            "allow_local_targets": _("The real API refuses these; use it for local demos only."),
        }

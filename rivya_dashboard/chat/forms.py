"""The composer: one message plus the options the chosen model allows, and for a new chat the key
and the model."""

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.chat.models import new_idempotency_key
from rivya_dashboard.console.models import CatalogueModel
from rivya_dashboard.vault.models import ApiKey

MAX_MESSAGE_LENGTH = 20000
# The key travels as the Idempotency-Key header: visible ASCII only, or the send fails mid-way.
IDEMPOTENCY_KEY = re.compile(r"[!-~]+")


def chat_models() -> list[CatalogueModel]:
    """Catalogue models that stream chat replies through the API."""
    found = CatalogueModel.objects.filter(category="chat", api_status="available")
    return [model for model in found if capabilities_of(model).get("streaming", True)]


def capabilities_of(model: CatalogueModel | None) -> dict:
    capabilities = model.data.get("chat_capabilities") if model else None
    return capabilities if isinstance(capabilities, dict) else {}


class TurnForm(forms.Form):
    message = forms.CharField(
        label=_("Message"),
        max_length=MAX_MESSAGE_LENGTH,
        strip=False,
        widget=forms.Textarea(
            # dir=auto: a message reads in its own script, whatever the page's direction.
            attrs={
                "rows": 3,
                "placeholder": _("Ask anything…"),
                "data-composer-input": "",
                "dir": "auto",
            }
        ),
        error_messages={"required": _("Write a message first.")},
    )
    image = forms.FileField(
        label=_("Attach an image"),
        required=False,
        widget=forms.FileInput(
            attrs={"accept": "image/png,image/jpeg,image/webp", "data-attach": ""}
        ),
    )
    enable_web_search = forms.BooleanField(label=_("Search the web"), required=False)
    enable_thoughts = forms.BooleanField(label=_("Show thoughts"), required=False)
    reasoning_effort = forms.ChoiceField(label=_("Reasoning"), required=False)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(
        self, *args: object, model: CatalogueModel | None = None, **kwargs: object
    ) -> None:
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)
        self.model = model
        self.allow_options(capabilities_of(model))

    def allow_options(self, capabilities: dict) -> None:
        """Options appear only where the model's chat_capabilities allow them."""
        if not capabilities.get("web_search"):
            self.fields.pop("enable_web_search", None)
        if not capabilities.get("thoughts"):
            self.fields.pop("enable_thoughts", None)
        if not capabilities.get("image_attachments"):
            self.fields.pop("image", None)
        efforts = [str(e) for e in capabilities.get("reasoning_efforts") or [] if e]
        if efforts:
            self.fields["reasoning_effort"].choices = [(e, e.capitalize()) for e in efforts]
        else:
            self.fields.pop("reasoning_effort", None)

    def clean_message(self) -> str:
        message = self.cleaned_data["message"]
        if not message.strip():
            raise forms.ValidationError(_("Write a message first."))
        return message

    def clean(self) -> dict:
        cleaned = super().clean()
        if not IDEMPOTENCY_KEY.fullmatch(self.data.get("idempotency_key", "")):
            # A hidden field's error shows nowhere: say it above the composer, and put a sound
            # key in the re-rendered form so that sending again works.
            self.data = self.data.copy()
            self.data["idempotency_key"] = new_idempotency_key()
            self.add_error(
                None,
                _("This form's resend guard was damaged; a new one is in place, send again."),
            )
        return cleaned

    def options(self) -> dict:
        data = self.cleaned_data
        effort = data.get("reasoning_effort") or ""
        return {
            "enable_web_search": bool(data.get("enable_web_search")),
            "enable_thoughts": bool(data.get("enable_thoughts")),
            "reasoning_effort": "" if effort == "default" else effort,
        }


class NewChatForm(TurnForm):
    key = forms.ModelChoiceField(label=_("Key"), queryset=None, empty_label=None)
    model = forms.ChoiceField(label=_("Model"))

    field_order = ["key", "model", "message"]

    def __init__(
        self, *args: object, keys: list[ApiKey], models: list[CatalogueModel], **kwargs: object
    ) -> None:
        data = args[0] if args else kwargs.get("data")
        by_id = {model.model_id: model for model in models}
        chosen = (data or {}).get("model") or (kwargs.get("initial") or {}).get("model")
        model = by_id.get(chosen) or (models[0] if models else None)
        super().__init__(*args, model=model, **kwargs)
        self.fields["key"].queryset = ApiKey.objects.filter(pk__in=[key.pk for key in keys])
        self.fields["model"].choices = [(m.model_id, m.display_name) for m in models]

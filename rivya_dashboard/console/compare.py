"""Side by side: one prompt sent to two or three models at once, each with its own defaults."""

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rivya_dashboard.accounts.models import User
from rivya_dashboard.console import generate_form, generations
from rivya_dashboard.console.models import CatalogueModel, Generation
from rivya_dashboard.console.schema_form import prompt_limit, schema_params
from rivya_dashboard.console.templatetags.api_labels import api_label
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.grants import GrantRefused, usable_keys
from rivya_dashboard.vault.models import Action

MIN_MODELS, MAX_MODELS = 2, 3


def comparable_models() -> list[CatalogueModel]:
    """Models a prompt alone can drive: text input, no required upload."""
    return [
        model
        for model in generate_form.generation_models()
        if "text" in model.input_kinds and not model.data.get("requires_files_api")
    ]


def default_params(model: dict) -> dict[str, Any]:
    """Each model's own defaults; a required select without one takes its first option."""
    params = {}
    for param in schema_params(model):
        default = param.get("default")
        if default in (None, "") and param.get("required") and param.get("options"):
            default = param["options"][0]
        if default not in (None, ""):
            params[param["key"]] = str(default) if param.get("type") == "select" else default
    return params


def model_facts(model: CatalogueModel) -> dict[str, str]:
    return {
        "name": model.display_name,
        "category": api_label(model.category),
        "credits": f"{model.base_credits.normalize():f}",
    }


def initial() -> dict[str, str]:
    return {"nonce": generate_form.new_nonce()}


class CompareForm(forms.Form):
    nonce = forms.CharField(widget=forms.HiddenInput, max_length=64)
    prompt = forms.CharField(
        label=gettext_lazy("Prompt"), widget=forms.Textarea(attrs={"rows": 3, "dir": "auto"})
    )
    models = forms.MultipleChoiceField(
        label=gettext_lazy("Models (two or three)"),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "model-picks"}),
    )
    key = forms.ChoiceField(label=gettext_lazy("API key"))

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keys = {str(key.pk): key for key in usable_keys(user, Action.GENERATE)}
        self.catalogue = {model.model_id: model for model in comparable_models()}
        self.fields["key"].choices = [(pk, key.label) for pk, key in self.keys.items()]
        self.fields["models"].choices = [
            (model_id, _("%(name)s · %(category)s · %(credits)s cr") % model_facts(model))
            for model_id, model in self.catalogue.items()
        ]

    def clean_models(self) -> list[str]:
        chosen = self.cleaned_data["models"]
        if not MIN_MODELS <= len(chosen) <= MAX_MODELS:
            raise forms.ValidationError(_("Pick two or three models to compare."))
        return chosen

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        prompt = data.get("prompt") or ""
        for model_id in data.get("models") or []:
            limit = prompt_limit(self.catalogue[model_id].data)
            if limit and len(prompt) > limit:
                self.add_error(
                    "prompt",
                    _("Shorten the prompt to %(limit)s characters: %(model)s takes no more.")
                    % {"limit": limit, "model": self.catalogue[model_id].display_name},
                )
        return data


@dataclass(frozen=True)
class BatchTotal:
    credits: Decimal
    final: bool  # every job has ended and been charged


def batch_total(jobs: list[Generation]) -> BatchTotal:
    """What the batch costs: final charges where known, estimates for jobs still running."""
    spent = sum(
        (
            job.final_credits
            if job.is_terminal and job.final_credits is not None
            else job.estimate_credits or 0
        )
        for job in jobs
    )
    final = all(job.is_terminal and job.final_credits is not None for job in jobs)
    return BatchTotal(Decimal(spent), final)


def do_submit_all(user: User, form: CompareForm) -> tuple[uuid.UUID, list[str]]:
    """Submit to every chosen model. Returns the batch to show (the first one, when a resubmitted
    form finds its jobs already there) and one message per model the API refused."""
    key = form.keys[form.cleaned_data["key"]]
    batch = uuid.uuid4()
    failures = []
    for model_id in form.cleaned_data["models"]:
        model = form.catalogue[model_id]
        try:
            generation = generations.do_submit(
                user,
                key,
                model.data,
                nonce=f"{form.cleaned_data['nonce']}-{model_id}",
                prompt=form.cleaned_data["prompt"],
                params=default_params(model.data),
                batch=batch,
            )
            batch = generation.batch or batch
        except GrantRefused as exc:
            failures.append(f"{model.display_name}: {exc}")
        except RivyaError as exc:
            failures.append(f"{model.display_name}: {generate_form.error_message(exc)}")
    return batch, failures

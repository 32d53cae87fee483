"""What the generate pages need around the schema form: the chosen model and key, fresh nonces,
and API errors turned into form messages that keep what the member typed."""

import secrets
from dataclasses import dataclass
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.console.files import pickable_files
from rivya_dashboard.console.models import CatalogueModel, Generation
from rivya_dashboard.console.schema_form import (
    GenerationForm,
    accepts_reference_media,
    field_name,
    initial_from_params,
    reference_rules,
)
from rivya_dashboard.rivya.errors import (
    AuthError,
    Conflict,
    InsufficientCredits,
    InvalidRequest,
    RateLimited,
    RivyaError,
    Unavailable,
)
from rivya_dashboard.vault.grants import GrantRefused, check_grant, usable_keys
from rivya_dashboard.vault.models import Action, ApiKey

GENERATION_CATEGORIES = ("image", "video", "audio")


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def generation_models() -> list[CatalogueModel]:
    return list(
        CatalogueModel.objects.filter(api_status="available", category__in=GENERATION_CATEGORIES)
    )


@dataclass
class Choice:
    """The model and key a generate page works with, and everything the member may pick from."""

    models: list[CatalogueModel]
    model: CatalogueModel | None
    keys: list[ApiKey]
    key: ApiKey | None
    member: User


def choose(user: User, model_id: str | None, key_id: str | None) -> Choice:
    """The model (the first one when none or an unknown one is asked for) and the key.

    The key is a strict lookup: a key id that is given but not one of the member's usable keys
    gives no key at all (key_refusal says why), never another key in its place.
    """
    models = generation_models()
    keys = usable_keys(user, Action.GENERATE)
    model = next((m for m in models if m.model_id == model_id), models[0] if models else None)
    if key_id:
        key = next((k for k in keys if str(k.pk) == str(key_id)), None)
    else:
        key = keys[0] if keys else None
    return Choice(models, model, keys, key, user)


def key_refusal(user: User, key_id: str, choice: Choice) -> str:
    """Why the asked-for key is not among the member's keys: the grant's own words (expired,
    action removed, disabled key), or that it is not theirs to use; empty when it is usable."""
    if not key_id or choice.key is not None:
        return ""
    key = ApiKey.objects.filter(pk=key_id).first() if key_id.isdigit() else None
    if key is not None:
        try:
            check_grant(user, key, Action.GENERATE)
        except GrantRefused as exc:
            return str(exc)
    return _("That key is not one you may generate with; pick one of your keys.")


def build_form(
    choice: Choice, data: QueryDict | None = None, initial: dict[str, Any] | None = None
) -> GenerationForm:
    model = choice.model.data
    references = []
    if choice.key is not None and accepts_reference_media(model):
        references = pickable_files(choice.member, choice.key, reference_rules(model)["kinds"])
    form = GenerationForm(
        model,
        data,
        initial=initial,
        key_choices=[(str(key.pk), key.label) for key in choice.keys],
        reference_choices=[(str(f.pk), f.name) for f in references],
        reference_kinds={str(f.pk): f.kind for f in references},
    )
    form.reference_uploads = references
    return form


def initial_for(choice: Choice, source: Generation | None = None) -> dict[str, Any]:
    initial: dict[str, Any] = {"nonce": new_nonce()}
    if choice.key is not None:
        initial["key"] = str(choice.key.pk)
    if source is not None:
        initial["prompt"] = source.prompt
        initial.update(initial_from_params(source.params))
        initial["reference_files"] = list(source.reference_file_ids)
    return initial


def error_message(exc: RivyaError) -> str:
    """The sentence a refused submit shows: what happened, what to do, and the request id."""
    if isinstance(exc, InsufficientCredits):
        lead = _("Not enough credits for this job: top up the account or pick a cheaper model.")
    elif isinstance(exc, RateLimited):
        wait = f"{exc.retry_after:.0f}" if exc.retry_after else "60"
        lead = _("Rivya is limiting requests on this key; submit again in %(seconds)s s.") % {
            "seconds": wait
        }
    elif isinstance(exc, AuthError):
        lead = _("Rivya refused the key; ask an admin to check or replace it.")
    elif isinstance(exc, Unavailable):
        lead = _(
            "Rivya cannot be reached; submit again in a minute (same job, never charged twice)."
        )
    elif isinstance(exc, Conflict):
        lead = _("Rivya is still handling this exact request; check the history in a moment.")
    elif isinstance(exc, InvalidRequest):
        lead = _("Rivya refused the request; fix the value below and submit again.")
    else:
        lead = _("Rivya could not take the request.")
    return _("%(lead)s %(message)s (request id: %(request_id)s)") % {
        "lead": lead,
        "message": exc.message,
        "request_id": exc.request_id or _("none"),
    }


def attach_error(form: GenerationForm, exc: RivyaError) -> None:
    """Show the API's refusal next to the field it names, else above the form."""
    param = getattr(exc, "param", None) or ""
    target = None
    if param in ("prompt",):
        target = "prompt"
    elif field_name(param) in form.fields:
        target = field_name(param)
    form.add_error(target, error_message(exc))


def keeps_nonce(exc: RivyaError) -> bool:
    # After a lost answer the job may exist at Rivya: the same key makes the retry a replay.
    # After a refusal the member will change the request, which needs a fresh key.
    return isinstance(exc, Unavailable | RateLimited)

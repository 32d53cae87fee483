"""A schema turned into Django form fields, and the form turned back into a request.

Two kinds of schema arrive here: a model's `params` list (the generate form) and the JSON Schema of
an OpenAPI operation (the workbench explorer), which `json_schema_param` translates into the same
param entries so that one `param_field` builds both forms. The same field objects render the form
and validate the post, so the page can never accept a value the schema forbids, nor refuse one it
allows. Unknown param types degrade to a JSON text box rather than being dropped: the catalogue may
grow types the console has not met yet (contract §1.2).
"""

import json
import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

PARAM_PREFIX = "p_"
REFERENCE_KEY = "referenceMediaItems"
MEDIA_KINDS = ("image", "video", "audio")


def field_name(param_key: str) -> str:
    # Prefixed so a param called "model" or "prompt" cannot collide with the form's own fields.
    return f"{PARAM_PREFIX}{param_key}"


def param_label(param: dict) -> str:
    return str(param.get("label") or param["key"].replace("_", " ").capitalize())


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def is_whole_number_param(param: dict) -> bool:
    step = _number(param.get("step"))
    bounds = [_number(param.get(name)) for name in ("min", "max", "default")]
    if step is None:
        return False
    return step.is_integer() and all(b is None or b.is_integer() for b in bounds)


def _select_field(param: dict, required: bool) -> forms.Field:
    options = [str(option) for option in param.get("options") or []]
    choices = [(option, option) for option in options]
    if not required:
        choices = [("", _("Model default")), *choices]
    return forms.ChoiceField(choices=choices, required=required)


def _number_field(param: dict, required: bool) -> forms.Field:
    low, high, step = (_number(param.get(name)) for name in ("min", "max", "step"))
    if is_whole_number_param(param):
        return forms.IntegerField(
            required=required,
            min_value=int(low) if low is not None else None,
            max_value=int(high) if high is not None else None,
            step_size=int(step) if step and step > 1 else None,
        )
    return forms.DecimalField(
        required=required,
        min_value=Decimal(str(low)) if low is not None else None,
        max_value=Decimal(str(high)) if high is not None else None,
        step_size=Decimal(str(step)) if step else None,
        widget=forms.NumberInput(attrs={"step": str(step) if step else "any"}),
    )


class JSONValueField(forms.CharField):
    """For param types the console does not know: the member writes the JSON value itself."""

    widget = forms.Textarea(attrs={"rows": 3, "class": "mono"})

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            reason = exc.msg
        except RecursionError:
            reason = _("nested too deeply")
        raise ValidationError(
            _('Write a JSON value here, e.g. ["a", "b"] (%(error)s).') % {"error": reason}
        )

    def prepare_value(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value)


def _boolean_field(required: bool) -> forms.Field:
    # A select, not a checkbox: an unticked box cannot tell "false" from "leave it out".
    choices = [("true", "true"), ("false", "false")]
    if not required:
        choices = [("", _("Leave out")), *choices]
    return forms.TypedChoiceField(
        choices=choices, required=required, coerce=lambda value: value == "true", empty_value=None
    )


def _text_field(param: dict, required: bool) -> forms.Field:
    limit = _number(param.get("max_length"))
    return forms.CharField(required=required, strip=True, max_length=int(limit) if limit else None)


def param_field(param: dict) -> forms.Field:
    required = bool(param.get("required"))
    kind = param.get("type")
    if kind == "select" and param.get("options"):
        field = _select_field(param, required)
    elif kind == "multiselect" and param.get("options"):
        options = [(str(option), str(option)) for option in param["options"]]
        field = forms.MultipleChoiceField(
            choices=options, required=required, widget=forms.CheckboxSelectMultiple
        )
    elif kind == "boolean":
        field = _boolean_field(required)
    elif kind == "number":
        field = _number_field(param, required)
    elif kind == "text":
        field = _text_field(param, required)
    elif kind == "file":
        field = forms.FileField(required=required)
    else:
        field = JSONValueField(required=required)
    field.label = param_label(param)
    field.help_text = param_help(param)
    default = param.get("default")
    if default is not None:
        field.initial = _initial(kind, default)
    return field


def _initial(kind: str | None, default: Any) -> Any:
    if kind == "select":
        return str(default)
    if kind == "boolean":
        return "true" if default is True else "false" if default is False else None
    return default


def _schema_type(schema: dict) -> str:
    """The one JSON type a field edits; ["string", "null"] edits a string that may be left out."""
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((name for name in declared if name != "null"), None)
    return declared if isinstance(declared, str) else ""


def json_schema_param(key: str, schema: dict, *, required: bool, label: str = "") -> dict:
    """One JSON Schema property as a param entry of the kind `param_field` builds.

    Enums become selects, booleans a true/false select, integers and numbers number inputs with
    their bounds, binary strings file inputs, arrays of an enum checkboxes; anything else
    (objects, free arrays, unions) the JSON text box.
    """
    param: dict[str, Any] = {"key": key, "label": label or key, "required": required}
    if isinstance(schema.get("description"), str):
        param["description"] = schema["description"]
    if "default" in schema:
        param["default"] = schema["default"]
    kind = _schema_type(schema)
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        param.update(type="select", options=[str(value) for value in schema["enum"]])
    elif kind == "boolean":
        param["type"] = "boolean"
    elif kind in ("integer", "number"):
        param.update(type="number", min=schema.get("minimum"), max=schema.get("maximum"))
        if kind == "integer":
            param["step"] = 1
    elif kind == "string" and (schema.get("format") == "binary" or "contentMediaType" in schema):
        param["type"] = "file"
    elif kind == "string":
        param.update(type="text", max_length=schema.get("maxLength"))
    elif kind == "array" and isinstance(items.get("enum"), list) and items["enum"]:
        param.update(type="multiselect", options=[str(value) for value in items["enum"]])
    else:
        param["type"] = "json"
    return param


def param_help(param: dict) -> str:
    parts = []
    if param.get("description"):
        parts.append(str(param["description"]))
    low, high = _number(param.get("min")), _number(param.get("max"))
    if low is not None and high is not None:
        parts.append(_("From %(min)s to %(max)s.") % {"min": f"{low:g}", "max": f"{high:g}"})
    elif low is not None:
        parts.append(_("At least %(min)s.") % {"min": f"{low:g}"})
    elif high is not None:
        parts.append(_("At most %(max)s.") % {"max": f"{high:g}"})
    step = _number(param.get("step"))
    if step and param.get("type") == "number":
        parts.append(_("In steps of %(step)s.") % {"step": f"{step:g}"})
    if param.get("default") not in (None, ""):
        parts.append(_("Default: %(default)s.") % {"default": param["default"]})
    return " ".join(parts)


def schema_params(model: dict) -> list[dict]:
    """The params the form shows: well-formed entries, minus the reference-media list it builds."""
    params = model.get("params") or []
    return [
        param
        for param in params
        if isinstance(param, dict) and param.get("key") and param["key"] != REFERENCE_KEY
    ]


def reference_rules(model: dict) -> dict:
    rules = model.get("reference_media") or {}
    kinds = rules.get("file_kinds") or model.get("file_kinds") or []
    return {
        "kinds": [kind for kind in kinds if kind in MEDIA_KINDS],
        "max_files": rules.get("max_files"),
        "rule": rules.get("rule") or "",
        "limits": {limit.get("kind"): limit for limit in rules.get("limits") or []},
        "required": bool(model.get("requires_files_api")),
    }


def accepts_reference_media(model: dict) -> bool:
    return "file" in (model.get("supported_api_inputs") or []) and bool(
        reference_rules(model)["kinds"]
    )


def prompt_limit(model: dict) -> int | None:
    limit = model.get("max_prompt_length")
    return int(limit) if isinstance(limit, int | float) and limit > 0 else None


def prompt_required(model: dict) -> bool:
    if "prompt_required" in model:
        return bool(model["prompt_required"])
    return "text" in (model.get("supported_api_inputs") or [])


class GenerationForm(forms.Form):
    """Fields are added per model in __init__; the fixed ones are the nonce, key and prompt."""

    nonce = forms.CharField(widget=forms.HiddenInput, max_length=64)
    key = forms.ChoiceField(label=gettext_lazy("API key"))
    prompt = forms.CharField(
        label=gettext_lazy("Prompt"),
        # dir=auto: a prompt reads in its own script, whatever the page's direction.
        widget=forms.Textarea(attrs={"rows": 4, "data-prompt": "", "dir": "auto"}),
        strip=False,
    )
    reference_files = forms.MultipleChoiceField(
        label=gettext_lazy("Reference media"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(
        self,
        model: dict,
        *args: Any,
        key_choices: Iterable[tuple[str, str]] = (),
        reference_choices: Iterable[tuple[str, str]] = (),
        reference_kinds: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.model = model
        self.reference_kinds = reference_kinds or {}
        self.fields["key"].choices = list(key_choices)
        self._set_up_prompt()
        for param in schema_params(model):
            self.fields[field_name(param["key"])] = param_field(param)
        if accepts_reference_media(model):
            rules = reference_rules(model)
            self.fields["reference_files"].choices = list(reference_choices)
            self.fields["reference_files"].required = rules["required"]
        else:
            del self.fields["reference_files"]

    def _set_up_prompt(self) -> None:
        prompt = self.fields["prompt"]
        prompt.required = prompt_required(self.model)
        limit = prompt_limit(self.model)
        if limit:
            prompt.widget.attrs["data-max-length"] = str(limit)
            prompt.validators.append(
                MaxLengthValidator(
                    limit,
                    message=_(
                        "Shorten the prompt to %(limit_value)s characters or fewer "
                        "(it has %(show_value)s)."
                    ),
                )
            )
            prompt.help_text = _("Up to %(limit)s characters.") % {"limit": f"{limit:,}"}

    def clean_prompt(self) -> str:
        # Spaces alone would be sent, accepted and charged: refuse them like an empty prompt.
        prompt = self.cleaned_data["prompt"]
        if prompt and not prompt.strip():
            raise ValidationError(_("Write a prompt: spaces and blank lines alone are not one."))
        return prompt

    def param_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith(PARAM_PREFIX)]

    def clean_reference_files(self) -> list[str]:
        chosen = self.cleaned_data.get("reference_files") or []
        rules = reference_rules(self.model)
        if rules["max_files"] and len(chosen) > rules["max_files"]:
            raise ValidationError(
                ngettext(
                    "Pick at most %(count)s file for this model.",
                    "Pick at most %(count)s files for this model.",
                    rules["max_files"],
                )
                % {"count": rules["max_files"]}
            )
        wrong = [pk for pk in chosen if self.reference_kinds.get(pk) not in rules["kinds"]]
        if wrong:
            raise ValidationError(
                _("This model takes only %(kinds)s files; unpick the others.")
                % {"kinds": ", ".join(rules["kinds"])}
            )
        return chosen

    def params(self) -> dict[str, Any]:
        """The cleaned values as the API wants them: selects as strings, numbers as numbers."""
        values: dict[str, Any] = {}
        for param in schema_params(self.model):
            value = self.cleaned_data.get(field_name(param["key"]))
            if value in (None, ""):
                continue
            values[param["key"]] = json_value(value)
        return values


def json_value(value: Any) -> Any:
    """A cleaned field value as JSON carries it: decimals as whole or fractional numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def initial_from_params(params: dict[str, Any]) -> dict[str, Any]:
    """Prefill a form from a request's params ("edit and run")."""
    return {
        field_name(key): value
        for key, value in params.items()
        if key != REFERENCE_KEY and not isinstance(value, dict)
    }

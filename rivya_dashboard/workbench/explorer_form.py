"""The explorer's form for one operation: its parameters and body, built by the same schema code
as the generate form (console/schema_form.py), with a raw JSON editor as the fallback."""

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rivya_dashboard.console.schema_form import (
    JSONValueField,
    json_schema_param,
    json_value,
    param_field,
)
from rivya_dashboard.workbench.copy_as import RequestShape
from rivya_dashboard.workbench.operations import IDEMPOTENCY_HEADER, Operation

BODY = "body"
# Closed objects nested this deep still get one field per property; deeper ones a JSON box.
MAX_NESTING = 3


def _is_closed_object(schema: dict) -> bool:
    return (
        isinstance(schema.get("properties"), dict)
        and bool(schema["properties"])
        and schema.get("additionalProperties") is False
    )


def body_params(schema: dict, path: tuple[str, ...] = (), required: bool = True) -> list[tuple]:
    """(path, param) for each property a member fills in; nested closed objects are opened."""
    found = []
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    needed = set(schema.get("required") or [])
    for name, prop in properties.items():
        if not isinstance(prop, dict) or prop.get("readOnly"):
            continue
        place = (*path, str(name))
        is_required = required and name in needed
        if _is_closed_object(prop) and len(place) < MAX_NESTING:
            found.extend(body_params(prop, place, is_required))
            continue
        found.append((place, json_schema_param(str(name), prop, required=is_required)))
    return found


def new_idempotency_key() -> str:
    return f"explorer-{uuid.uuid4()}"


@dataclass
class PreparedRequest:
    shape: RequestShape
    path: str
    files: dict[str, UploadedFile] = field(default_factory=dict)


class OperationForm(forms.Form):
    key = forms.ChoiceField(label=gettext_lazy("API key"))
    raw_body = forms.CharField(
        label=gettext_lazy("Raw JSON body"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false"}),
        help_text=gettext_lazy("When filled in, sent as the body instead of the fields above."),
    )

    def __init__(
        self, operation: Operation, *args: Any, key_choices: list[tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.operation = operation
        self.fields["key"].choices = key_choices
        self.body_fields: dict[str, tuple[str, ...]] = {}
        for parameter in operation.parameters:
            # A parameter without a schema travels as text in a URL or header anyway.
            schema = dict(parameter.schema) or {"type": "string"}
            if parameter.description:
                schema["description"] = parameter.description
            param = json_schema_param(parameter.name, schema, required=parameter.required)
            name = f"{parameter.location}.{parameter.name}"
            self.fields[name] = param_field(param)
            if parameter.name.lower() == IDEMPOTENCY_HEADER:
                # Shown and editable: resending the same key replays the first answer.
                self.fields[name].initial = new_idempotency_key()
        raw_mode = bool(self.data.get("raw_body", "").strip()) if self.is_bound else False
        for path, param in body_params(operation.body_schema or {}):
            name = ".".join((BODY, *path))
            if len(path) > 1:
                param["label"] = ".".join(path)
            built = param_field(param)
            built.required = built.required and not raw_mode
            self.fields[name] = built
            self.body_fields[name] = path
        if operation.multipart or operation.body_schema is None:
            del self.fields["raw_body"]
        elif not self.body_fields and operation.body_required:
            self.fields["raw_body"].required = True
            self.fields["raw_body"].help_text = _("This operation's body is written as JSON.")

    def parameter_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.split(".")[0] in ("path", "query")]

    def header_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("header.")]

    def body_field_list(self) -> list[forms.BoundField]:
        return [self[name] for name in self.body_fields]

    def clean_raw_body(self) -> Any:
        text = self.cleaned_data.get("raw_body") or ""
        if not text.strip():
            return None
        try:
            return JSONValueField().to_python(text)
        except ValidationError as exc:
            raise ValidationError(
                _("Fix the JSON before sending: %(error)s") % {"error": " ".join(exc.messages)}
            ) from None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, path in self.body_fields.items():
            value = self.cleaned_data.get(name)
            if value in (None, "", []) or isinstance(value, UploadedFile):
                continue
            node = body
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = json_value(value)
        return body

    def prepare(self, base_url: str) -> PreparedRequest:
        """The request as it will be sent (without the key), from the cleaned form."""
        operation, data = self.operation, self.cleaned_data
        path = operation.path
        query: dict[str, Any] = {}
        headers: dict[str, str] = {}
        for parameter in operation.parameters:
            value = json_value(data.get(f"{parameter.location}.{parameter.name}"))
            if value in (None, "", []):
                continue
            if parameter.location == "path":
                path = path.replace(f"{{{parameter.name}}}", quote(_text(value), safe=""))
            elif parameter.location == "query":
                query[parameter.name] = (
                    [_text(v) for v in value] if isinstance(value, list) else _text(value)
                )
            else:
                headers[parameter.name] = _text(value)
        files = {
            name.split(".", 1)[1]: value
            for name, value in data.items()
            if name.startswith(f"{BODY}.") and isinstance(value, UploadedFile)
        }
        shape = RequestShape(
            method=operation.method,
            url=base_url.rstrip("/") + path,
            query=query,
            headers=headers,
            streamed=operation.streamed,
            **self._body_parts(files),
        )
        return PreparedRequest(shape=shape, path=path, files=files)

    def _body_parts(self, files: dict[str, UploadedFile]) -> dict[str, Any]:
        if self.operation.multipart:
            fields = {name: _text(value) for name, value in self.body().items()}
            return {
                "form_fields": fields,
                "file_fields": {name: f"./{upload.name}" for name, upload in files.items()},
            }
        if self.operation.body_schema is None:
            return {}
        raw = self.cleaned_data.get("raw_body")
        body = raw if raw is not None else self.body()
        if body == {} and not self.operation.body_required:
            return {}
        return {"json_body": body}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)

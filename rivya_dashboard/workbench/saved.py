"""Saved requests: an explorer form's values, named and noted, in shared collections.

What is kept is the operation id and the values of its parameter and body fields, never the
key's value, and nothing typed into a header named like a credential; the key is named by its row
so that its grants decide who sees the request (visibility.visible_saved_requests).
"""

from django import forms
from django.db import transaction
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.workbench.models import Collection, SavedRequest
from rivya_dashboard.workbench.redaction import SECRET, SENSITIVE_HEADERS

KEPT_PREFIXES = ("path.", "query.", "header.", "body.")
# Credentials are never kept; an Idempotency-Key is drawn afresh each time the request is opened.
SKIPPED_HEADERS = {"authorization", "idempotency-key", *SENSITIVE_HEADERS}


class SaveForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    collection = forms.CharField(
        label=_("Collection"),
        max_length=100,
        help_text=_("An existing collection's name, or a new one."),
    )

    def clean_collection(self) -> str:
        return self.cleaned_data["collection"].strip()


def kept_values(data: QueryDict) -> dict:
    """The posted explorer fields worth keeping: parameters, body fields and the raw body, minus
    credential headers, with any rvya_sk_/whsec_ value cut to its prefix wherever it was typed."""
    values: dict = {}
    for name in data:
        if not (name.startswith(KEPT_PREFIXES) or name == "raw_body"):
            continue
        header = name.removeprefix("header.").lower()
        if name.startswith("header.") and header in SKIPPED_HEADERS:
            continue
        items = [SECRET.sub(r"\1…", value) for value in data.getlist(name)]
        values[name] = items if len(items) > 1 else items[0]
    return values


@transaction.atomic
def do_save(
    user: User, key: ApiKey, operation_id: str, form: SaveForm, data: QueryDict
) -> SavedRequest:
    collection, _created = Collection.objects.get_or_create(
        name=form.cleaned_data["collection"], defaults={"created_by": user}
    )
    return SavedRequest.objects.create(
        collection=collection,
        name=form.cleaned_data["name"],
        note=form.cleaned_data["note"],
        operation_id=operation_id[:200],
        key=key,
        key_label=key.label,
        values=kept_values(data),
        created_by=user,
    )


def may_delete(user: User, saved: SavedRequest) -> bool:
    return user.is_admin or saved.created_by_id == user.pk


@transaction.atomic
def do_delete(saved: SavedRequest) -> None:
    collection = saved.collection
    saved.delete()
    if not collection.requests.exists():
        collection.delete()

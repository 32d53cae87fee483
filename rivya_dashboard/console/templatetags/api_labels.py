"""Words for the API's enum values and the audit's details, never the raw value or a repr.

The API may add values this console has no word for yet: those read as a capitalised phrase
("studio_only" → "Studio only") rather than as an identifier.
"""

from collections.abc import Mapping

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

LABELS = {
    "image": _("Image"),
    "video": _("Video"),
    "audio": _("Audio"),
    "chat": _("Chat"),
    "text": _("Text"),
    "available": _("Available"),
    "coming_soon": _("Coming soon"),
    "studio_only": _("Studio only"),
    "FIXED": _("Fixed price"),
    "METERED": _("Metered"),
    "TOKEN_BASED": _("Per token"),
}


@register.filter
def api_label(value: object) -> str:
    text = str(value or "")
    if text in LABELS:
        return str(LABELS[text])
    return text.replace("_", " ").replace(".", ": ").lower().capitalize()


@register.filter
def readable(value: object) -> str:
    """An audit detail's value as a person reads it: lists joined, mappings as name: value."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if isinstance(value, Mapping):
        return "; ".join(f"{name}: {readable(item)}" for name, item in value.items())
    if isinstance(value, list | tuple | set):
        return ", ".join(readable(item) for item in value) or "—"
    return str(value)

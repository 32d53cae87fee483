"""Counted words in both languages: "1 credit", "just now", "3 minutes ago".

Every count goes through ngettext so Urdu (and any later language) picks its own plural form;
Django's `timesince` alone gives "0 minutes" under a minute and no "ago".
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

register = template.Library()

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def plural_count(value: object) -> int:
    """The n that picks the plural form: a fraction (1.5 credits) reads as plural."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return 2
    return int(number) if number == number.to_integral_value() else 2


@register.filter
def credits(value: object) -> str:
    """ "1 credit", "2.5 credits", "1,000 credits"."""
    if value is None or value == "":
        return "—"
    shown = floatformat(value, "-2g")
    return ngettext("%(count)s credit", "%(count)s credits", plural_count(value)) % {"count": shown}


def ago_text(then: datetime, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or timezone.now()) - then).total_seconds()))
    if seconds < MINUTE:
        return _("just now")
    if seconds < HOUR:
        count = seconds // MINUTE
        return ngettext("%(count)d minute ago", "%(count)d minutes ago", count) % {"count": count}
    if seconds < DAY:
        count = seconds // HOUR
        return ngettext("%(count)d hour ago", "%(count)d hours ago", count) % {"count": count}
    count = seconds // DAY
    return ngettext("%(count)d day ago", "%(count)d days ago", count) % {"count": count}


@register.filter
def ago(value: datetime | None) -> str:
    """How long ago, in whole units: "just now" under a minute, then minutes, hours, days."""
    if value is None:
        return "—"
    return ago_text(value)

from django import template
from django.utils.dateparse import parse_datetime

register = template.Library()


@register.filter
def api_time(value: str | None) -> str:
    """An API timestamp ("2026-05-11T00:01:00.000Z") as the console shows times, in UTC."""
    parsed = parse_datetime(str(value or ""))
    return parsed.strftime("%Y-%m-%d %H:%M:%S") if parsed else "—"

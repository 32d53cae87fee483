from django import template
from django.utils.dateparse import parse_datetime

from rivya_dashboard.console.models import Generation
from rivya_dashboard.webhooks.generation_updates import update_path

register = template.Library()


@register.inclusion_tag("webhooks/includes/update_path.html")
def generation_update_path(generation: Generation) -> dict:
    """Which path finished a job: a verified webhook (with its event) or polling."""
    return {"job": generation, "webhook_request": update_path(generation)}


@register.filter
def api_time(value: str | None) -> str:
    """An API timestamp ("2026-05-11T00:01:00.000Z") as the console shows times, in UTC."""
    parsed = parse_datetime(str(value or ""))
    return parsed.strftime("%Y-%m-%d %H:%M:%S") if parsed else "—"

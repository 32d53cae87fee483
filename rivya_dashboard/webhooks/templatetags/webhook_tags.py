from django import template
from django.utils.dateparse import parse_datetime

from rivya_dashboard import visibility
from rivya_dashboard.console.models import Generation
from rivya_dashboard.webhooks.generation_updates import update_path

register = template.Library()


@register.inclusion_tag("webhooks/includes/update_path.html", takes_context=True)
def generation_update_path(context: template.Context, generation: Generation) -> dict:
    """Which path finished a job: a verified webhook (its event linked for those who may see the
    inbox's requests) or polling."""
    found = update_path(generation)
    visible = visibility.visible_inbox_requests(context["user"])
    shown = found if found is not None and visible.filter(pk=found.pk).exists() else None
    return {"job": generation, "webhook_request": shown, "by_webhook": found is not None}


@register.filter
def api_time(value: str | None) -> str:
    """An API timestamp ("2026-05-11T00:01:00.000Z") as the console shows times, in UTC."""
    parsed = parse_datetime(str(value or ""))
    return parsed.strftime("%Y-%m-%d %H:%M:%S") if parsed else "—"

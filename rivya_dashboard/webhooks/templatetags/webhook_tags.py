from django import template

from rivya_dashboard.console.models import Generation
from rivya_dashboard.webhooks.generation_updates import update_path

register = template.Library()


@register.inclusion_tag("webhooks/includes/update_path.html")
def generation_update_path(generation: Generation) -> dict:
    """Which path finished a job: a verified webhook (with its event) or polling."""
    return {"job": generation, "webhook_request": update_path(generation)}

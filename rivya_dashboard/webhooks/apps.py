from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "rivya_dashboard.webhooks"
    label = "webhooks"

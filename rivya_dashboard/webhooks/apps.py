from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "rivya_dashboard.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        from rivya_dashboard.console import tasks
        from rivya_dashboard.webhooks import inbox_limits

        # Retention and a recount of every inbox's totals, once a minute with the other chores.
        tasks.register_housekeeping(inbox_limits.do_enforce_all)

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "rivya_dashboard.console"
    label = "console"

    def ready(self) -> None:
        from rivya_dashboard import metrics, outbound
        from rivya_dashboard.console import task_origin, tasks

        tasks.register_housekeeping(task_origin.prune_origins)
        outbound.add_exchange_listener(metrics.record_exchange)

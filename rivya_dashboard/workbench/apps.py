from django.apps import AppConfig


class WorkbenchConfig(AppConfig):
    name = "rivya_dashboard.workbench"
    label = "workbench"

    def ready(self) -> None:
        from rivya_dashboard import outbound
        from rivya_dashboard.console.tasks import register_housekeeping
        from rivya_dashboard.workbench import documents, inspector, recorder

        register_housekeeping(documents.do_refresh_stale)
        register_housekeeping(inspector.do_prune)
        outbound.add_exchange_listener(recorder.record_exchange)

from django.apps import AppConfig
from django.conf import settings

from rivya_dashboard.data_dir import make_private


class ConsoleConfig(AppConfig):
    name = "rivya_dashboard.console"
    label = "console"

    def ready(self) -> None:
        # Every process (web, worker, manage.py) writes into the data directory: from here on
        # whatever it creates there is readable by the console's own user only.
        make_private(settings.DATA_DIR)
        from rivya_dashboard import metrics, outbound
        from rivya_dashboard.console import first_reads, task_origin, tasks
        from rivya_dashboard.vault.keys import key_added

        tasks.register_housekeeping(task_origin.prune_origins)
        outbound.add_exchange_listener(metrics.record_exchange)
        key_added.connect(first_reads.on_key_added, dispatch_uid="console-first-reads")

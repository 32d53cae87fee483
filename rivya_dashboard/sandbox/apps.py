from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "rivya_dashboard.sandbox"
    label = "sandbox"

    def ready(self) -> None:
        # Connects the receivers that turn finished generations into webhook events.
        from rivya_dashboard.sandbox import webhooks_delivery  # noqa: F401

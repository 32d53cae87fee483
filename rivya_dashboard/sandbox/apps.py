from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "rivya_dashboard.sandbox"
    label = "sandbox"

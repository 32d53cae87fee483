from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "rivya_dashboard.console"
    label = "console"

from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "rivya_dashboard.vault"
    label = "vault"

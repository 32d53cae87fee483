from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "rivya_dashboard.accounts"
    label = "accounts"

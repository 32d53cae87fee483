from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "rivya_dashboard.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from rivya_dashboard.accounts.middleware import stamp_session_start

        user_logged_in.connect(stamp_session_start, dispatch_uid="rivya-session-start")

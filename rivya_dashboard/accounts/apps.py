from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "rivya_dashboard.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from rivya_dashboard.accounts.member_sessions import end_tracked_session
        from rivya_dashboard.accounts.middleware import stamp_session_start

        user_logged_in.connect(stamp_session_start, dispatch_uid="rivya-session-start")
        user_logged_out.connect(end_tracked_session, dispatch_uid="rivya-session-end")

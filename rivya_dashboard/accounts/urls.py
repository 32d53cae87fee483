from django.contrib.auth import views as auth_views
from django.urls import path

from rivya_dashboard.accounts import (
    passkey_views,
    reauth_views,
    second_factor_views,
    session_views,
    views,
)

urlpatterns = [
    path("login/", views.sign_in, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("team/", views.team_page, name="team"),
    path("team/invites/", views.invite_create, name="invite-create"),
    path("team/invites/<int:pk>/revoke/", views.invite_revoke, name="invite-revoke"),
    path("team/members/<int:pk>/role/", views.member_role, name="member-role"),
    path("team/members/<int:pk>/active/", views.member_active, name="member-active"),
    path("invite/<str:token>/", views.invite_accept, name="invite-accept"),
    path("security/", second_factor_views.my_security, name="my-security"),
    path("security/authenticator/", second_factor_views.totp_enrol, name="totp-enrol"),
    path("security/authenticator/remove/", second_factor_views.totp_remove, name="totp-remove"),
    path("security/recovery-codes/", second_factor_views.recovery_codes, name="recovery-codes"),
    path("security/passkeys/add/", passkey_views.passkey_add, name="passkey-add"),
    path("security/passkeys/<int:pk>/remove/", passkey_views.passkey_remove, name="passkey-remove"),
    path("security/password/", session_views.password_change, name="password-change"),
    path("security/sessions/<int:pk>/end/", session_views.session_end, name="session-end"),
    path(
        "security/sessions/end-others/",
        session_views.sessions_end_others,
        name="sessions-end-others",
    ),
    path("verify/", second_factor_views.verify, name="mfa-verify"),
    path("confirm/", reauth_views.confirm, name="reauth-confirm"),
    path("team-security/", second_factor_views.security_page, name="security"),
    path("team-security/policy/", second_factor_views.security_policy, name="security-policy"),
    path(
        "team-security/members/<int:pk>/reset/",
        second_factor_views.member_mfa_reset,
        name="member-mfa-reset",
    ),
    path(
        "team-security/members/<int:pk>/sign-out/",
        session_views.member_sign_out,
        name="member-sign-out",
    ),
    path("audit/", views.audit_page, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
]

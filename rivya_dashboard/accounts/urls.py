from django.contrib.auth import views as auth_views
from django.urls import path

from rivya_dashboard.accounts import views

urlpatterns = [
    path("login/", views.sign_in, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("team/", views.team_page, name="team"),
    path("team/invites/", views.invite_create, name="invite-create"),
    path("team/invites/<int:pk>/revoke/", views.invite_revoke, name="invite-revoke"),
    path("team/members/<int:pk>/role/", views.member_role, name="member-role"),
    path("team/members/<int:pk>/active/", views.member_active, name="member-active"),
    path("invite/<str:token>/", views.invite_accept, name="invite-accept"),
    path("audit/", views.audit_page, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
]

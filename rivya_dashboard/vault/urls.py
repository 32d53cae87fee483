from django.urls import path

from rivya_dashboard.vault import views

urlpatterns = [
    path("keys/", views.keys_page, name="keys"),
    path("keys/add/", views.key_add, name="key-add"),
    path("keys/sandbox/", views.key_sandbox, name="key-sandbox"),
    path("keys/<int:pk>/", views.key_detail, name="key-detail"),
    path("keys/<int:pk>/test/", views.key_test, name="key-test"),
    path("keys/<int:pk>/replace/", views.key_replace, name="key-replace"),
    path("keys/<int:pk>/status/", views.key_status, name="key-status"),
    path("keys/<int:pk>/delete/", views.key_delete, name="key-delete"),
    path("keys/<int:pk>/grants/", views.grant_create, name="grant-create"),
    path("grants/<int:pk>/", views.grant_edit, name="grant-edit"),
    path("grants/<int:pk>/revoke/", views.grant_revoke, name="grant-revoke"),
]

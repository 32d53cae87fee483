"""The API workbench under /workbench/ (namespace "workbench")."""

from django.urls import path

from rivya_dashboard.workbench import views

app_name = "workbench"

urlpatterns = [
    path("", views.explorer, name="explorer"),
    path("refresh/", views.explorer_refresh, name="refresh"),
    path("send/", views.explorer_send, name="send"),
    path("stream/<str:token>/", views.explorer_stream, name="stream"),
    path("calls/", views.calls, name="calls"),
    path("calls/<int:pk>/", views.call_detail, name="call"),
    path("saved/", views.saved_requests, name="saved"),
    path("saved/new/", views.save_request, name="save"),
    path("saved/<int:pk>/delete/", views.saved_delete, name="saved-delete"),
]

from django.urls import path

from rivya_dashboard.webhooks.views import endpoints, inbox, receiver

ENDPOINT = "webhooks/<int:key_pk>/endpoints/<str:endpoint_id>/"

urlpatterns = [
    path("webhooks/", endpoints.webhooks_page, name="webhooks"),
    path("webhooks/<int:key_pk>/new/", endpoints.webhook_create, name="webhook-create"),
    path(
        "webhooks/<int:key_pk>/deliveries/",
        endpoints.webhook_deliveries,
        name="webhook-deliveries",
    ),
    path("webhooks/<int:key_pk>/events/", endpoints.webhook_events, name="webhook-events"),
    path(ENDPOINT, endpoints.webhook_detail, name="webhook-detail"),
    path(ENDPOINT + "edit/", endpoints.webhook_edit, name="webhook-edit"),
    path(ENDPOINT + "status/", endpoints.webhook_status, name="webhook-status"),
    path(ENDPOINT + "rotate/", endpoints.webhook_rotate, name="webhook-rotate"),
    path(ENDPOINT + "delete/", endpoints.webhook_delete, name="webhook-delete"),
    path(ENDPOINT + "test/", endpoints.webhook_test, name="webhook-test"),
    path(
        "webhooks/alerts/<int:pk>/acknowledge/",
        endpoints.alert_acknowledge,
        name="webhook-alert-ack",
    ),
    path("inbox/", inbox.inbox_list, name="inbox"),
    path("inbox/new/", inbox.inbox_create, name="inbox-create"),
    path("inbox/<int:pk>/", inbox.inbox_detail, name="inbox-detail"),
    path("inbox/<int:pk>/settings/", inbox.inbox_settings, name="inbox-settings"),
    path("inbox/<int:pk>/secrets/", inbox.inbox_secret, name="inbox-secret"),
    path("inbox/<int:pk>/delete/", inbox.inbox_delete, name="inbox-delete"),
    path("inbox/<int:pk>/doctor/", inbox.inbox_doctor, name="inbox-doctor"),
    path("inbox/<int:pk>/replay/", inbox.inbox_bulk_replay, name="inbox-bulk-replay"),
    path("inbox/requests/<int:pk>/", inbox.inbox_request, name="inbox-request"),
    path("inbox/requests/<int:pk>/replay/", inbox.inbox_replay, name="inbox-replay"),
    path("hooks/<str:token>/", receiver.receive, name="inbox-receive"),
]

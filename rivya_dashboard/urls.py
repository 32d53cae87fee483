"""Top-level URL map; each app owns its namespace."""

from django.urls import include, path

from rivya_dashboard import metrics
from rivya_dashboard.accounts import language
from rivya_dashboard.accounts import views as account_views
from rivya_dashboard.console import views as console_views

urlpatterns = [
    path("", console_views.home, name="home"),
    path("healthz", console_views.healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("setup/", account_views.setup, name="setup"),
    path("language/", language.choose_language, name="language"),
    path("accounts/", include("rivya_dashboard.accounts.urls")),
    path("sandbox/", include("rivya_dashboard.sandbox.urls")),
    path("", include("rivya_dashboard.vault.urls")),
    path("", include("rivya_dashboard.console.urls")),
    path("chat/", include("rivya_dashboard.chat.urls")),
    path("", include("rivya_dashboard.webhooks.urls")),
    path("workbench/", include("rivya_dashboard.workbench.urls")),
]

handler403 = "rivya_dashboard.console.views.forbidden"
handler404 = "rivya_dashboard.console.views.not_found"
handler500 = "rivya_dashboard.console.views.server_error"

"""Models, generations and files."""

from django.urls import path

from rivya_dashboard.console.views import catalogue, credits, files, generate, jobs, ledger, usage

urlpatterns = [
    path("models/", catalogue.catalogue, name="models"),
    path("models/refresh/", catalogue.catalogue_refresh, name="models-refresh"),
    # A model id is any string (contract §4); one with a slash must still have its page.
    path("models/<path:model_id>/", catalogue.model_detail, name="model-detail"),
    path("generate/", generate.generate, name="generate"),
    path("generate/submit/", generate.generate_submit, name="generate-submit"),
    path("generate/estimate/", generate.generate_estimate, name="generate-estimate"),
    path("generate/upload/", generate.generate_upload, name="generate-upload"),
    path("generate/side-by-side/", jobs.side_by_side, name="side-by-side"),
    path("generations/", jobs.history_page, name="history"),
    path("generations/gallery/", jobs.gallery, name="gallery"),
    path("generations/<int:pk>/", jobs.job, name="generation"),
    path("generations/<int:pk>/status/", jobs.job_status, name="generation-status"),
    path("generations/<int:pk>/row/", jobs.job_row, name="generation-row"),
    path("generations/<int:pk>/run-again/", jobs.job_rerun, name="generation-rerun"),
    path("generations/<int:pk>/delete/", jobs.job_delete, name="generation-delete"),
    path(
        "generations/<int:pk>/outputs/<int:position>/",
        jobs.output_media,
        name="generation-output",
    ),
    path("credits/", credits.credits_page, name="credits"),
    path("credits/<int:pk>/refresh/", credits.credits_refresh, name="credits-refresh"),
    path("credits/<int:pk>/alert/", credits.credits_alert, name="credits-alert"),
    path("ledger/", ledger.ledger_page, name="ledger"),
    path("ledger/export.csv", ledger.ledger_export, name="ledger-export"),
    path("usage/", usage.usage_page, name="usage"),
    path("usage/export.csv", usage.usage_export, name="usage-export"),
    path("files/", files.files_page, name="files"),
    path("files/upload/", files.file_upload, name="file-upload"),
    path("files/<int:pk>/", files.file_detail, name="file-detail"),
]

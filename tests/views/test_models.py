"""The model catalogue: cached copy, refresh, outage, filters, a model's page."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.console import models_catalog, tasks
from rivya_dashboard.console.models import CatalogueModel, CatalogueSync
from rivya_dashboard.sandbox import faults

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast(settings):
    settings.RIVYA_SANDBOX_RATE_LIMIT = 10_000
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


def test_refresh_stores_every_model(owner_client, vault_key):
    response = owner_client.post(reverse("models-refresh"))
    assert response.status_code == 302
    assert CatalogueModel.objects.count() == 39
    z_image = CatalogueModel.objects.get(model_id="z-image")
    assert z_image.base_credits == 1 and z_image.billing_type == "FIXED"
    assert CatalogueSync.current().fetched_at is not None


def test_the_page_lists_models_with_price_and_status(clients, vault_key, members):
    models_catalog.do_refresh(vault_key, members[Role.OWNER])
    html = clients[Role.VIEWER].get(reverse("models")).content.decode()
    assert "Nano Banana 2" in html and "coming_soon" in html
    assert "Refresh from the API" not in html  # viewers cannot call the API


@pytest.mark.parametrize(
    ("query", "present", "absent"),
    [
        ({"category": "audio"}, "Suno Music", "Z-Image"),
        ({"api_status": "coming_soon"}, "demo-coming-soon-video", "Z-Image"),
        ({"billing_type": "METERED"}, "ElevenLabs Turbo 2.5", "Suno Music"),
        ({"input_kind": "url"}, "Sora Watermark Remover", "Z-Image"),
        ({"q": "banana"}, "Nano Banana 2", "Suno Music"),
    ],
)
def test_filters(owner_client, vault_key, members, query, present, absent):
    models_catalog.do_refresh(vault_key, members[Role.OWNER])
    response = owner_client.get(reverse("models"), query, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert 'id="model-list"' in html and "<html" not in html
    assert present in html and absent not in html


def test_outage_keeps_the_copy_and_shows_the_error_with_its_age(owner_client, vault_key, members):
    models_catalog.do_refresh(vault_key, members[Role.OWNER])
    CatalogueSync.objects.update(fetched_at=timezone.now() - timedelta(hours=3))
    faults.set_global_faults({"status": 503})
    owner_client.post(reverse("models-refresh"))
    html = owner_client.get(reverse("models")).content.decode()
    assert "Z-Image" in html
    assert "The last refresh failed" in html and "req_" in html
    assert "Showing the saved copy from 3" in html


def test_a_model_gone_from_the_api_disappears(vault_key, members):
    models_catalog.do_refresh(vault_key, members[Role.OWNER])
    models_catalog.do_store_catalogue({"data": [{"id": "only-one", "display_name": "Only"}]})
    assert list(CatalogueModel.objects.values_list("model_id", flat=True)) == ["only-one"]


def test_an_operator_without_a_browse_grant_cannot_refresh(clients, vault_key):
    response = clients[Role.OPERATOR].post(reverse("models-refresh"), follow=True)
    assert "no key to browse with" in response.content.decode()
    assert not CatalogueModel.objects.exists()


def test_the_periodic_task_refreshes_a_stale_catalogue(vault_key, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    tasks.housekeeping.call()
    assert CatalogueModel.objects.count() == 39
    fetched = CatalogueSync.current().fetched_at
    tasks.housekeeping.call()
    assert CatalogueSync.current().fetched_at == fetched  # fresh copy: no second call


def test_model_page_shows_params_rules_and_price(owner_client, vault_key, members):
    models_catalog.do_refresh(vault_key, members[Role.OWNER])
    html = owner_client.get(reverse("model-detail", args=["nano-banana-2"])).content.decode()
    assert "Upload up to 14 image files." in html
    assert "google_search" in html and "30.0\xa0MB" in html
    assert "20000 characters" in html
    assert "Generate with this model" in html


def test_a_model_id_with_a_slash_has_a_card_and_a_page(owner_client):
    models_catalog.do_store_catalogue({"data": [{"id": "vendor/model", "display_name": "Slashed"}]})
    assert "/models/vendor/model/" in owner_client.get(reverse("models")).content.decode()
    page = owner_client.get(reverse("model-detail", args=["vendor/model"]))
    assert page.status_code == 200 and "Slashed" in page.content.decode()


def test_unknown_model_is_404(owner_client):
    assert owner_client.get(reverse("model-detail", args=["nope"])).status_code == 404


def test_pages_carry_their_server_time(owner_client):
    timing = owner_client.get(reverse("models"))["Server-Timing"]
    assert timing.startswith("app;dur=") and float(timing.split("=")[1]) >= 0


def test_filter_options_and_cards_show_labels_not_raw_values(owner_client, vault_key, members):
    models_catalog.do_refresh(vault_key, members[Role.OWNER])
    html = owner_client.get(reverse("models")).content.decode()
    assert '<option value="coming_soon">Coming soon</option>' in html
    assert '<option value="TOKEN_BASED">Per token</option>' in html
    assert ">coming_soon<" not in html and ">TOKEN_BASED<" not in html

"""Cache-Control: no-store on every team page, export and file; public things stay public."""

import pytest
from django.templatetags.static import static
from django.test import Client
from django.urls import reverse

from rivya_dashboard.console import media_cache
from rivya_dashboard.console.models import Generation, Output
from tests.views.test_access_matrix import ACCESS, url_for

pytestmark = pytest.mark.django_db

GET_PAGES = sorted(name for name, access in ACCESS.items() if access.method == "GET")


def assert_no_store(response, what) -> None:
    assert response["Cache-Control"] == "no-store", (what, response.status_code)


@pytest.mark.parametrize("name", [name for name in GET_PAGES if name != "healthz"])
def test_it_sends_no_store_on_every_page_and_export(name, clients, members):
    url = url_for(name, ACCESS[name], {**members, "target": members["viewer"]})

    assert_no_store(clients["owner"].get(url), name)


def test_it_sends_no_store_on_redirects_errors_and_posts(clients):
    assert_no_store(clients["outsider"].get(reverse("keys")), "sign-in redirect")
    assert_no_store(clients["owner"].get("/no-such-page/"), "404")
    assert_no_store(clients["owner"].post(reverse("models-refresh")), "post")


def test_it_sends_no_store_on_a_cached_generation_output(clients, members):
    job = Generation.objects.create(
        member=members["owner"],
        member_name="owner",
        key_label="k",
        model_id="z-image",
        idempotency_key="i",
    )
    output = Output.objects.create(
        generation=job, position=0, cached_name=f"{job.pk}-0.png", content_type="image/png"
    )
    media_cache.cache_dir().mkdir(parents=True, exist_ok=True)
    media_cache.cached_path(output).write_bytes(b"\x89PNG")

    response = clients["owner"].get(reverse("generation-output", args=[job.pk, 0]))

    assert response.status_code == 200
    assert_no_store(response, "output file")


def test_it_keeps_healthz_public_but_always_revalidated(client):
    response = client.get(reverse("healthz"))

    assert response["Cache-Control"] == "public, no-cache"


def test_it_leaves_static_files_cacheable(settings):
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    response = Client().get(static("css/console.css"))

    assert response.status_code == 200
    assert "public" in response["Cache-Control"]
    assert "no-store" not in response["Cache-Control"]

"""Saved requests: kept in shared collections without the key, seen by members who hold a grant
on the key, opened in the explorer with their values, refused cleanly on bad input."""

import pytest
from django.urls import reverse

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.vault.models import KeyGrant
from rivya_dashboard.workbench.models import Collection, SavedRequest
from tests.views.test_canary import database_dump
from tests.views.test_generate import catalogue, fast  # noqa: F401 - shared fixtures
from tests.views.test_workbench_explorer import documented  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
SAVE = reverse("workbench:save")


def save(client, key, **fields):
    data = {
        "op": "createGeneration",
        "key": str(key.pk),
        "body.model": "z-image",
        "body.prompt": "a saved kite",
        "header.Idempotency-Key": "explorer-keep-me-not",
        "name": "Kite",
        "note": "for the demo",
        "collection": "Demos",
        **fields,
    }
    return client.post(SAVE, data)


def test_a_request_is_saved_without_the_key_and_opens_with_its_values(
    owner_client,
    documented,  # noqa: F811
    sandbox_key,
):
    response = save(owner_client, documented, raw_body=f'{{"note": "{sandbox_key}"}}')
    saved = SavedRequest.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"?saved={saved.pk}")
    assert saved.collection.name == "Demos" and saved.key_label == documented.label
    assert saved.values["body.prompt"] == "a saved kite"
    assert "header.Idempotency-Key" not in saved.values
    assert sandbox_key not in database_dump()
    page = owner_client.get(reverse("workbench:explorer"), {"saved": saved.pk}).content.decode()
    assert 'value="a saved kite"' in page and "Loaded the saved request “Kite”" in page
    listing = owner_client.get(reverse("workbench:saved")).content.decode()
    assert "Demos" in listing and "Kite" in listing and "for the demo" in listing


def test_a_second_save_joins_the_collection(owner_client, documented):  # noqa: F811
    save(owner_client, documented)
    save(owner_client, documented, name="Kite again")
    assert Collection.objects.count() == 1 and SavedRequest.objects.count() == 2


def test_visibility_follows_the_key_grants(clients, members, owner_client, documented):  # noqa: F811
    save(owner_client, documented)
    saved = SavedRequest.objects.get()
    operator = clients[Role.OPERATOR]
    assert "Kite" not in operator.get(reverse("workbench:saved")).content.decode()
    opened = operator.get(reverse("workbench:explorer"), {"saved": saved.pk})
    assert opened.status_code == 404
    KeyGrant.objects.create(member=members[Role.OPERATOR], key=documented, actions=["browse"])
    assert "Kite" in operator.get(reverse("workbench:saved")).content.decode()
    delete = operator.post(reverse("workbench:saved-delete", args=[saved.pk]))
    assert delete.status_code == 403 and SavedRequest.objects.exists()


def test_bad_input_is_refused_and_nothing_is_written(clients, owner_client, documented):  # noqa: F811
    response = save(owner_client, documented, name="", collection="")
    assert response.status_code == 400 and b"This field is required" in response.content
    refused = save(clients[Role.OPERATOR], documented)
    assert refused.status_code == 403 and b"hold a grant on" in refused.content
    assert not SavedRequest.objects.exists() and not Collection.objects.exists()


def test_the_owner_deletes_and_an_empty_collection_goes(owner_client, documented):  # noqa: F811
    save(owner_client, documented)
    saved = SavedRequest.objects.get()
    response = owner_client.post(reverse("workbench:saved-delete", args=[saved.pk]))
    assert response.status_code == 302
    assert not SavedRequest.objects.exists() and not Collection.objects.exists()

"""Migration console 0003: jobs keep their model's category, and result URLs move to Outputs."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("console", "0002_balance_readings_alerts")]
AFTER = [("console", "0003_generation_category_outputs_hold_urls")]


def migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps(transactional_db):
    yield migrate(BEFORE)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_result_urls_become_outputs_and_categories_are_copied(old_apps):
    Generation = old_apps.get_model("console", "Generation")
    Output = old_apps.get_model("console", "Output")
    CatalogueModel = old_apps.get_model("console", "CatalogueModel")
    CatalogueModel.objects.create(model_id="suno-music", display_name="Suno", category="audio")
    urls = ["javascript:alert(1)", "https://media.example/a.mp3", "https://media.example/b.mp3"]
    job = Generation.objects.create(
        member_name="m", key_label="k", model_id="suno-music", idempotency_key="i", result_urls=urls
    )
    Output.objects.create(generation=job, position=1, original_url=urls[1], cached_name="1-1.mp3")
    new_apps = migrate(AFTER)
    Generation = new_apps.get_model("console", "Generation")
    Output = new_apps.get_model("console", "Output")
    migrated = Generation.objects.get(pk=job.pk)
    assert migrated.category == "audio"
    assert not hasattr(migrated, "result_urls")
    outputs = Output.objects.filter(generation=migrated).order_by("position")
    assert [(o.position, o.original_url, o.cached_name) for o in outputs] == [
        (1, urls[1], "1-1.mp3"),
        (2, urls[2], ""),
    ]

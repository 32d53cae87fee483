"""Generations remember their model's category; result URLs live only on the Output rows."""

from urllib.parse import urlsplit

from django.db import migrations, models


def copy_categories(apps, schema_editor):
    Generation = apps.get_model("console", "Generation")
    CatalogueModel = apps.get_model("console", "CatalogueModel")
    for model_id, category in CatalogueModel.objects.values_list("model_id", "category"):
        Generation.objects.filter(model_id=model_id).update(category=category)


def urls_to_outputs(apps, schema_editor):
    """Every web address of result_urls becomes an Output at its position (if it is not one yet)."""
    Generation = apps.get_model("console", "Generation")
    Output = apps.get_model("console", "Output")
    for generation in Generation.objects.exclude(result_urls=[]).iterator():
        for position, url in enumerate(generation.result_urls or []):
            if not isinstance(url, str) or len(url) > 2000:
                continue
            if urlsplit(url).scheme not in ("http", "https"):
                continue
            Output.objects.get_or_create(
                generation=generation, position=position, defaults={"original_url": url}
            )


def outputs_to_urls(apps, schema_editor):
    Generation = apps.get_model("console", "Generation")
    for generation in Generation.objects.filter(outputs__isnull=False).distinct().iterator():
        outputs = generation.outputs.order_by("position")
        generation.result_urls = [output.original_url for output in outputs]
        generation.save(update_fields=["result_urls"])


class Migration(migrations.Migration):
    dependencies = [("console", "0002_balance_readings_alerts")]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="category",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.RunPython(copy_categories, migrations.RunPython.noop),
        migrations.RunPython(urls_to_outputs, outputs_to_urls),
        migrations.RemoveField(model_name="generation", name="result_urls"),
    ]

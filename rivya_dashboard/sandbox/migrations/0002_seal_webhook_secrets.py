"""Seal the webhook signing secrets that earlier versions kept in plain text."""

from importlib import import_module

from django.conf import settings
from django.db import migrations, models

import rivya_dashboard.sandbox.models.webhooks

PAIRS = (("signing_secret", "sealed_signing_secret"), ("previous_secret", "sealed_previous_secret"))


def seal_existing(apps, schema_editor) -> None:
    sealer = import_module(settings.RIVYA_SANDBOX_SEALER)
    endpoints = apps.get_model("sandbox", "WebhookEndpoint")
    table = endpoints._meta.db_table
    for endpoint in endpoints.objects.only("pk", *(plain for plain, _ in PAIRS)).iterator():
        for plain, sealed in PAIRS:
            value = getattr(endpoint, plain)
            row = f"{table}:{endpoint.pk}:{sealed}"
            setattr(endpoint, sealed, sealer.encrypt(value, row=row) if value else "")
        endpoint.save(update_fields=[sealed for _, sealed in PAIRS])


def unseal_existing(apps, schema_editor) -> None:
    sealer = import_module(settings.RIVYA_SANDBOX_SEALER)
    endpoints = apps.get_model("sandbox", "WebhookEndpoint")
    table = endpoints._meta.db_table
    for endpoint in endpoints.objects.iterator():
        for plain, sealed in PAIRS:
            token = getattr(endpoint, sealed)
            row = f"{table}:{endpoint.pk}:{sealed}"
            setattr(endpoint, plain, sealer.decrypt(token, row=row) if token else "")
        endpoint.save(update_fields=[plain for plain, _ in PAIRS])


class Migration(migrations.Migration):
    dependencies = [("sandbox", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="sealed_signing_secret",
            field=rivya_dashboard.sandbox.models.webhooks.SealedSecretField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="sealed_previous_secret",
            field=rivya_dashboard.sandbox.models.webhooks.SealedSecretField(blank=True, default=""),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="signing_secret",
            field=models.CharField(
                blank=True, default="", max_length=80
            ),
        ),
        migrations.RunPython(seal_existing, unseal_existing, elidable=False),
        migrations.RemoveField(model_name="webhookendpoint", name="signing_secret"),
        migrations.RemoveField(model_name="webhookendpoint", name="previous_secret"),
    ]

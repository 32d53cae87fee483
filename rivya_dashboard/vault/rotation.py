"""Re-encrypt every stored secret under the keyring's primary key, in batches.

Secrets are found by their column's `holds_ciphertext` mark (crypto.EncryptedTextField, the
sandbox's SealedSecretField), so a secret column added by another app is rotated without
registering it here.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models, transaction

from rivya_dashboard.vault import crypto


@dataclass
class RotationReport:
    reencrypted: int = 0
    current: int = 0
    empty: int = 0
    failed: list[str] = field(default_factory=list)
    # Key id -> how many ciphertexts still use it after the run.
    in_use: dict[str, int] = field(default_factory=dict)


def encrypted_columns() -> Iterator[tuple[type[models.Model], str]]:
    for model in apps.get_models():
        for column in model._meta.get_fields():
            if getattr(column, "holds_ciphertext", False):
                yield model, column.name


def row_binding(model: type[models.Model], pk: object, name: str) -> str:
    return f"{model._meta.db_table}:{pk}:{name}"


def rotate_batch(
    model: type[models.Model], name: str, pks: list, ring: crypto.Keyring, report: RotationReport
) -> None:
    with transaction.atomic():
        # Locked, so a value replaced meanwhile is not overwritten with its old secret.
        rows = model.objects.select_for_update().filter(pk__in=pks).values_list("pk", name)
        changed = []
        for pk, token in rows:
            key_id = crypto.key_id_of(token or "")
            if not token:
                report.empty += 1
                continue
            if key_id == ring.primary_id:
                report.current += 1
                continue
            row = row_binding(model, pk, name)
            try:
                plain = crypto.decrypt(token, row=row, ring=ring)
            except crypto.DecryptionError as exc:
                report.failed.append(str(exc))
                continue
            changed.append(model(pk=pk, **{name: crypto.encrypt(plain, row=row, ring=ring)}))
        model.objects.bulk_update(changed, [name])
        report.reencrypted += len(changed)


def reencrypt_all(batch_size: int = 500) -> RotationReport:
    ring = crypto.keyring(refresh=True)
    report = RotationReport()
    for model, name in encrypted_columns():
        last = None
        while True:
            pks = model.objects.order_by("pk")
            if last is not None:
                pks = pks.filter(pk__gt=last)
            batch = list(pks.values_list("pk", flat=True)[:batch_size])
            if not batch:
                break
            rotate_batch(model, name, batch, ring, report)
            last = batch[-1]
    report.in_use = key_ids_in_use()
    return report


def key_ids_in_use() -> dict[str, int]:
    counts: dict[str, int] = {}
    for model, name in encrypted_columns():
        for token in model.objects.values_list(name, flat=True).iterator(chunk_size=2000):
            key_id = crypto.key_id_of(token or "")
            if key_id:
                counts[key_id] = counts.get(key_id, 0) + 1
    return counts

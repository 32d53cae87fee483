"""A covering index for the Usage page's aggregates over the vault's ledger.

The usage report groups the ledger of a date range by day, member, key, model, operation and
status; with every column it reads in one index that starts with `at`, SQLite and PostgreSQL
answer from the index alone instead of fetching 100,000 table rows. The index serves the console,
and the vault imports nothing of the console, so it is created here, by name, in plain SQL that
both databases accept.
"""

from django.db import migrations

COLUMNS = (
    "at, member_name, key_label, model, operation, http_status, credits_final, credits_reserved"
)


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0002_balance_readings_alerts"),
        ("vault", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX console_ledger_usage ON vault_ledgerentry ({COLUMNS})",
            "DROP INDEX console_ledger_usage",
        )
    ]

"""manage.py backup PATH: a consistent copy of the database and the media cache, with a
manifest; the keyring and SECRET_KEY only with --with-secrets, encrypted under a passphrase."""

import getpass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rivya_dashboard.console.backup import BackupError, do_backup
from rivya_dashboard.env import env_secret

PASSPHRASE_ENV = "RIVYA_BACKUP_PASSPHRASE"  # noqa: S105 - a variable name


def read_passphrase(asked: bool, confirm: bool) -> str | None:
    if not asked:
        return None
    given = env_secret("RIVYA_BACKUP_PASSPHRASE")
    passphrase = given or getpass.getpass("Backup passphrase: ")
    if confirm and not given and getpass.getpass("Again: ") != passphrase:
        raise CommandError("The passphrases differ; run the command again.")
    if len(passphrase) < 12:
        raise CommandError("Use a passphrase of at least 12 characters.")
    return passphrase


class Command(BaseCommand):
    help = "Back up the database and media cache to a new directory."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="A new (or empty) directory.")
        parser.add_argument(
            "--with-secrets",
            action="store_true",
            help=f"Also store SECRET_KEY and the keyring, encrypted under a passphrase "
            f"(asked for, or {PASSPHRASE_ENV}).",
        )

    def handle(self, *args: object, **options: object) -> None:
        passphrase = read_passphrase(options["with_secrets"], confirm=True)
        try:
            summary = do_backup(options["path"], passphrase=passphrase)
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Backed up {sum(summary.rows.values())} rows and {summary.files} files "
            f"({summary.bytes} bytes) to {summary.path}"
        )

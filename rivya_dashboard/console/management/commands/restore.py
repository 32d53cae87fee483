"""manage.py restore PATH: a backup into this console's new data directory (RIVYA_DATA_DIR) or
empty PostgreSQL database; every checksum is checked first, and a console in use is refused."""

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rivya_dashboard.console.backup import BackupError, do_restore
from rivya_dashboard.console.management.commands.backup import read_passphrase


class Command(BaseCommand):
    help = "Restore a backup made by `manage.py backup` into a new data directory."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The backup's directory.")
        parser.add_argument(
            "--with-secrets",
            action="store_true",
            help="The backup holds encrypted secrets: ask for (or read) its passphrase.",
        )

    def handle(self, *args: object, **options: object) -> None:
        passphrase = read_passphrase(options["with_secrets"], confirm=False)
        try:
            manifest = do_restore(options["path"], passphrase=passphrase)
        except BackupError as error:
            raise CommandError(str(error)) from None
        # A backup of an older release gets this release's migrations.
        call_command("migrate", interactive=False, verbosity=0)
        rows = sum(manifest["rows"].values())
        self.stdout.write(f"Restored {rows} rows and {len(manifest['files'])} files.")

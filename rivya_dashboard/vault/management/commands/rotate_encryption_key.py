"""Add a new encryption key and re-encrypt every stored secret under it."""

from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from rivya_dashboard.accounts.audit import record
from rivya_dashboard.vault import crypto, rotation


class Command(BaseCommand):
    help = (
        "Put a new key first in the keyring (the console's own keyring file; with RIVYA_KEYRING "
        "set, add it there yourself and restart first), re-encrypt every stored secret under it "
        "in batches, and report counts. --remove-old then drops keys nothing uses any more."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--remove-old",
            action="store_true",
            help="Remove keys no stored secret uses from the console's keyring file.",
        )
        parser.add_argument(
            "--no-new-key",
            action="store_true",
            help="Re-encrypt under the current first key without adding one.",
        )
        parser.add_argument(
            "--print-new-entry",
            action="store_true",
            help="Only print a new keyring entry (id:key) to put first in RIVYA_KEYRING.",
        )

    def handle(self, *args: object, **options: object) -> None:
        if options["print_new_entry"]:
            self.stdout.write(crypto.new_entry())
            return
        if int(options["batch_size"]) < 1:
            raise CommandError(_("--batch-size must be at least 1."))
        ring = crypto.keyring(refresh=True)
        if ring.managed_path is not None and not options["no_new_key"]:
            primary = crypto.add_primary_key()
            self.stdout.write(
                _("Added key %(key)s to %(path)s.") % {"key": primary, "path": ring.managed_path}
            )
        else:
            primary = ring.primary_id
            self.stdout.write(
                _("Re-encrypting under the first key of the keyring, %(key)s.") % {"key": primary}
            )
        report = rotation.reencrypt_all(int(options["batch_size"]))
        self.stdout.write(
            _(
                "Re-encrypted %(done)s, already current %(current)s, empty %(empty)s, "
                "failed %(failed)s."
            )
            % {
                "done": report.reencrypted,
                "current": report.current,
                "empty": report.empty,
                "failed": len(report.failed),
            }
        )
        for failure in report.failed:
            self.stderr.write(failure)
        retired = set(crypto.keyring().ciphers) - set(report.in_use) - {primary}
        record(
            None,
            "keyring.rotated",
            primary,
            reencrypted=report.reencrypted,
            current=report.current,
            failed=len(report.failed),
            retired=sorted(retired),
        )
        self.report_retired(retired, bool(options["remove_old"]))
        if report.failed:
            count = len(report.failed)
            raise CommandError(
                ngettext(
                    "%(count)s secret could not be decrypted; its key stays in the keyring. "
                    "Paste that key's value again, then run this command once more.",
                    "%(count)s secrets could not be decrypted; their keys stay in the keyring. "
                    "Paste those keys' values again, then run this command once more.",
                    count,
                )
                % {"count": count}
            )

    def report_retired(self, retired: set[str], remove: bool) -> None:
        if not retired:
            return
        names = ", ".join(sorted(retired))
        if remove and crypto.keyring().managed_path is not None:
            crypto.remove_keys(retired)
            self.stdout.write(
                _("Removed unused keys %(names)s from the keyring.") % {"names": names}
            )
        else:
            self.stdout.write(
                _("No stored secret uses %(names)s any more; they can be removed.")
                % {"names": names}
            )

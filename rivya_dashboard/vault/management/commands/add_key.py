"""Store a team key for scripted set-up: the key comes on standard input, never as an argument."""

import sys
from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from rivya_dashboard.vault import keys
from rivya_dashboard.vault.models import PRODUCTION_BASE_URL, ApiKey, Environment


class Command(BaseCommand):
    help = (
        "Read a Rivya API key from standard input, test it like the Keys page does "
        "(GET /credits and scope probes) and store it encrypted."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--label", required=True)
        parser.add_argument(
            "--base-url",
            default=PRODUCTION_BASE_URL,
            help="The API root including /api/v1 (default: production).",
        )
        parser.add_argument(
            "--sandbox",
            action="store_true",
            help="A key of this console's own sandbox (from `manage.py sandbox_key`); its "
            "address comes from RIVYA_PUBLIC_URL or the address serve listens on.",
        )

    def handle(self, *args: object, **options: object) -> None:
        label = str(options["label"]).strip()
        if not label or ApiKey.objects.filter(label__iexact=label).exists():
            raise CommandError(
                _("Choose another label: %(label)r is empty or already used.") % {"label": label}
            )
        base_url = str(options["base_url"]).rstrip("/")
        environment = (
            Environment.PRODUCTION if base_url == PRODUCTION_BASE_URL else Environment.CUSTOM
        )
        if options["sandbox"]:
            environment = Environment.SANDBOX
        raw = sys.stdin.readline().strip()
        try:
            key = keys.do_add_key(
                None, label=label, environment=environment, raw=raw, base_url=base_url
            )
        except keys.KeyRejected as exc:
            raise CommandError(keys.rejection_text(exc)) from None
        denied = key.denied_scopes()
        self.stdout.write(
            _("Stored key %(label)s (%(display)s) for %(url)s.")
            % {"label": key.label, "display": key.display, "url": key.base_url}
        )
        if denied:
            self.stdout.write(_("Scopes missing: %(scopes)s.") % {"scopes": ", ".join(denied)})

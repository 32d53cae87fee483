"""Print a fresh sandbox API key (all scopes unless --scopes); the raw key is the last line."""

from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.keys import issue_key


class Command(BaseCommand):
    help = "Create a sandbox API key with its own credit wallet and print it once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--scopes", help="Comma-separated scopes (default: all)")
        parser.add_argument("--credits", type=int, default=choices.DEFAULT_ACCOUNT_CREDITS)
        parser.add_argument("--name", default="")

    def handle(self, *args: object, **options: object) -> None:
        scopes = None
        if options["scopes"]:
            scopes = [scope.strip() for scope in str(options["scopes"]).split(",") if scope.strip()]
        if int(options["credits"]) < 0:
            raise CommandError(_("--credits must be zero or more."))
        try:
            raw_key = issue_key(
                scopes=scopes, credits=int(options["credits"]), name=options["name"]
            )
        except ValueError as exc:
            known = ", ".join(choices.SCOPES)
            raise CommandError(
                _("%(error)s. Known scopes: %(known)s") % {"error": exc, "known": known}
            ) from None
        self.stderr.write(_("Sandbox key created; it is shown only once:"))
        self.stdout.write(raw_key)

"""Remove a member's second factors from the server, for an owner locked out of every device."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rivya_dashboard.accounts.models import User
from rivya_dashboard.accounts.second_factor import do_reset_factors


class Command(BaseCommand):
    help = (
        "Remove USER's second factors and recovery codes and sign them out everywhere; "
        "they set up a new second factor at their next sign-in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: object, username: str, **options: object) -> None:
        member = User.objects.filter(username__iexact=username).first()
        if member is None:
            raise CommandError(f"No member is called {username!r}; check the Team page.")
        do_reset_factors(None, member, None)
        self.stdout.write(
            f"Removed the second factors of {member.get_username()} and signed them out. "
            "They set up a new one at their next sign-in."
        )

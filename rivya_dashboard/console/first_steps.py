"""The getting-started checklist on the dashboard; each step ticks itself from the data."""

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.vault.models import ApiKey


@dataclass(frozen=True)
class Step:
    label: str
    done: bool
    url: str = ""
    help: str = ""
    # Offer the one-click "Use the sandbox" key next to this step.
    sandbox_button: bool = False


def first_steps(user: User) -> list[Step]:
    return [
        Step(_("Create the owner account"), done=True),
        Step(
            _("Invite a teammate"),
            done=User.objects.filter(is_active=True).count() > 1,
            url=reverse("team") if user.is_owner else "",
            help=_("Send a one-time link with a role: admin, operator or viewer."),
        ),
        key_step(user),
    ]


def key_step(user: User) -> Step:
    has_key = ApiKey.objects.exists()
    return Step(
        _("Add a Rivya API key"),
        done=has_key,
        url=reverse("key-add") if user.is_admin else "",
        help=_("Paste the team's key (it is tested, then stored encrypted), or try the sandbox."),
        sandbox_button=user.is_admin and settings.RIVYA_SANDBOX and not has_key,
    )
